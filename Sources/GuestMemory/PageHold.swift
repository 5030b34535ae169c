import Synchronization

/// A hold on one guest page (bhyve `vm_gpa_hold`, illumos `vmc_hold`): a
/// host pointer that stays valid until the hold is released, because a
/// mapping with holds cannot be unmapped (unmap, reset and destroy refuse).
///
/// Releasing a hold taken with write permission marks the page dirty,
/// unless it was taken with `deferDirty` (illumos `VPF_DEFER_DIRTY`), in
/// which case only ``markDirty()`` opts in. A hold is a `~Copyable` value:
/// it is released exactly once — by ``release()``, which consumes it, or
/// when it goes out of scope — so no release can be forgotten or doubled,
/// and taking one allocates nothing and takes no lock (the hold + release
/// pair is a probe of the flat mapping table, validated by the map lock's
/// sequence, and two atomic adds).
///
/// A guest dropped while a hold is outstanding keeps the held mapping's
/// bookkeeping and its host window, so the pointer stays valid.
public struct PageHold: ~Copyable, @unchecked Sendable {
    /// The guest-physical address held (inside ``pageGPA``'s page).
    public let gpa: UInt64
    public let protection: GuestProtection
    public let deferDirty: Bool
    /// The host address of ``gpa``.
    public let hostAddress: UInt64
    /// The held mapping's hold count, and the segment page's bitmap.
    let counter: UnsafeMutablePointer<Atomic<Int>>
    let bitmap: Unmanaged<DirtyBitmap>
    let segmentPage: UInt64
    /// ``markDirty()`` asked for the page to be marked on release.
    private var dirtyRequested = false

    init(gpa: UInt64, protection: GuestProtection, deferDirty: Bool, row: FlatMapping) {
        self.gpa = gpa
        self.protection = protection
        self.deferDirty = deferDirty
        hostAddress = row.hostAddress &+ (gpa &- row.gpa)
        counter = row.holdCounter
        bitmap = row.bitmap
        segmentPage = (gpa / GuestMemory.pageSize) &+ row.pageDelta
    }

    /// The guest-physical address of the held page.
    public var pageGPA: UInt64 { gpa & ~(GuestMemory.pageSize - 1) }

    /// ``hostAddress`` as a pointer (illumos `vmp_get_writable` / `vmp_get_readable`).
    public var pointer: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: UInt(hostAddress))! }

    /// Asks that the page be marked dirty on release (illumos
    /// `vmp_mark_dirty`); refused (false) for a hold without write permission.
    @discardableResult
    public mutating func markDirty() -> Bool {
        guard protection.contains(.write) else { return false }
        dirtyRequested = true
        return true
    }

    /// Releases the hold; a writable hold marks its page dirty unless deferred.
    public consuming func release() {
        finish()
        discard self
    }

    deinit { finish() }

    /// The mark (before the count drops: once it is zero the mapping may go).
    @inline(__always)
    private func finish() {
        if protection.contains(.write) && (!deferDirty || dirtyRequested) {
            bitmap._withUnsafeGuaranteedRef { $0.markPage(segmentPage) }
        }
        counter.pointee.wrappingSubtract(1, ordering: .releasing)
    }
}

extension GuestMemory {
    /// Holds the page of `gpa` for `protection` (a non-empty subset of rwx
    /// the mapping gives). `[gpa, gpa + length)` must stay in one page, as in
    /// bhyve (which panics where this throws).
    ///
    /// The fast path takes no lock (illumos's holds do not either): it reads
    /// the map lock's sequence, probes the flat table with atomic loads,
    /// adds to the mapping's hold counter and reads the sequence again. A
    /// map change bumps the sequence before it checks the counters (both
    /// sequentially consistent), so either the change sees the hold and
    /// refuses, or the hold sees the change, takes its add back and retries
    /// under the lock. Refusals are always decided under the lock.
    public func hold(_ gpa: UInt64, length: UInt64 = 1, _ protection: GuestProtection,
                     deferDirty: Bool = false) throws(GuestMemoryError) -> PageHold {
        guard protection.isValid else { throw .invalidProtection(rawValue: protection.rawValue) }
        guard length > 0 else { throw .zeroLength(gpa: gpa) }
        let (_, o) = gpa.addingReportingOverflow(length)
        guard !o else { throw .rangeWraps(gpa: gpa, length: length) }
        guard gpa / Self.pageSize == (gpa + length - 1) / Self.pageSize else {
            throw .crossesPage(gpa: gpa, length: length)
        }
        let want = UInt64(protection.rawValue)
        let seq = lock.sequence.load(ordering: .acquiring)
        if seq & 1 == 0, let row = racingRow(containing: gpa), row.protection & want == want {
            row.holdCounter.pointee.wrappingAdd(1, ordering: .sequentiallyConsistent)
            if lock.sequence.load(ordering: .sequentiallyConsistent) == seq {
                return PageHold(gpa: gpa, protection: protection, deferDirty: deferDirty, row: row)
            }
            row.holdCounter.pointee.wrappingSubtract(1, ordering: .releasing)
        }
        lock.lockShared()
        defer { lock.unlock() }
        guard let i = flatIndex(containing: gpa) else { throw .unmapped(gpa: gpa) }
        let row = flat[i]
        guard row.protection & want == want else {
            throw .protectionDenied(gpa: gpa, requested: protection, mapped: GuestProtection(rawValue: UInt8(row.protection)))
        }
        row.holdCounter.pointee.wrappingAdd(1, ordering: .sequentiallyConsistent)
        return PageHold(gpa: gpa, protection: protection, deferDirty: deferDirty, row: row)
    }

    /// The flat-table row holding `gpa`, read without the lock (atomic
    /// loads; only trusted if the lock's sequence did not move meanwhile).
    @inline(__always)
    func racingRow(containing gpa: UInt64) -> FlatMapping? {
        let n = min(flatCount, Self.maxMappings)
        var lo = 0, hi = n
        if n <= 8 {
            for i in 0..<n where FlatMapping.word(flat + i, 0).pointee.load(ordering: .relaxed) <= gpa
                && gpa < FlatMapping.word(flat + i, 1).pointee.load(ordering: .relaxed) {
                return FlatMapping.loadRacing(flat + i)
            }
            return nil
        }
        while lo < hi {
            let mid = Int(bitPattern: UInt(bitPattern: lo &+ hi) >> 1)
            if FlatMapping.word(flat + mid, 0).pointee.load(ordering: .relaxed) <= gpa { lo = mid &+ 1 } else { hi = mid }
        }
        guard lo > 0 else { return nil }
        let row = FlatMapping.loadRacing(flat + (lo &- 1))
        return gpa >= row.gpa && gpa < row.end ? row : nil
    }
}
