/// What a leaf entry says about one address.
public struct Translation: Hashable, Sendable, CustomStringConvertible {
    /// The address that was translated.
    public let virtualAddress: UInt64
    /// The physical address it translates to.
    public let physicalAddress: UInt64
    /// The size of the page that maps it.
    public let size: PageSize
    public let attributes: PageAttributes
    /// The raw leaf entry.
    public let entry: UInt64

    public init(virtualAddress: UInt64, physicalAddress: UInt64, size: PageSize,
                attributes: PageAttributes, entry: UInt64) {
        self.virtualAddress = virtualAddress
        self.physicalAddress = physicalAddress
        self.size = size
        self.attributes = attributes
        self.entry = entry
    }

    /// First virtual address of the page.
    public var pageBase: UInt64 { virtualAddress & ~size.offsetMask }
    /// First physical address of the page.
    public var frameAddress: UInt64 { physicalAddress & ~size.offsetMask }

    public var description: String {
        "0x\(String(virtualAddress, radix: 16)) -> 0x\(String(physicalAddress, radix: 16)) \(size) \(attributes)"
    }
}

/// The kind of access a simulated walk performs.
public enum MemoryAccess: Hashable, Sendable {
    case read
    case write
    case execute
}

/// The result of a simulated access (``PageTable/access(_:_:user:)``).
public enum AccessOutcome: Hashable, Sendable {
    /// Permitted; accessed (and for a write, dirty) bits are now set.
    case translated(Translation)
    /// No translation: the entry at `level` (4 = top) is not present.
    case notMapped(level: Int)
    /// Mapped, but the leaf does not allow this access.
    case protectionViolation(Translation)
}
