extension PageTable {
    /// Every leaf in ascending address order (x86-64 high-half addresses are
    /// sign-extended).
    public func forEachMapping(_ body: (Translation) -> Void) {
        walk(root, level: 4, base: 0, body)
    }

    /// All leaves, in order.
    public var mappings: [Translation] {
        var out: [Translation] = []
        forEachMapping { out.append($0) }
        return out
    }

    private func walk(_ tableAddress: UInt64, level: Int, base: UInt64, _ body: (Translation) -> Void) {
        let t = table(tableAddress)
        let span = UInt64(1) << (12 + 9 * UInt64(level - 1))
        for k in 0..<512 {
            let e = t[k]
            guard Format.isPresent(e) else { continue }
            var a = base | UInt64(k) * span
            if level == 4 && a >> 47 != 0 && Format.self == X86PTEFormat.self { a |= 0xFFFF_0000_0000_0000 }
            if level == 1 || (level <= 3 && Format.isLargePage(e)) {
                let size = PageSize(rawValue: level) ?? .size4K
                body(Translation(virtualAddress: a, physicalAddress: Format.leafAddress(e, size: size),
                                 size: size, attributes: Format.attributes(e, size: size), entry: e))
            } else {
                walk(Format.tableAddress(e), level: level - 1, base: a, body)
            }
        }
    }

    /// Frees tables that map nothing (the root stays). Returns how many.
    @discardableResult
    public func reclaimEmptyTables() -> Int {
        let before = _tableCount
        _ = reclaim(root, level: 4)
        return before - _tableCount
    }

    /// Reclaims below the table; returns whether the table is now empty.
    private func reclaim(_ tableAddress: UInt64, level: Int) -> Bool {
        let t = table(tableAddress)
        var empty = true
        for k in 0..<512 {
            let e = t[k]
            guard Format.isPresent(e) else { continue }
            if level == 1 || (level <= 3 && Format.isLargePage(e)) {
                empty = false
                continue
            }
            let sub = Format.tableAddress(e)
            if reclaim(sub, level: level - 1) {
                frames.freeTableFrame(sub)
                _tableCount -= 1
                t[k] = 0
            } else {
                empty = false
            }
        }
        return empty
    }

    /// Clears the accessed and dirty bits of every leaf in the range and
    /// returns the pages of `size`-granularity bases that were dirty (the
    /// "get and reset" of dirty tracking).
    public func harvestDirty(_ address: UInt64, length: UInt64) throws(PageTableError) -> [UInt64] {
        let last = try checkRange(address, length)
        var dirty: [UInt64] = []
        let d = Format.dirtyBit
        guard d != 0 else { return [] }
        var cursor = address
        while cursor <= last {
            guard let tr = try lookup(cursor) else {
                let (n, o) = cursor.addingReportingOverflow(0x1000)
                if o { break }
                cursor = n
                continue
            }
            if tr.entry & d != 0 { dirty.append(tr.pageBase) }
            let (n, o) = tr.pageBase.addingReportingOverflow(tr.size.bytes)
            if o || n > last { break }
            cursor = n
        }
        // Clear without demoting large pages that stick out of the range.
        for base in dirty { clearBits(base, Format.dirtyBit | Format.accessedBit) }
        return dirty
    }

    private func clearBits(_ address: UInt64, _ bits: UInt64) {
        var t = table(root)
        var level = 4
        while true {
            let i = PageTableGeometry.index(address, level: level)
            let e = t[i]
            guard Format.isPresent(e) else { return }
            if level == 1 || (level <= 3 && Format.isLargePage(e)) {
                t[i] = e & ~bits
                return
            }
            t = table(Format.tableAddress(e))
            level -= 1
        }
    }
}
