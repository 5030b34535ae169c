/// Intel EPT entries (SDM vol. 3 §29.3), translating guest-physical addresses.
///
/// | bit | meaning |
/// |---|---|
/// | 0 | R: read |
/// | 1 | W: write |
/// | 2 | X: execute |
/// | 3..5 | memory type (leaf): 0 UC, 1 WC, 4 WT, 5 WP, 6 WB |
/// | 6 | IPAT: ignore guest PAT (leaf) |
/// | 7 | large page (PDE, PDPTE) |
/// | 8 | A: accessed (when EPTP bit 6 enables A/D) |
/// | 9 | D: dirty (leaf) |
/// | 12..51 | frame |
///
/// An entry is present when any of R/W/X is set. Write without read is an EPT
/// misconfiguration and is refused, as are the x86-only notions (user, global,
/// UC-).
public enum EPTFormat: PTEFormat {
    public static let read: UInt64 = 1 << 0
    public static let write: UInt64 = 1 << 1
    public static let execute: UInt64 = 1 << 2
    public static let memoryTypeShift: UInt64 = 3
    public static let memoryTypeMask: UInt64 = 0x7 << 3
    public static let ignorePAT: UInt64 = 1 << 6
    public static let largePage: UInt64 = 1 << 7
    public static let accessed: UInt64 = 1 << 8
    public static let dirty: UInt64 = 1 << 9

    /// EPT memory-type encodings (bits 3..5 of a leaf, bits 0..2 of the EPTP).
    public enum MemoryType: UInt64, Sendable {
        case uncacheable = 0
        case writeCombining = 1
        case writeThrough = 4
        case writeProtected = 5
        case writeBack = 6
    }

    public static var name: String { "EPT" }
    @inlinable public static var accessedBit: UInt64 { accessed }
    @inlinable public static var dirtyBit: UInt64 { dirty }

    @inlinable
    public static func checkAddress(_ address: UInt64) throws(PageTableError) { try checkGuestPhysical(address) }

    @inlinable @inline(__always)
    public static func isPresent(_ entry: UInt64) -> Bool { entry & (read | write | execute) != 0 }

    @inlinable @inline(__always)
    public static func isLargePage(_ entry: UInt64) -> Bool { entry & largePage != 0 }

    @inlinable @inline(__always)
    public static func tableEntry(_ physicalAddress: UInt64) -> UInt64 {
        physicalAddress | read | write | execute
    }

    @inlinable
    public static func leafEntry(_ physicalAddress: UInt64, size: PageSize,
                                 attributes a: PageAttributes) throws(PageTableError) -> UInt64 {
        try checkLeaf(physicalAddress, size: size)
        guard !a.access.isEmpty else {
            throw .attributesNotRepresentable(format: name, reason: "a mapping with no access (it would be absent)")
        }
        guard !(a.access.contains(.write) && !a.access.contains(.read)) else {
            throw .attributesNotRepresentable(format: name, reason: "write without read (EPT misconfiguration)")
        }
        guard !a.user, !a.global else {
            throw .attributesNotRepresentable(format: name, reason: "user or global bits, which EPT lacks")
        }
        let type: MemoryType
        switch a.cache {
        case .writeBack: type = .writeBack
        case .writeThrough: type = .writeThrough
        case .writeCombining: type = .writeCombining
        case .writeProtected: type = .writeProtected
        case .uncacheable: type = .uncacheable
        case .uncacheableMinus:
            throw .attributesNotRepresentable(format: name, reason: "UC-, which is a PAT type")
        }
        var e = physicalAddress | type.rawValue << memoryTypeShift
        if a.access.contains(.read) { e |= read }
        if a.access.contains(.write) { e |= write }
        if a.access.contains(.execute) { e |= execute }
        if a.ignoreGuestPAT { e |= ignorePAT }
        if a.accessed { e |= accessed }
        if a.dirty { e |= dirty }
        if size != .size4K { e |= largePage }
        return e
    }

    @inlinable
    public static func attributes(_ e: UInt64, size: PageSize) -> PageAttributes {
        var access: PageAttributes.Access = []
        if e & read != 0 { access.insert(.read) }
        if e & write != 0 { access.insert(.write) }
        if e & execute != 0 { access.insert(.execute) }
        let cache: PageAttributes.CacheType
        switch MemoryType(rawValue: (e & memoryTypeMask) >> memoryTypeShift) {
        case .uncacheable: cache = .uncacheable
        case .writeCombining: cache = .writeCombining
        case .writeThrough: cache = .writeThrough
        case .writeProtected: cache = .writeProtected
        case .writeBack, .none: cache = .writeBack
        }
        return PageAttributes(access: access, cache: cache, accessed: e & accessed != 0,
                              dirty: e & dirty != 0, ignoreGuestPAT: e & ignorePAT != 0)
    }

    /// The EPT pointer for a table rooted at `root`: memory type of the
    /// paging structures in bits 0..2, (levels − 1) in bits 3..5, and bit 6 to
    /// enable accessed/dirty flags.
    public static func eptPointer(root: UInt64, memoryType: MemoryType = .writeBack,
                                  accessedDirtyEnabled: Bool) throws(PageTableError) -> UInt64 {
        try checkLeaf(root, size: .size4K)
        return root | memoryType.rawValue | UInt64(PageTableGeometry.levels - 1) << 3
            | (accessedDirtyEnabled ? 1 << 6 : 0)
    }
}
