/// A software 4-level page table in the entry format `Format`, with tables
/// from `Frames`.
///
/// `map`, `lookup` and `unmap` walk from ``root`` through at most four tables;
/// with tables already present they allocate nothing. Emptied tables stay in
/// place (a later map reuses them) until ``reclaimEmptyTables()``; illumos
/// likewise keeps idle htables for reuse.
///
/// Not thread safe: the owner (a HAT) serialises calls.
public final class PageTable<Format: PTEFormat, Frames: TableFrameAllocator> {
    /// The allocator tables come from.
    public let frames: Frames
    /// Physical address of the top table (CR3's base, or the EPTP's).
    public let root: UInt64
    /// Tables held, including the root.
    public var tableCount: Int { _tableCount }
    @usableFromInline var _tableCount = 1
    @usableFromInline var leaves: (UInt64, UInt64, UInt64) = (0, 0, 0)

    public init(frames: Frames) throws(PageTableError) {
        self.frames = frames
        self.root = try frames.allocateTableFrame()
    }

    deinit {
        freeSubtree(root, level: 4)
        frames.freeTableFrame(root)
    }

    /// Leaf entries of each size.
    public func leafCount(_ size: PageSize) -> UInt64 {
        switch size {
        case .size4K: return leaves.0
        case .size2M: return leaves.1
        case .size1G: return leaves.2
        }
    }

    /// Bytes mapped by all leaves.
    public var mappedBytes: UInt64 {
        leaves.0 << 12 + leaves.1 << 21 + leaves.2 << 30
    }

    @inlinable @inline(__always)
    func table(_ physicalAddress: UInt64) -> UnsafeMutablePointer<UInt64> {
        frames.entries(ofTableAt: physicalAddress)
    }

    @inlinable @inline(__always)
    func countLeaf(_ size: PageSize, _ delta: Int64) {
        let d = UInt64(bitPattern: delta)
        switch size {
        case .size4K: leaves.0 &+= d
        case .size2M: leaves.1 &+= d
        case .size1G: leaves.2 &+= d
        }
    }

    // MARK: Map

    /// Maps the page of `size` at `virtualAddress` to `physicalAddress`.
    ///
    /// Refuses a non-canonical or out-of-range address, misalignment, an
    /// unrepresentable attribute set, and any overlap with an existing mapping
    /// (an empty table where a large page goes is freed and replaced).
    @inlinable
    public func map(_ virtualAddress: UInt64, to physicalAddress: UInt64, size: PageSize = .size4K,
                    attributes: PageAttributes) throws(PageTableError) {
        try Format.checkAddress(virtualAddress)
        guard virtualAddress & size.offsetMask == 0 else { throw .misalignedAddress(virtualAddress, size: size) }
        let leaf = try Format.leafEntry(physicalAddress, size: size, attributes: attributes)
        var t = table(root)
        var level = 4
        while level > size.level {
            let i = PageTableGeometry.index(virtualAddress, level: level)
            let e = t[i]
            if !Format.isPresent(e) {
                let new = try frames.allocateTableFrame()
                _tableCount += 1
                t[i] = Format.tableEntry(new)
                t = table(new)
            } else if level <= 3 && Format.isLargePage(e) {
                let existing = PageSize(rawValue: level) ?? .size1G
                throw .alreadyMapped(address: virtualAddress & ~existing.offsetMask, existing: existing)
            } else {
                t = table(Format.tableAddress(e))
            }
            level -= 1
        }
        let i = PageTableGeometry.index(virtualAddress, level: level)
        let e = t[i]
        if Format.isPresent(e) {
            if level == 1 || Format.isLargePage(e) {
                throw .alreadyMapped(address: virtualAddress, existing: size)
            }
            try replaceEmptySubtree(t, i, level: level, base: virtualAddress)
        }
        t[i] = leaf
        countLeaf(size, 1)
    }

    /// A large page is going where a table is: allowed only when nothing
    /// below the table is mapped.
    @usableFromInline
    func replaceEmptySubtree(_ t: UnsafeMutablePointer<UInt64>, _ i: Int, level: Int,
                             base: UInt64) throws(PageTableError) {
        let sub = Format.tableAddress(t[i])
        if let first = firstLeaf(sub, level: level - 1, base: base) {
            throw .alreadyMapped(address: first.address, existing: first.size)
        }
        freeSubtree(sub, level: level - 1)
        frames.freeTableFrame(sub)
        _tableCount -= 1
        t[i] = 0
    }

    /// The first leaf under the table at `level`, whose first address is `base`.
    func firstLeaf(_ tableAddress: UInt64, level: Int, base: UInt64) -> (address: UInt64, size: PageSize)? {
        let t = table(tableAddress)
        let span = UInt64(1) << (12 + 9 * UInt64(level - 1))
        for k in 0..<512 where Format.isPresent(t[k]) {
            let a = base + UInt64(k) * span
            if level == 1 || Format.isLargePage(t[k]) { return (a, PageSize(rawValue: level) ?? .size4K) }
            if let found = firstLeaf(Format.tableAddress(t[k]), level: level - 1, base: a) { return found }
        }
        return nil
    }

    /// Frees every table below the table at `level` (not the table itself).
    func freeSubtree(_ tableAddress: UInt64, level: Int) {
        guard level > 1 else { return }
        let t = table(tableAddress)
        for k in 0..<512 {
            let e = t[k]
            guard Format.isPresent(e) else { continue }
            if level <= 3 && Format.isLargePage(e) {
                countLeaf(PageSize(rawValue: level) ?? .size4K, -1)
            } else {
                let sub = Format.tableAddress(e)
                countLeafs(under: sub, level: level - 1)
                freeSubtree(sub, level: level - 1)
                frames.freeTableFrame(sub)
                _tableCount -= 1
            }
            t[k] = 0
        }
    }

    private func countLeafs(under tableAddress: UInt64, level: Int) {
        guard level == 1 else { return }
        let t = table(tableAddress)
        for k in 0..<512 where Format.isPresent(t[k]) { countLeaf(.size4K, -1) }
    }

    // MARK: Lookup

    /// Translates `virtualAddress`, or nil if nothing maps it.
    @inlinable
    public func lookup(_ virtualAddress: UInt64) throws(PageTableError) -> Translation? {
        guard let (e, size) = try leaf(virtualAddress) else { return nil }
        return Translation(virtualAddress: virtualAddress,
                           physicalAddress: Format.leafAddress(e, size: size) | virtualAddress & size.offsetMask,
                           size: size, attributes: Format.attributes(e, size: size), entry: e)
    }

    /// Translates without decoding attributes: the physical address or nil.
    @inlinable
    public func physicalAddress(of virtualAddress: UInt64) throws(PageTableError) -> UInt64? {
        guard let (e, size) = try leaf(virtualAddress) else { return nil }
        return Format.leafAddress(e, size: size) | virtualAddress & size.offsetMask
    }

    /// The leaf entry that maps `virtualAddress` and its page size, or nil:
    /// the hardware walk from the root down to a 4 KiB entry or a large page.
    @inlinable
    func leaf(_ virtualAddress: UInt64) throws(PageTableError) -> (entry: UInt64, size: PageSize)? {
        try Format.checkAddress(virtualAddress)
        var t = table(root)
        var level = 4
        while true {
            let e = t[PageTableGeometry.index(virtualAddress, level: level)]
            guard Format.isPresent(e) else { return nil }
            if level == 1 || (level <= 3 && Format.isLargePage(e)) {
                return (e, PageSize(rawValue: level) ?? .size4K)
            }
            t = table(Format.tableAddress(e))
            level -= 1
        }
    }
}
