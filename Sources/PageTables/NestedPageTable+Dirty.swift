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
                    if report { a.dirty = true }
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
    /// ``dirtyOperation(_:_:length:)`` without its size limit). The walk
    /// descends only into present tables and reads each leaf table as one
    /// array, so its cost is the tables that exist, not the range. Pages
    /// come in ascending order, except those of superpages that stick out
    /// of a range being cleared, which are demoted and reported last.
    public func scanDirty(_ gpa: UInt64, length: UInt64, clear: Bool,
                          _ report: (UInt64) -> Void) throws(NestedPageTableError) {
        let last = try wrap { () throws(PageTableError) in try table.checkRange(gpa, length) }
        var partial: [(UInt64, UInt64)] = []
        var cleared = false
        func walk(_ t: UnsafeMutablePointer<UInt64>, level: Int, base: UInt64) throws(PageTableError) {
            let span = UInt64(1) << (12 + 9 * UInt64(level - 1))
            let lo = gpa > base ? Int((gpa - base) / span) : 0
            let hi = min(511, Int((last - base) / span))
            guard lo <= hi else { return }
            let d = Format.dirtyBit
            for i in lo...hi {
                let e = t[i]
                // A leaf table: only D matters (D is never set on an absent entry).
                if level == 1 && e & d == 0 { continue }
                guard Format.isPresent(e) else { continue }
                let b = base + UInt64(i) * span
                if level == 1 || (level <= 3 && Format.isLargePage(e)) {
                    guard e & Format.dirtyBit != 0 else { continue }
                    let from = max(b, gpa), to = min(b + (span - 1), last)
                    if clear && (from != b || to != b + (span - 1)) {
                        partial.append((from, to))
                        continue
                    }
                    var p = from & ~0xFFF
                    while p <= to { report(p); p += 0x1000 }
                    if clear {
                        let size = PageSize(rawValue: level) ?? .size4K
                        var a = Format.attributes(e, size: size)
                        a.dirty = false
                        t[i] = try Format.leafEntry(Format.leafAddress(e, size: size), size: size, attributes: a)
                        cleared = true
                    }
                } else {
                    try walk(table.table(Format.tableAddress(e)), level: level - 1, base: b)
                }
            }
        }
        try wrap { () throws(PageTableError) in try walk(table.table(table.root), level: 4, base: 0) }
        if cleared { invalidate() }
        for (from, to) in partial {
            for p in try dirtyOperation(.getAndReset, from & ~0xFFF, length: (to | 0xFFF) - (from & ~0xFFF) + 1) {
                report(p)
            }
        }
    }
}
