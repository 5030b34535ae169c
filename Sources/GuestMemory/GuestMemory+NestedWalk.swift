import PageTables

/// One level of the nested-table walk of a guest-physical address, as mdb's
/// `::pte` shows a level: which table, which slot, the raw entry and what it
/// means in the guest's format.
public struct NestedWalkStep: Hashable, Sendable {
    /// 4 (PML4 / EPT PML4) down to 1 (the 4 KiB page table).
    public let level: Int
    /// The table's address in the table-frame allocator.
    public let tableAddress: UInt64
    /// The slot in that table: `(gpa >> (12 + 9 × (level − 1))) & 511`.
    public let index: Int
    /// The raw 64-bit entry.
    public let entry: UInt64
    /// Whether the entry is present in the format's sense (EPT: any of R/W/X,
    /// or the emulation's valid bit; RVI: P).
    public let isPresent: Bool
    /// For a present leaf (level 1, or a 2 MiB / 1 GiB page): its size,
    /// the host address it maps and its decoded attributes. Nil for a table
    /// pointer or an empty slot.
    public let leafSize: PageSize?
    public let hostAddress: UInt64?
    public let attributes: PageAttributes?
    /// For a present non-leaf entry: the next table.
    public let nextTable: UInt64?
}

extension GuestMemory {
    /// The walk of the nested table for `gpa`, level by level, down to the
    /// leaf or to the first empty slot. Reads only: a walk never allocates
    /// a table or sets an accessed bit, so inspecting a guest costs nothing.
    public func nestedWalk(_ gpa: UInt64) throws(GuestMemoryError) -> [NestedWalkStep] {
        guard gpa < limit else { throw .beyondGuestSpace(gpa: gpa, length: 1, limit: limit) }
        return try nested.with { (box) throws(NestedPageTableError) -> [NestedWalkStep] in
            switch box {
            case let t as NestedPageTable<EPTFormat, GuestTableFrames>: return Self.walk(t.table, gpa)
            case let t as NestedPageTable<EPTEmulatedADFormat, GuestTableFrames>: return Self.walk(t.table, gpa)
            case let t as NestedPageTable<RVIFormat, GuestTableFrames>: return Self.walk(t.table, gpa)
            default: return []
            }
        }
    }

    static func walk<F: PTEFormat>(_ table: PageTable<F, GuestTableFrames>, _ gpa: UInt64) -> [NestedWalkStep] {
        var steps: [NestedWalkStep] = []
        var current = table.root
        for level in stride(from: PageTableGeometry.levels, through: 1, by: -1) {
            let shift = 12 + 9 * UInt64(level - 1)
            let index = Int((gpa >> shift) & 511)
            let entry = table.frames.entries(ofTableAt: current)[index]
            let present = F.isPresent(entry)
            let leaf: PageSize? = present && (level == 1 || F.isLargePage(entry)) ? PageSize(level: level) : nil
            steps.append(NestedWalkStep(level: level, tableAddress: current, index: index, entry: entry,
                                        isPresent: present, leafSize: leaf,
                                        hostAddress: leaf.map { F.leafAddress(entry, size: $0) },
                                        attributes: leaf.map { F.attributes(entry, size: $0) },
                                        nextTable: present && leaf == nil ? F.tableAddress(entry) : nil))
            guard present, leaf == nil else { break }
            current = F.tableAddress(entry)
        }
        return steps
    }
}
