import Synchronization

/// A hold on one guest page (bhyve `vm_gpa_hold`, illumos `vmc_hold`): a
/// host pointer that stays valid until ``release()``, because a mapping
/// with holds cannot be unmapped. Releasing a hold taken with write
/// permission marks the page dirty, unless it was taken with `deferDirty`
/// (illumos `VPF_DEFER_DIRTY`), in which case only ``markDirty()`` opts in.
/// Release is idempotent, and a hold dropped without release is released.
public final class PageHold: @unchecked Sendable {
    /// The guest-physical address held (inside ``pageGPA``'s page).
    public let gpa: UInt64
    /// The guest-physical address of the held page.
    public let pageGPA: UInt64
    public let protection: GuestProtection
    public let deferDirty: Bool
    /// The host address of ``gpa``.
    public let hostAddress: UInt64
    let entry: MappingEntry
    private let state = Atomic<UInt8>(0)  // bit 0: released, bit 1: dirty requested

    init(gpa: UInt64, protection: GuestProtection, deferDirty: Bool, entry: MappingEntry) {
        self.gpa = gpa
        pageGPA = gpa & ~(GuestMemory.pageSize - 1)
        self.protection = protection
        self.deferDirty = deferDirty
        self.entry = entry
        hostAddress = entry.info.hostAddress + (gpa - entry.gpa)
    }

    deinit { release() }

    /// ``hostAddress`` as a pointer (illumos `vmp_get_writable` / `vmp_get_readable`).
    public var pointer: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: UInt(hostAddress))! }

    /// Whether ``release()`` has run.
    public var isReleased: Bool { state.load(ordering: .acquiring) & 1 != 0 }

    /// Asks that the page be marked dirty on release (illumos `vmp_mark_dirty`);
    /// refused (false) for a hold without write permission or already released.
    @discardableResult
    public func markDirty() -> Bool {
        guard protection.contains(.write) else { return false }
        let old = state.bitwiseOr(2, ordering: .acquiringAndReleasing).oldValue
        return old & 1 == 0
    }

    /// Releases the hold; a writable hold marks its page dirty unless deferred.
    public func release() {
        let old = state.bitwiseOr(1, ordering: .acquiringAndReleasing).oldValue
        guard old & 1 == 0 else { return }
        if protection.contains(.write) && (!deferDirty || old & 2 != 0) {
            entry.markDirty(pageGPA, GuestMemory.pageSize)
        }
        entry.holds.subtract(1, ordering: .releasing)
    }
}

extension GuestMemory {
    /// Holds the page of `gpa` for `protection` (a non-empty subset of rwx
    /// the mapping gives). `[gpa, gpa + length)` must stay in one page, as in
    /// bhyve (which panics where this throws).
    public func hold(_ gpa: UInt64, length: UInt64 = 1, _ protection: GuestProtection,
                     deferDirty: Bool = false) throws(GuestMemoryError) -> PageHold {
        guard protection.isValid else { throw .invalidProtection(rawValue: protection.rawValue) }
        guard length > 0 else { throw .zeroLength(gpa: gpa) }
        let (_, o) = gpa.addingReportingOverflow(length)
        guard !o else { throw .rangeWraps(gpa: gpa, length: length) }
        guard gpa / Self.pageSize == (gpa + length - 1) / Self.pageSize else {
            throw .crossesPage(gpa: gpa, length: length)
        }
        return try lock.reading { () throws(GuestMemoryError) -> PageHold in
            guard let e = entry(containing: gpa) else { throw .unmapped(gpa: gpa) }
            guard e.info.protection.isSuperset(of: protection) else {
                throw .protectionDenied(gpa: gpa, requested: protection, mapped: e.info.protection)
            }
            e.holds.add(1, ordering: .acquiring)
            return PageHold(gpa: gpa, protection: protection, deferDirty: deferDirty, entry: e)
        }
    }
}
