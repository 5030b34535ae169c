internal import CGuestKVM
import GuestMemory

/// KVM's record of guest writes, as one of the guest memory's dirty
/// sources (`GuestDirtyLog`). A drain moves the pages KVM
/// logged into the VMM's bitmap (`markDirty`) *before* it re-arms them in
/// KVM, so at every moment a page written by the guest is dirty in KVM's log,
/// in the bitmap, or in an open harvest — never nowhere. The subclasses are
/// the three ways KVM keeps the log; each also remembers every page it
/// handed over (``KVMVirtualMachine/guestDirtyPages``).
public class KVMDirtyLog: GuestDirtyLog, @unchecked Sendable {
    let core: KVMVMCore
    public var dirtyLogName: String { "kvm" }

    init(_ core: KVMVMCore) { self.core = core }

    public func drain(into memory: GuestMemory, firstPage: UInt64, endPage: UInt64) throws(GuestMemoryError) {
        try core.lock.withLock { () throws(GuestMemoryError) in
            try drainLocked(into: memory, firstPage: firstPage, endPage: endPage)
        }
    }

    /// The drain, with the core's lock held.
    func drainLocked(into memory: GuestMemory, firstPage: UInt64, endPage: UInt64) throws(GuestMemoryError) {}

    /// The slots that share a page with `[firstPage, endPage)`.
    func slots(_ firstPage: UInt64, _ endPage: UInt64) -> [KVMSlotState] {
        core.slotStates.filter {
            $0.slot.logsDirtyPages && $0.slot.firstPage < endPage && firstPage < $0.slot.firstPage + $0.slot.pageCount
        }
    }

    func failure(_ call: String, _ rc: Int32) -> GuestMemoryError {
        .dirtyLogFailed(log: dirtyLogName, reason: KVMError.system(call: call, errno: -rc).description)
    }
}

/// `KVM_GET_DIRTY_LOG`: fetches a whole slot's log and re-arms it in one
/// call, so a drain hands over every page of each slot it touches (pages
/// outside the range asked for simply wait in the VMM bitmap).
public final class KVMBitmapDirtyLog: KVMDirtyLog, @unchecked Sendable {
    override public var dirtyLogName: String { "kvm-bitmap" }

    override func drainLocked(into memory: GuestMemory, firstPage: UInt64, endPage: UInt64) throws(GuestMemoryError) {
        for s in slots(firstPage, endPage) {
            let rc = vkvm_get_dirty_log(core.fd, s.slot.slot, s.scratch)
            guard rc >= 0 else { throw failure("KVM_GET_DIRTY_LOG slot \(s.slot.slot)", rc) }
            // KVM has already re-armed these pages: they must reach the bitmap now.
            memory.markDirty(firstGuestPage: s.slot.firstPage, words: UnsafeBufferPointer(start: s.scratch, count: s.words))
            for w in 0..<s.words where s.scratch[w] != 0 { s.ever[w] |= s.scratch[w] }
        }
    }
}

/// `KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2`: `KVM_GET_DIRTY_LOG` only reads;
/// a drain hands over the 64-page groups covering the range, then re-arms
/// exactly the pages it handed over with `KVM_CLEAR_DIRTY_LOG` (first page
/// a multiple of 64; a count of whole groups, or up to the slot's end).
public final class KVMManualDirtyLog: KVMDirtyLog, @unchecked Sendable {
    override public var dirtyLogName: String { "kvm-manual" }

    override func drainLocked(into memory: GuestMemory, firstPage: UInt64, endPage: UInt64) throws(GuestMemoryError) {
        for s in slots(firstPage, endPage) {
            let rc = vkvm_get_dirty_log(core.fd, s.slot.slot, s.scratch)
            guard rc >= 0 else { throw failure("KVM_GET_DIRTY_LOG slot \(s.slot.slot)", rc) }
            let lo = max(firstPage, s.slot.firstPage) - s.slot.firstPage
            let hi = min(endPage, s.slot.firstPage + s.slot.pageCount) - s.slot.firstPage
            let w0 = Int(lo / 64), w1 = Int((hi + 63) / 64)
            var any = false
            for w in w0..<w1 where s.scratch[w] != 0 { any = true; break }
            guard any else { continue }
            memory.markDirty(firstGuestPage: s.slot.firstPage + UInt64(w0) * 64,
                             words: UnsafeBufferPointer(start: s.scratch + w0, count: w1 - w0))
            for w in w0..<w1 where s.scratch[w] != 0 { s.ever[w] |= s.scratch[w] }
            let first = UInt64(w0) * 64
            let count = min(UInt64(w1 - w0) * 64, s.slot.pageCount - first)
            let c = vkvm_clear_dirty_log(core.fd, s.slot.slot, first, UInt32(count), s.scratch + w0)
            // The pages are in the bitmap already; a failed re-arm only means
            // KVM reports them again next time.
            guard c >= 0 else { throw failure("KVM_CLEAR_DIRTY_LOG slot \(s.slot.slot)", c) }
        }
    }
}

