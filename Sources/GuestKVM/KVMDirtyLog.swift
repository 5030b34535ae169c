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
public final class KVMRingDirtyLog: KVMDirtyLog, @unchecked Sendable {
    override public var dirtyLogName: String { "kvm-ring" }

    override func drainLocked(into memory: GuestMemory, firstPage: UInt64, endPage: UInt64) throws(GuestMemoryError) {
        _ = try harvest(into: memory)
    }

    /// Hands over every published entry of every vCPU's ring and resets
    /// them; returns how many entries were taken.
    func harvest(into memory: GuestMemory) throws(GuestMemoryError) -> Int {
        var harvested = 0
        var cached: KVMSlotState?
        for v in core.vcpuList {
            guard let ring = v.ring, v.ringEntries > 0 else { continue }
            while true {
                let i = v.ringFetch % v.ringEntries
                let flags = vkvm_dirty_gfn_flags_acquire(ring, i)
                guard vkvm_dirty_gfn_is_dirty(flags) != 0 else { break }
                let slot = vkvm_dirty_gfn_slot(ring, i) & 0xFFFF
                let offset = vkvm_dirty_gfn_offset(ring, i)
                if cached?.slot.slot != slot { cached = core.state(slot: slot) }
                if let s = cached, offset < s.slot.pageCount {
                    var word: UInt64 = 1
                    withUnsafePointer(to: &word) {
                        _ = memory.markDirty(firstGuestPage: s.slot.firstPage + offset,
                                             words: UnsafeBufferPointer(start: $0, count: 1))
                    }
                    s.ever[Int(offset / 64)] |= 1 << (offset % 64)
                }
                vkvm_dirty_gfn_reset_release(ring, i)
                v.ringFetch &+= 1
                harvested += 1
            }
        }
        if harvested > 0 {
            let rc = vkvm_reset_dirty_rings(core.fd)
            guard rc >= 0 else { throw failure("KVM_RESET_DIRTY_RINGS", rc) }
        }
        return harvested
    }

    /// After a `KVM_EXIT_DIRTY_RING_FULL`: drains the rings; false when
    /// there was nothing to take although KVM said full — KVM pushed past
    /// the ring's end and overwrote entries (it warns `kvm_dirty_ring_push`
    /// in the host log), so the guest's dirty pages since the last drain
    /// are no longer known.
    func drainAfterFull(into memory: GuestMemory) throws(GuestMemoryError) -> Bool {
        try core.lock.withLock { () throws(GuestMemoryError) -> Bool in try harvest(into: memory) > 0 }
    }
}
