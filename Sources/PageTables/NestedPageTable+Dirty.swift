/// The dirty-bit operations of illumos's `VM_NPT_OPERATION`.
public enum NestedDirtyOperation: Hashable, Sendable {
    /// Report dirty pages (`VNO_OP_GET_DIRTY`).
    case get
    /// Clear D without reporting.
    case reset
    /// Report and clear (`VNO_OP_RESET_DIRTY`, the legacy `VM_TRACK_DIRTY_PAGES`).
    case getAndReset
    /// Set D on every mapped writable page (`VNO_OP_SET_DIRTY`); reports them.
    case set
}

extension NestedPageTable {
    /// Most bytes one dirty operation covers (illumos: 256 Ki pages).
    public static var dirtyOperationLimit: UInt64 { 1 << 30 }

    /// Runs `operation` over the 4 KiB pages of `[gpa, gpa + length)` and
    /// returns the guest-physical addresses of the pages it reports, in order:
    /// the dirty ones for `get` and `getAndReset`, the ones made dirty for
    /// `set`, none for `reset`. A superpage that sticks out of a range being
    /// changed is demoted first. Clearing D bumps the generation (a cached
    /// writable translation must fault again to set it); in A/D emulation
    /// mode it also takes the hardware W right away.
    public func dirtyOperation(_ operation: NestedDirtyOperation, _ gpa: UInt64,
                               length: UInt64) throws(NestedPageTableError) -> [UInt64] {
        let last = try wrap { () throws(PageTableError) in try table.checkRange(gpa, length) }
        guard length <= Self.dirtyOperationLimit else {
            throw .rangeTooLarge(length: length, limit: Self.dirtyOperationLimit)
        }
        var pages: [UInt64] = []
        if operation == .get {
            var cursor = gpa
            while cursor <= last {
                guard let (slot, size) = leafSlot(cursor) else {
                    // Skip the whole absent entry (a missing table spans up to 512 GiB).
                    let (next, o) = (cursor | (absentSpan(cursor) - 1)).addingReportingOverflow(1)
                    if o || next > last { break }
                    cursor = next
                    continue
                }
                let end = min((cursor | size.offsetMask), last)
                if slot.pointee & Format.dirtyBit != 0 {
                    var p = cursor
                    while p <= end { pages.append(p); p += 0x1000 }
                }
                if end == last { break }
                cursor = end + 1
            }
            return pages
        }
        var demoted: UInt64 = 0
        var cleared = false
        _ = try wrap { () throws(PageTableError) in
            try table.forEachLeafCountingDemotions(from: gpa, through: last, demotions: &demoted) {
                (entry, base, size) throws(PageTableError) -> UInt64 in
                var a = Format.attributes(entry, size: size)
                let report: Bool
                switch operation {
                case .get: report = false
                case .reset, .getAndReset:
                    report = operation == .getAndReset && a.dirty
                    if a.dirty { a.dirty = false; cleared = true }
                case .set:
                    report = a.access.contains(.write)
                    if report { a.dirty = true; dirtyRegions.mark(base) }
                }
                if report {
                    var p = base
                    for _ in 0..<(size.bytes >> 12) { pages.append(p); p += 0x1000 }
                }
                if a != Format.attributes(entry, size: size) {
                    entry = try Format.leafEntry(Format.leafAddress(entry, size: size), size: size, attributes: a)
                }
                return 0
            }
        }
        demotions &+= demoted
        if cleared || demoted != 0 { invalidate() }
        return pages
    }

    /// Clears the accessed bit (only A; D stays) of every leaf in the range,
    /// so the next access sets it again (in emulation
    /// mode the hardware rights are withdrawn until then). Bumps the
    /// generation when a bit was cleared or a superpage demoted. Returns the
    /// addresses of the 4 KiB pages that had A set.
    @discardableResult
    public func resetAccessed(_ gpa: UInt64, length: UInt64) throws(NestedPageTableError) -> [UInt64] {
        let last = try wrap { () throws(PageTableError) in try table.checkRange(gpa, length) }
        guard length <= Self.dirtyOperationLimit else {
            throw .rangeTooLarge(length: length, limit: Self.dirtyOperationLimit)
        }
        var pages: [UInt64] = []
        var demoted: UInt64 = 0
        _ = try wrap { () throws(PageTableError) in
            try table.forEachLeafCountingDemotions(from: gpa, through: last, demotions: &demoted) {
                (entry, base, size) throws(PageTableError) -> UInt64 in
                var a = Format.attributes(entry, size: size)
                guard a.accessed else { return 0 }
                var p = base
                for _ in 0..<(size.bytes >> 12) { pages.append(p); p += 0x1000 }
                a.accessed = false
                entry = try Format.leafEntry(Format.leafAddress(entry, size: size), size: size, attributes: a)
                return 0
            }
        }
        demotions &+= demoted
        if !pages.isEmpty || demoted != 0 { invalidate() }
        return pages
    }
}