/// The dirty ring: per vCPU, entries `{flags, slot, offset}` that KVM
/// publishes with `DIRTY` (read with acquire); a drain hands each page over,
/// marks the entry `RESET` (release), and finally asks KVM to re-arm the
/// reset entries' pages (`KVM_RESET_DIRTY_RINGS`). A ring is read in
/// order, so a drain takes every published entry whatever the range.
///
/// **Overruns.** KVM counts the entries it wrote and the entries handed
/// back; it consumes `RESET` marks in ring order from where it last
/// stopped, one per entry, checking nothing else. It is meant to stop the
/// vCPU at a soft limit short of the ring's end, but a nested KVM can run
/// on past the end, over entries not yet read. Then:
///
/// - A pass that finds *every* place `DIRTY` may have lost entries: it
///   marks every logged page dirty (over-reporting, never losing) and
///   counts an overflow.
/// - KVM counts the places it overran as unread though they hold nothing
///   to read, so its next entry lies further on than the place we read
///   next, and a ring-full exit can come with little or nothing to take.
///   The ring turns *suspect*: a drain that finds nothing at the expected
///   place looks around the ring for KVM's next entry and hands back the
///   places before it; and a full exit whose drain handed back fewer marks
///   than the soft limit can be (the ring less KVM's largest reserve: 64
///   entries, plus 512 with Intel's page-modification log) hands back the
///   difference, which KVM's exit proves it counts as unread. Handing back
///   never exceeds KVM's count, which would wreck it; handing back too
///   little only costs another exit.
public final class KVMRingDirtyLog: KVMDirtyLog, @unchecked Sendable {
    override public var dirtyLogName: String { "kvm-ring" }

    /// Passes that found a vCPU's ring entirely full (every logged page
    /// was then marked dirty), and times stale places were handed back.
    /// Under the core's lock.
    private(set) var overflows = 0
    private(set) var resyncs = 0

    override func drainLocked(into memory: GuestMemory, firstPage: UInt64, endPage: UInt64) throws(GuestMemoryError) {
        try harvest(into: memory)
    }

    /// A lower bound on KVM's soft limit for a ring of `n` entries.
    static func softLimitFloor(_ n: UInt32) -> UInt32 { n >= 576 ? max(n - 576, 1) : max(n - 64, 1) }

    /// Hands over every published entry of every vCPU's ring, then resets
    /// them in KVM. `full`, a vCPU stopped by a ring-full exit, also hands
    /// back what its exit proves stale. Returns the fresh entries taken
    /// from `full`'s ring (all rings' when nil).
    @discardableResult
    func harvest(into memory: GuestMemory, full: KVMVCPU? = nil) throws(GuestMemoryError) -> Int {
        var marks = 0, fresh = 0
        var overran = false
        var cached: KVMSlotState?
        for v in core.vcpuList {
            guard let ring = v.ring, v.ringEntries > 0 else { continue }
            let n = v.ringEntries
            if v === full { v.ringSuspect = true }
            var taken: UInt32 = 0, handed: UInt32 = 0
            while handed < n {
                let i = v.ringFetch % n
                if vkvm_dirty_gfn_is_dirty(vkvm_dirty_gfn_flags_acquire(ring, i)) != 0 {
                    take(ring, i, into: memory, cached: &cached)
                    v.ringFetch &+= 1
                    handed += 1
                    taken += 1
                } else {
                    guard v.ringSuspect, let skip = firstPublished(ring, n, after: v.ringFetch, within: n - handed) else { break }
                    handBack(skip, of: v, ring)
                    handed += skip
                }
            }
            if taken == n {
                overran = true
                overflows += 1
            }
            if v === full, handed < Self.softLimitFloor(n) {
                let stale = Self.softLimitFloor(n) - handed
                handBack(stale, of: v, ring)
                handed += stale
            }
            if taken == n || (v === full && taken < handed) { v.ringSuspect = true }
            else if v === full { v.ringSuspect = false }
            marks += Int(handed)
            if full == nil || v === full { fresh += Int(taken) }
        }
        // Before the reset: KVM re-arms only what it is handed back.
        if overran { markEveryLoggedPage(into: memory) }
        if marks > 0 {
            let rc = vkvm_reset_dirty_rings(core.fd)
            guard rc >= 0 else { throw failure("KVM_RESET_DIRTY_RINGS", rc) }
        }
        return fresh
    }

