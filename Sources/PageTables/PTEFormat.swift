/// How one kind of page-table entry encodes "present", "points at a table",
/// "maps a page" and the page's attributes.
///
/// ``PageTable`` walks any format through these static functions; they are
/// small and `@inlinable` so a specialised walker compiles to shifts and masks.
/// Formats share the 4-level, 512-entry, 4 KiB-table geometry of x86-64
/// (``PageTableGeometry``); they differ in bits. Native x86-64 (``X86PTEFormat``),
/// AMD RVI nested entries (``RVIFormat``) and Intel EPT (``EPTFormat``) are
/// provided; another format is one more conforming type.
public protocol PTEFormat: Sendable {
    /// A name for messages (`"x86-64"`, `"EPT"`).
    static var name: String { get }
    /// Whether the format has leaves of this size (all three by default).
    static func supports(_ size: PageSize) -> Bool
    /// The bit the walker sets when an entry is used, 0 if none.
    static var accessedBit: UInt64 { get }
    /// The bit the walker sets in a leaf on a write, 0 if none.
    static var dirtyBit: UInt64 { get }

    /// Refuses addresses the table cannot translate.
    static func checkAddress(_ address: UInt64) throws(PageTableError)
    /// Whether the entry maps or points at anything.
    static func isPresent(_ entry: UInt64) -> Bool
    /// Whether a present entry at level 2 or 3 maps a large page rather than
    /// pointing at a table.
    static func isLargePage(_ entry: UInt64) -> Bool
    /// A non-leaf entry pointing at the table at `physicalAddress`. Non-leaf
    /// entries grant everything; the leaf decides.
    static func tableEntry(_ physicalAddress: UInt64) -> UInt64
    /// A leaf mapping `physicalAddress` (aligned to `size`).
    static func leafEntry(_ physicalAddress: UInt64, size: PageSize,
                          attributes: PageAttributes) throws(PageTableError) -> UInt64
    /// The attributes a leaf of `size` encodes.
    static func attributes(_ entry: UInt64, size: PageSize) -> PageAttributes
}

extension PTEFormat {
    @inlinable @inline(__always)
    public static func supports(_ size: PageSize) -> Bool { true }

    /// The leaf sizes the format maps.
    public static var supportedPageSizes: [PageSize] { PageSize.allCases.filter { supports($0) } }

    /// The physical address a leaf of `size` maps (bits 12..51, less the low
    /// bits a large page uses for other purposes, such as x86's PAT bit 12).
    @inlinable @inline(__always)
    public static func leafAddress(_ entry: UInt64, size: PageSize) -> UInt64 {
        entry & PageTableGeometry.frameMask & ~size.offsetMask
    }

    /// The physical address of the table a non-leaf entry points at.
    @inlinable @inline(__always)
    public static func tableAddress(_ entry: UInt64) -> UInt64 {
        entry & PageTableGeometry.frameMask
    }

    /// Checks that a leaf can map `physicalAddress` at `size`.
    @inlinable
    public static func checkLeaf(_ physicalAddress: UInt64, size: PageSize) throws(PageTableError) {
        guard supports(size) else { throw .pageSizeNotSupported(size, format: name) }
        guard physicalAddress >> PageTableGeometry.physicalAddressBits == 0 else {
            throw .physicalAddressOutOfRange(physicalAddress)
        }
        guard physicalAddress & size.offsetMask == 0 else {
            throw .misalignedPhysicalAddress(physicalAddress, size: size)
        }
    }
}

/// Nested (guest-physical) addresses are plain numbers below 2^48.
@inlinable
func checkGuestPhysical(_ address: UInt64) throws(PageTableError) {
    guard address >> PageTableGeometry.addressBits == 0 else {
        throw .addressOutOfRange(address, limit: 1 << PageTableGeometry.addressBits)
    }
}
