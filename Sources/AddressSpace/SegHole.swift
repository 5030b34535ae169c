import PhysicalMemory

/// `seghole`: a named reservation of address space with nothing behind it.
///
/// Its segments carry `S_HOLE`, so they are not counted in `a_size` and are
/// exempt from `RLIMIT_VMEM`. Every access faults with `FC_NOMAP`; protection
/// queries answer `ENOMEM` as if nothing were there; it can shrink from either
/// end but refuses to be split (`EINVAL`). Its table leaves out kluster,
/// swapout, getmemid and getpolicy, and inherit is `seg_inherit_notsup`.
public final class SegHole: SegmentDriver {
    /// `shd_name`
    public let name: String
    /// The `s_data` address to show (0 unless given).
    public let dataAddress: UInt64

    public init(name: String, dataAddress: UInt64 = 0) {
        self.name = name
        self.dataAddress = dataAddress
    }

    public var opsName: String { "seghole_ops" }

    public var supportedOperations: SegmentOperations {
        SegmentOperations.all.subtracting(SegmentOperations([.kluster, .swapout, .getmemid, .getpolicy, .inherit]))
    }

    public func dup(_ segment: Segment, into child: AddressSpace) throws(SegmentError) -> any SegmentDriver {
        SegHole(name: name, dataAddress: dataAddress)
    }

    public func unmap(_ segment: Segment, address: UInt64, size: UInt64) throws(SegmentError) -> UnmapOutcome {
        if address == segment.base && size == segment.size { return .removed }
        if address == segment.base { return .trimmed(base: address + size, size: segment.size - size) }
        if address &+ (size &- 1) == segment.last { return .trimmed(base: segment.base, size: segment.size - size) }
        throw .errno(Errno.EINVAL, operation: .unmap)
    }

    public func free(_ segment: Segment) throws(SegmentError) {}

    public func fault(_ hat: any HAT, _ segment: Segment, address: UInt64, size: UInt64,
                      type: FaultType, access: SegmentAccess) throws(SegmentError) {
        throw .fault(.noMapping, address: address)
    }

    public func faulta(_ segment: Segment, address: UInt64) throws(SegmentError) {
        throw .fault(.noMapping, address: address)
    }

    public func setprot(_ segment: Segment, address: UInt64, size: UInt64,
                        protection: Protection) throws(SegmentError) {
        throw .errno(Errno.ENOMEM, operation: .setprot)
    }

    public func checkprot(_ segment: Segment, address: UInt64, size: UInt64,
                          protection: Protection) throws(SegmentError) {
        throw .errno(Errno.ENOMEM, operation: .checkprot)
    }

    public func sync(_ segment: Segment, address: UInt64, size: UInt64, attributes: Int32,
                     flags: SyncFlags) throws(SegmentError) {}

    public func incore(_ segment: Segment, address: UInt64, size: UInt64) throws(SegmentError) -> [PageIncoreStatus] {
        []
    }

    public func lockop(_ segment: Segment, address: UInt64, size: UInt64, attributes: Int32,
                       operation: LockOperation) throws(SegmentError) {
        throw .errno(Errno.ENOMEM, operation: .lockop)
    }

    public func getprot(_ segment: Segment, address: UInt64, size: UInt64) throws(SegmentError) -> [Protection] {
        throw .errno(Errno.ENOMEM, operation: .getprot)
    }

    public func getoffset(_ segment: Segment, address: UInt64) throws(SegmentError) -> UInt64 { 0 }

    public func gettype(_ segment: Segment, address: UInt64) throws(SegmentError) -> MappingType { .private }

    public func getvp(_ segment: Segment, address: UInt64) throws(SegmentError) -> Vnode? {
        throw .errno(Errno.ENOMEM, operation: .getvp)
    }

    public func advise(_ segment: Segment, address: UInt64, size: UInt64, advice: Advice) throws(SegmentError) {
        throw .errno(Errno.ENOMEM, operation: .advise)
    }

    public func dump(_ segment: Segment,
                     into sink: (_ virtualAddress: UInt64, _ pfn: PageFrameNumber) -> Void) throws(SegmentError) {}

    public func pagelock(_ segment: Segment, address: UInt64, size: UInt64, type: PageLockType,
                         access: SegmentAccess) throws(SegmentError) -> [PageFrameNumber] {
        throw .errno(Errno.EFAULT, operation: .pagelock)
    }

    public func setpagesize(_ segment: Segment, address: UInt64, size: UInt64,
                            sizeCode: UInt8) throws(SegmentError) {
        throw .errno(Errno.ENOMEM, operation: .setpagesize)
    }

    public func capable(_ segment: Segment, capability: SegmentCapability) throws(SegmentError) -> Bool { false }
}
