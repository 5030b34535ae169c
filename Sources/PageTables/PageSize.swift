/// The sizes a leaf entry can map in a 4-level x86-64 style table.
public enum PageSize: Int, Hashable, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    /// 4 KiB, a PTE at level 1.
    case size4K = 1
    /// 2 MiB, a PDE with the large-page bit, level 2.
    case size2M = 2
    /// 1 GiB, a PDPTE with the large-page bit, level 3.
    case size1G = 3

    /// The table level whose entry maps a page of this size (1 = PT, 4 = PML4).
    @inlinable public var level: Int { rawValue }
    /// log2 of the size in bytes.
    @inlinable public var shift: UInt64 { 12 + 9 * UInt64(rawValue - 1) }
    @inlinable public var bytes: UInt64 { 1 << shift }
    /// `bytes - 1`
    @inlinable public var offsetMask: UInt64 { bytes - 1 }

    /// The size one level down (what a large page demotes into).
    @inlinable public var smaller: PageSize? { PageSize(rawValue: rawValue - 1) }

    /// The size mapped by an entry at `level` 1...3.
    @inlinable public init?(level: Int) { self.init(rawValue: level) }

    public static func < (a: PageSize, b: PageSize) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .size4K: return "4K"
        case .size2M: return "2M"
        case .size1G: return "1G"
        }
    }
}

/// Shape of the 4-level walk shared by every format here.
public enum PageTableGeometry {
    /// Entries per table (9 index bits per level).
    public static let entriesPerTable = 512
    /// Levels: PML4 (4), PDPT (3), PD (2), PT (1).
    public static let levels = 4
    /// Virtual (or guest-physical) address bits translated: 4 × 9 + 12.
    public static let addressBits: UInt64 = 48
    /// Physical address bits an entry can hold (PFN field bits 12..51).
    public static let physicalAddressBits: UInt64 = 52
    /// Bits 12..51 of an entry.
    public static let frameMask: UInt64 = 0x000F_FFFF_FFFF_F000

    /// The index of `address` in a table at `level`.
    @inlinable @inline(__always)
    public static func index(_ address: UInt64, level: Int) -> Int {
        Int(truncatingIfNeeded: (address >> (12 + 9 * UInt64(level - 1))) & 511)
    }
}
