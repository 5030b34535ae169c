extension PageTable {
    /// Checks `[address, address + length)`: 4 KiB granular, non-empty, no
    /// wrap, and translatable throughout (an x86-64 range may not straddle the
    /// non-canonical hole). Returns the last address.
    func checkRange(_ address: UInt64, _ length: UInt64) throws(PageTableError) -> UInt64 {
        guard length != 0, length & 0xFFF == 0 else { throw .invalidLength(length) }
        guard address & 0xFFF == 0 else { throw .misalignedAddress(address, size: .size4K) }
        let (end, overflow) = address.addingReportingOverflow(length - 1)
        guard !overflow else { throw .rangeOverflow(address: address, length: length) }
        try Format.checkAddress(address)
        do {
            try Format.checkAddress(end)
        } catch {
            // Name the first address that cannot be translated, not the last.
            if case .nonCanonicalAddress = error, address >> 47 == 0 { throw .nonCanonicalAddress(1 << 47) }
            throw error
        }
        if address >> 63 != end >> 63 {
            // Low half to high half: the hole in between is not canonical.
            throw .nonCanonicalAddress(1 << 47)
        }
        return end
    }

    /// Visits every leaf overlapping `[address, last]` in ascending order.
    /// `body` returns what to do with a leaf that lies wholly in the range;
    /// leaves that stick out of it are first demoted into smaller pages.
    func forEachLeaf(from address: UInt64, through last: UInt64,
                     _ body: (_ entry: inout UInt64, _ base: UInt64, _ size: PageSize) throws(PageTableError) -> Void)
        throws(PageTableError) {
        var cursor = address
        outer: while cursor <= last {
            var t = table(root)
            var level = 4
            while true {
                let i = PageTableGeometry.index(cursor, level: level)
                let e = t[i]
                let span = UInt64(1) << (12 + 9 * UInt64(level - 1))
                if !Format.isPresent(e) {
                    let (next, o) = (cursor | (span - 1)).addingReportingOverflow(1)
                    if o { break outer }
                    cursor = next
                    continue outer
                }
                if level == 1 || (level <= 3 && Format.isLargePage(e)) {
                    let size = PageSize(rawValue: level) ?? .size4K
                    let base = cursor & ~(span - 1)
                    if base < address || base + (span - 1) > last {
                        try demote(t, i, size: size)
                        continue outer
                    }
                    var entry = e
                    try body(&entry, base, size)
                    t[i] = entry
                    let (next, o) = (base + (span - 1)).addingReportingOverflow(1)
                    if o { break outer }
                    cursor = next
                    continue outer
                }
                t = table(Format.tableAddress(e))
                level -= 1
            }
        }
    }

    /// Replaces a large leaf by a table of 512 leaves one size down with the
    /// same attributes (what a partial unmap or protect of a large page needs).
    func demote(_ t: UnsafeMutablePointer<UInt64>, _ i: Int, size: PageSize) throws(PageTableError) {
        guard let child = size.smaller else { return }
        let e = t[i]
        let attributes = Format.attributes(e, size: size)
        let base = Format.leafAddress(e, size: size)
        let new = try frames.allocateTableFrame()
        _tableCount += 1
        let nt = table(new)
        for k in 0..<512 {
            nt[k] = try Format.leafEntry(base + UInt64(k) << child.shift, size: child, attributes: attributes)
        }
        t[i] = Format.tableEntry(new)
        countLeaf(size, -1)
        countLeaf(child, 512)
    }

    /// Removes every translation in `[address, address + length)`; a large
    /// page partly inside is split first. Returns the bytes unmapped.
    @discardableResult
    public func unmap(_ address: UInt64, length: UInt64) throws(PageTableError) -> UInt64 {
        let last = try checkRange(address, length)
        var removed: UInt64 = 0
        try forEachLeaf(from: address, through: last) { (entry, _, size) throws(PageTableError) in
            entry = 0
            removed += size.bytes
            countLeaf(size, -1)
        }
        return removed
    }

    /// Rewrites the attributes of every leaf in the range through `change`
    /// (hat_chgprot); unmapped parts are skipped. Returns the bytes visited.
    @discardableResult
    public func protect(_ address: UInt64, length: UInt64,
                        _ change: (PageAttributes) -> PageAttributes) throws(PageTableError) -> UInt64 {
        let last = try checkRange(address, length)
        var visited: UInt64 = 0
        try forEachLeaf(from: address, through: last) { (entry, _, size) throws(PageTableError) in
            let old = Format.attributes(entry, size: size)
            let new = change(old)
            if new != old {
                entry = try Format.leafEntry(Format.leafAddress(entry, size: size), size: size, attributes: new)
            }
            visited += size.bytes
        }
        return visited
    }

    /// Sets the access rights of every leaf in the range, keeping its other attributes.
    @discardableResult
    public func protect(_ address: UInt64, length: UInt64,
                        access: PageAttributes.Access) throws(PageTableError) -> UInt64 {
        try protect(address, length: length) { old in
            var a = old
            a.access = access
            return a
        }
    }

    /// Maps `[virtualAddress, + length)` to `[physicalAddress, + length)` using
    /// the largest pages (up to `largestPage`) that alignment allows.
    /// Returns the number of leaves written. All or nothing.
    @discardableResult
    public func mapRange(_ virtualAddress: UInt64, to physicalAddress: UInt64, length: UInt64,
                         attributes: PageAttributes, largestPage: PageSize = .size1G) throws(PageTableError) -> Int {
        let last = try checkRange(virtualAddress, length)
        guard physicalAddress & 0xFFF == 0 else { throw .misalignedPhysicalAddress(physicalAddress, size: .size4K) }
        let (_, o) = physicalAddress.addingReportingOverflow(length - 1)
        guard !o else { throw .rangeOverflow(address: physicalAddress, length: length) }
        var va = virtualAddress, pa = physicalAddress, leaves = 0
        do throws(PageTableError) {
            while va <= last && va >= virtualAddress {
                var size = largestPage
                while size != .size4K && !(Format.supports(size) && (va | pa) & size.offsetMask == 0
                                            && last - va >= size.bytes - 1) {
                    size = size.smaller ?? .size4K
                }
                try map(va, to: pa, size: size, attributes: attributes)
                leaves += 1
                va &+= size.bytes
                pa &+= size.bytes
                if va == 0 { break }
            }
        } catch {
            if va > virtualAddress { _ = try? unmap(virtualAddress, length: va - virtualAddress) }
            throw error
        }
        return leaves
    }

    /// Simulates the MMU: translates `address` for `kind`, checks the leaf's
    /// rights (and US for a user access where the format has it), and sets the
    /// accessed bit at every level and the dirty bit on a write.
    public func access(_ address: UInt64, _ kind: MemoryAccess, user: Bool = false) throws(PageTableError) -> AccessOutcome {
        try Format.checkAddress(address)
        var t = table(root)
        var level = 4
        var path: [(UnsafeMutablePointer<UInt64>, Int)] = []
        path.reserveCapacity(4)
        while true {
            let i = PageTableGeometry.index(address, level: level)
            let e = t[i]
            guard Format.isPresent(e) else { return .notMapped(level: level) }
            path.append((t, i))
            if level == 1 || (level <= 3 && Format.isLargePage(e)) {
                let size = PageSize(rawValue: level) ?? .size4K
                let a = Format.attributes(e, size: size)
                let allowed: Bool
                switch kind {
                case .read: allowed = a.access.contains(.read)
                case .write: allowed = a.access.contains(.write)
                case .execute: allowed = a.access.contains(.execute)
                }
                let translation = Translation(virtualAddress: address,
                                              physicalAddress: Format.leafAddress(e, size: size) | address & size.offsetMask,
                                              size: size, attributes: a, entry: e)
                if !allowed || (user && Format.self == X86PTEFormat.self && !a.user) {
                    return .protectionViolation(translation)
                }
                for (pt, pi) in path { pt[pi] |= Format.accessedBit }
                if kind == .write { t[i] |= Format.dirtyBit }
                let updated = t[i]
                return .translated(Translation(virtualAddress: address, physicalAddress: translation.physicalAddress,
                                               size: size, attributes: Format.attributes(updated, size: size),
                                               entry: updated))
            }
            t = table(Format.tableAddress(e))
            level -= 1
        }
    }
}