    /// Hands the page of entry `i` over to the VMM bitmap and marks the
    /// entry read. `cached` keeps the last slot looked up: entries come in
    /// runs of one slot.
    private func take(_ ring: UnsafeMutablePointer<kvm_dirty_gfn>, _ i: UInt32, into memory: GuestMemory,
                      cached: inout KVMSlotState?) {
        let slot = vkvm_dirty_gfn_slot(ring, i) & 0xFFFF
        let offset = vkvm_dirty_gfn_offset(ring, i)
        if cached?.slot.slot != slot { cached = core.state(slot: slot) }
        if let s = cached, offset < s.slot.pageCount {
            memory.markDirty(guestPage: s.slot.firstPage + offset)
            s.ever[Int(offset / 64)] |= 1 << (offset % 64)
        }
        vkvm_dirty_gfn_reset_release(ring, i)
    }

    /// Hands `count` places of `v`'s ring, from the next to read, back to
    /// KVM unread: places KVM overran, which hold nothing to take.
    private func handBack(_ count: UInt32, of v: KVMVCPU, _ ring: UnsafeMutablePointer<kvm_dirty_gfn>) {
        for k in 0..<count { vkvm_dirty_gfn_reset_release(ring, (v.ringFetch &+ k) % v.ringEntries) }
        v.ringFetch &+= count
        resyncs += 1
    }

    /// How far past `fetch` (1 ..< `within`) the next published entry
    /// lies, or nil when there is none.
    private func firstPublished(_ ring: UnsafeMutablePointer<kvm_dirty_gfn>, _ n: UInt32,
                                after fetch: UInt32, within: UInt32) -> UInt32? {
        var d: UInt32 = 1
        while d < within {
            if vkvm_dirty_gfn_is_dirty(vkvm_dirty_gfn_flags_acquire(ring, (fetch &+ d) % n)) != 0 { return d }
            d += 1
        }
        return nil
    }

    /// Marks every page of every logging slot dirty, in the VMM bitmap and
    /// in the record of what KVM reported: after an overrun any of them may
    /// have been written unseen.
    private func markEveryLoggedPage(into memory: GuestMemory) {
        for s in core.slotStates where s.slot.logsDirtyPages {
            var words = [UInt64](repeating: ~0, count: s.words)
            let tail = s.slot.pageCount % 64
            if tail != 0, !words.isEmpty { words[words.count - 1] = (1 << tail) - 1 }
            words.withUnsafeBufferPointer { _ = memory.markDirty(firstGuestPage: s.slot.firstPage, words: $0) }
            for w in 0..<s.words { s.ever[w] |= words[w] }
        }
    }

    /// After `vcpu` exited with `KVM_EXIT_DIRTY_RING_FULL`: drains every
    /// ring and hands back what the exit proves stale; returns the fresh
    /// entries taken from `vcpu`'s ring.
    func drainAfterFull(into memory: GuestMemory, vcpu: KVMVCPU) throws(GuestMemoryError) -> Int {
        try core.lock.withLock { () throws(GuestMemoryError) -> Int in try harvest(into: memory, full: vcpu) }
    }

    /// ``overflows`` and ``resyncs``, read under the core's lock.
    var counts: (overflows: Int, resyncs: Int) { core.lock.withLock { (overflows, resyncs) } }
}