extension NestedPageTable {
    /// The dirty pages of `[gpa, gpa + length)` (any length), passed to
    /// `report` as guest-physical addresses of 4 KiB pages; with `clear`, D
    /// is cleared for exactly those (the `get` / `getAndReset` of
    /// ``dirtyOperation(_:_:length:)`` without its size limit). Only the
    /// regions ``dirtyRegions`` marks are read (each leaf table as one
    /// array), so the cost follows what was written since the last harvest,
    /// not the range or the tables that exist; a region wholly inside a
    /// range being cleared is unmarked before it is read. Pages come in
    /// ascending order, except those of superpages that stick out of a range
    /// being cleared, which are demoted and reported last.
    public func scanDirty(_ gpa: UInt64, length: UInt64, clear: Bool,
                          _ report: (UInt64) -> Void) throws(NestedPageTableError) {
        let last = try wrap { () throws(PageTableError) in try table.checkRange(gpa, length) }
        var partial: [(UInt64, UInt64)] = []
        var cleared = false
        let d = Format.dirtyBit
        /// The leaves of `[from, to]` in the region at `base`.
        func region(_ base: UInt64) throws(PageTableError) {
            // Down to the region's directory entry (level 2).
            var t = table.table(table.root)
            for level in stride(from: 4, to: 2, by: -1) {
                let e = t[PageTableGeometry.index(base, level: level)]
                guard Format.isPresent(e), !Format.isLargePage(e) else { return }
                t = table.table(Format.tableAddress(e))
            }
            let slot = t + PageTableGeometry.index(base, level: 2)
            let pde = slot.pointee
            guard Format.isPresent(pde) else { return }
            let from = max(base, gpa), to = min(base + (NestedDirtyRegionLog.regionSize - 1), last)
            if Format.isLargePage(pde) {
                guard pde & d != 0 else { return }
                if clear && (from != base || to != base + (NestedDirtyRegionLog.regionSize - 1)) {
                    partial.append((from, to))
                    return
                }
                var p = from & ~0xFFF
                while p <= to { report(p); p += 0x1000 }
                if clear {
                    var a = Format.attributes(pde, size: .size2M)
                    a.dirty = false
                    slot.pointee = try Format.leafEntry(Format.leafAddress(pde, size: .size2M), size: .size2M, attributes: a)
                    cleared = true
                }
                return
            }
            let leaves = table.table(Format.tableAddress(pde))
            let lo = Int((from - base) >> 12), hi = Int((to - base) >> 12)
            for i in lo...hi {
                let e = leaves[i]
                // D is never set on an absent entry.
                guard e & d != 0, Format.isPresent(e) else { continue }
                report(base + UInt64(i) << 12)
                if clear {
                    var a = Format.attributes(e, size: .size4K)
                    a.dirty = false
                    leaves[i] = try Format.leafEntry(Format.leafAddress(e, size: .size4K), size: .size4K, attributes: a)
                    cleared = true
                }
            }
        }
        try wrap { () throws(PageTableError) in
            try dirtyRegions.forEachMarked(first: gpa, last: last, take: clear) { base throws(PageTableError) in
                try region(base)
            }
            // Beyond the log (a mapping above the limit it was sized for): read every region.
            var base = max(gpa & ~(NestedDirtyRegionLog.regionSize - 1), dirtyRegions.regions << 21)
            while base <= last {
                try region(base)
                let (next, o) = base.addingReportingOverflow(NestedDirtyRegionLog.regionSize)
                if o { break }
                base = next
            }
        }
        if cleared { invalidate() }
        for (from, to) in partial {
            for p in try dirtyOperation(.getAndReset, from & ~0xFFF, length: (to | 0xFFF) - (from & ~0xFFF) + 1) {
                report(p)
            }
        }
    }
}
