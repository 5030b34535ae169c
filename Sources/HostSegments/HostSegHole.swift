import AddressSpace
import HostMemory

/// `seghole` over host memory: part of the window reserved and never
/// accessible. Nothing is mapped (the range stays the window's `PROT_NONE`
/// reservation); a touch is reported by the guard reporter as a touch of
/// this hole. Like illumos's seghole it is not counted in `a_size`, may
/// shrink from either end and refuses to be split.
public final class HostSegHole: HostSegmentDriver, @unchecked Sendable {
    /// `shd_name`
    public let name: String

    init(hat: HostHAT, name: String, origin: UInt64, size: UInt64) {
        self.name = name
        super.init(hat: hat, object: nil, sharing: .private, maxProtection: .none, modes: [], origin: origin,
                   originOffset: 0, protections: _PageProtections(origin: origin, size: size, protection: .none))
    }

    override public var opsName: String { "seghole_ops" }
    override public var backing: String { "hole" }
    override public var servedBy: String { "none" }
    override var splittable: Bool { false }
    override var segmentFlags: SegmentFlags { .hole }

    override public var supportedOperations: SegmentOperations {
        [.unmap, .free, .fault, .faulta, .setprot, .checkprot, .sync, .incore, .getprot, .getoffset, .gettype,
         .capable]
    }

    override func resolve(_ segment: Segment, address: UInt64, size: UInt64, write: Bool) throws(SegmentError) {
        throw .fault(.noMapping, address: address)
    }

    override public func unmap(_ segment: Segment, address: UInt64, size: UInt64) throws(SegmentError) -> UnmapOutcome {
        let outcome = try super.unmap(segment, address: address, size: size)
        // The guard follows what is left of the hole.
        dropGuards()
        if case let .trimmed(base, size) = outcome {
            try? addGuard(base, size, .hole, "seghole \"\(name)\"")
        }
        return outcome
    }

    override public func setprot(_ segment: Segment, address: UInt64, size: UInt64,
                                 protection: Protection) throws(SegmentError) {
        throw .errno(Errno.ENOMEM, operation: .setprot)
    }

    override public func checkprot(_ segment: Segment, address: UInt64, size: UInt64,
                                   protection: Protection) throws(SegmentError) {
        throw .errno(Errno.ENOMEM, operation: .checkprot)
    }

    override public func getprot(_ segment: Segment, address: UInt64, size: UInt64) throws(SegmentError) -> [Protection] {
        throw .errno(Errno.ENOMEM, operation: .getprot)
    }
}
