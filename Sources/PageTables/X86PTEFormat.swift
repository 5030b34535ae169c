/// The native x86-64 4-level entry (Intel SDM vol. 3 §4.5, AMD APM vol. 2 §5.3).
///
/// | bit | name | meaning |
/// |---|---|---|
/// | 0 | P | present |
/// | 1 | RW | writable |
/// | 2 | US | user accessible |
/// | 3 | PWT | write-through |
/// | 4 | PCD | cache disable |
/// | 5 | A | accessed |
/// | 6 | D | dirty (leaf) |
/// | 7 | PS | large page (PDE, PDPTE) |
/// | 8 | G | global (leaf) |
/// | 12..51 | PFN | frame (bit 12 is PAT in a large leaf) |
/// | 63 | NX | no execute |
///
/// Every present page is readable. Cache types are PWT/PCD under the power-on
/// PAT (WB, WT, UC-, UC); write-combining needs a PAT entry and is refused.
public enum X86PTEFormat: PTEFormat {
    public static let present: UInt64 = 1 << 0
    public static let writable: UInt64 = 1 << 1
    public static let user: UInt64 = 1 << 2
    public static let writeThrough: UInt64 = 1 << 3
    public static let cacheDisable: UInt64 = 1 << 4
    public static let accessed: UInt64 = 1 << 5
    public static let dirty: UInt64 = 1 << 6
    public static let pageSize: UInt64 = 1 << 7
    public static let global: UInt64 = 1 << 8
    public static let noExecute: UInt64 = 1 << 63

    public static var name: String { "x86-64" }
    @inlinable public static var accessedBit: UInt64 { accessed }
    @inlinable public static var dirtyBit: UInt64 { dirty }

    /// Canonical: bits 63..47 all equal (48-bit virtual addresses).
    @inlinable
    public static func checkAddress(_ address: UInt64) throws(PageTableError) {
        let top = address >> 47
        guard top == 0 || top == 0x1_FFFF else { throw .nonCanonicalAddress(address) }
    }

    @inlinable @inline(__always)
    public static func isPresent(_ entry: UInt64) -> Bool { entry & present != 0 }

    @inlinable @inline(__always)
    public static func isLargePage(_ entry: UInt64) -> Bool { entry & pageSize != 0 }

    @inlinable @inline(__always)
    public static func tableEntry(_ physicalAddress: UInt64) -> UInt64 {
        physicalAddress | present | writable | user
    }

    @inlinable
    public static func leafEntry(_ physicalAddress: UInt64, size: PageSize,
                                 attributes a: PageAttributes) throws(PageTableError) -> UInt64 {
        try checkLeaf(physicalAddress, size: size)
        var e = try encode(a, format: name)
        e |= physicalAddress
        if size != .size4K { e |= pageSize }
        return e
    }

    /// The attribute bits shared by x86-64 and RVI leaves.
    @inlinable
    static func encode(_ a: PageAttributes, format: String) throws(PageTableError) -> UInt64 {
        guard a.access.contains(.read) else {
            throw .attributesNotRepresentable(format: format, reason: "a present page that is not readable (\(a))")
        }
        guard !a.ignoreGuestPAT else {
            throw .attributesNotRepresentable(format: format, reason: "IPAT, which only EPT has")
        }
        var e = present
        if a.access.contains(.write) { e |= writable }
        if !a.access.contains(.execute) { e |= noExecute }
        if a.user { e |= user }
        if a.global { e |= global }
        if a.accessed { e |= accessed }
        if a.dirty { e |= dirty }
        switch a.cache {
        case .writeBack: break
        case .writeThrough: e |= writeThrough
        case .uncacheableMinus: e |= cacheDisable
        case .uncacheable: e |= cacheDisable | writeThrough
        case .writeCombining, .writeProtected:
            throw .attributesNotRepresentable(format: format, reason: "\(a.cache) without a PAT entry")
        }
        return e
    }

    @inlinable
    public static func attributes(_ e: UInt64, size: PageSize) -> PageAttributes {
        var access: PageAttributes.Access = .read
        if e & writable != 0 { access.insert(.write) }
        if e & noExecute == 0 { access.insert(.execute) }
        let cache: PageAttributes.CacheType
        switch (e & cacheDisable != 0, e & writeThrough != 0) {
        case (false, false): cache = .writeBack
        case (false, true): cache = .writeThrough
        case (true, false): cache = .uncacheableMinus
        case (true, true): cache = .uncacheable
        }
        return PageAttributes(access: access, user: e & user != 0, global: e & global != 0, cache: cache,
                              accessed: e & accessed != 0, dirty: e & dirty != 0)
    }
}

/// AMD RVI (nested paging) entries: the x86-64 long-mode format, translating
/// guest-physical addresses (below 2^48, not sign-extended). The processor
/// treats every nested access as a user access, so US is set in every entry;
/// G has no meaning in a nested table and is refused.
public enum RVIFormat: PTEFormat {
    public static var name: String { "RVI" }
    @inlinable public static var accessedBit: UInt64 { X86PTEFormat.accessed }
    @inlinable public static var dirtyBit: UInt64 { X86PTEFormat.dirty }

    @inlinable
    public static func checkAddress(_ address: UInt64) throws(PageTableError) { try checkGuestPhysical(address) }
    @inlinable @inline(__always)
    public static func isPresent(_ entry: UInt64) -> Bool { X86PTEFormat.isPresent(entry) }
    @inlinable @inline(__always)
    public static func isLargePage(_ entry: UInt64) -> Bool { X86PTEFormat.isLargePage(entry) }
    @inlinable @inline(__always)
    public static func tableEntry(_ physicalAddress: UInt64) -> UInt64 { X86PTEFormat.tableEntry(physicalAddress) }

    @inlinable
    public static func leafEntry(_ physicalAddress: UInt64, size: PageSize,
                                 attributes a: PageAttributes) throws(PageTableError) -> UInt64 {
        try checkLeaf(physicalAddress, size: size)
        guard !a.global else {
            throw .attributesNotRepresentable(format: name, reason: "a global nested mapping")
        }
        var e = try X86PTEFormat.encode(a, format: name) | X86PTEFormat.user | physicalAddress
        if size != .size4K { e |= X86PTEFormat.pageSize }
        return e
    }

    @inlinable
    public static func attributes(_ e: UInt64, size: PageSize) -> PageAttributes {
        X86PTEFormat.attributes(e, size: size)
    }
}
