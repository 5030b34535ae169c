import AddressSpace
import HostMemory

/// A thread stack laid out as `segkp` lays one out, on real memory: a red
/// zone of inaccessible pages at the low end (stacks grow down on x86-64),
/// then the usable stack, zero-filled on first touch. A touch of the red
/// zone is an overflow; the guard reporter prints "stack overflow" with the
/// stack's name and address instead of a bare segmentation fault. Like
/// `segkp`, a stack is unmapped whole or not at all.
public final class HostStack: HostSegmentDriver, @unchecked Sendable {
    /// The stack's name in reports.
    public let name: String
    /// Bytes of red zone at the segment's low end.
    public let redZone: UInt64

    init(hat: HostHAT, name: String, redZone: UInt64, modes: UserFaultModes, origin: UInt64, size: UInt64,
         protections: _PageProtections) {
        self.name = name
        self.redZone = redZone
        super.init(hat: hat, object: nil, sharing: .private, maxProtection: .readWrite, modes: modes,
                   origin: origin, originOffset: 0, protections: protections)
    }

    override public var opsName: String { "segkp_ops" }
    override public var backing: String { "stack" }
    override var splittable: Bool { false }

    /// The lowest usable address (`stom(base)`: the base plus the red zone).
    public var stackBase: UInt64 { origin + redZone }

    override public func unmap(_ segment: Segment, address: UInt64, size: UInt64) throws(SegmentError) -> UnmapOutcome {
        guard address == segment.base && size == segment.size else { throw .errno(Errno.EINVAL, operation: .unmap) }
        return try super.unmap(segment, address: address, size: size)
    }

    override public func setprot(_ segment: Segment, address: UInt64, size: UInt64,
                                 protection: Protection) throws(SegmentError) {
        // The red zone stays inaccessible.
        guard address >= stackBase else { throw .errno(Errno.EACCES, operation: .setprot) }
        try super.setprot(segment, address: address, size: size, protection: protection)
    }
}
