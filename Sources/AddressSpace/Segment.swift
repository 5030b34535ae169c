/// `s_flags`
public struct SegmentFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// `S_PURGE` (0x01): unmap in `as_purge`.
    public static let purge = SegmentFlags(rawValue: 0x01)
    /// `S_HOLE` (0x02): a hole; its size is not counted in `a_size`.
    public static let hole = SegmentFlags(rawValue: 0x02)
}

/// A `struct seg`: a contiguous range of an address space run by one driver.
///
/// The address space owns the range fields and changes them only under its
/// write lock (drivers describe changes through their results instead of
/// editing the tree). Read them while holding the address space's lock, or
/// accept a snapshot that may be stale.
public final class Segment: @unchecked Sendable, CustomStringConvertible {
    /// `s_base`
    public internal(set) var base: UInt64
    /// `s_size`
    public internal(set) var size: UInt64
    /// `s_szc`: the largest page-size code the segment uses.
    public internal(set) var sizeCode: UInt8
    /// `s_flags`
    public internal(set) var flags: SegmentFlags
    /// `s_ops` and `s_data`: the driver instance that runs this segment.
    public let driver: any SegmentDriver
    /// `s_as`
    public internal(set) weak var addressSpace: AddressSpace?
    /// The `struct seg *` value `::seg` prints in its SEG column.
    public let address: UInt64
    /// The tree slot (fixed for the segment's life; 0 once detached).
    var slot: Int32 = 0
    /// Whether the segment's size is part of `a_size` (mapped, not a hole,
    /// or attached with accounting), so unmapping it subtracts exactly what
    /// was added.
    var countsInSize = false

    init(base: UInt64, size: UInt64, driver: any SegmentDriver, flags: SegmentFlags, sizeCode: UInt8,
         address: UInt64, addressSpace: AddressSpace) {
        self.base = base
        self.size = size
        self.driver = driver
        self.flags = flags
        self.sizeCode = sizeCode
        self.address = address
        self.addressSpace = addressSpace
    }

    /// The last address (inclusive); a segment may end exactly at 2^64.
    public var last: UInt64 { base &+ (size &- 1) }

    /// Whether `address` lies in the segment.
    @inlinable public func contains(_ address: UInt64) -> Bool {
        address >= base && address &- base < size
    }

    /// Whether the segment is still attached to an address space.
    public var isAttached: Bool { slot != 0 }

    public var description: String {
        "seg [0x\(String(base, radix: 16)), +0x\(String(size, radix: 16))) \(driver.opsName)"
    }
}
