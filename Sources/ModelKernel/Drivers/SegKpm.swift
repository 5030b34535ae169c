import AddressSpace
import PhysicalMemory

/// `seg_kpm`: all of physical memory mapped linearly, `VA = kpm_vbase +
/// pfn × 4096` (x86 sets the kpm variables as if pages were always 4 KiB).
///
/// The window is mapped once at boot with the largest pages alignment
/// allows, as `hat_kpm` does, so it costs a few page-table pages even on a
/// 2 TiB machine. Its table is almost all `segkpm_badop`: it faults (only
/// to say an address beyond memory is not mapped), never dumps (its pages
/// are dumped through the segments that own them), refuses `pagelock`
/// (`ENOTSUP`), and claims no capabilities.
public final class SegKpm: SegmentDriver, @unchecked Sendable {
    /// `kpm_vbase`
    public let base: UInt64
    /// Bytes of physical memory the window maps (`PMAX`).
    public let physicalSize: UInt64
    public let dataAddress: UInt64

    init(base: UInt64, physicalSize: UInt64, dataAddress: UInt64) {
        self.base = base
        self.physicalSize = physicalSize
        self.dataAddress = dataAddress
    }

    public var opsName: String { "segkpm_ops" }
    public var supportedOperations: SegmentOperations { [.fault, .dump, .pagelock, .capable] }

    /// `hat_kpm_pfn2va`
    public func address(of pfn: PageFrameNumber) -> UInt64? {
        let (offset, o1) = pfn.multipliedReportingOverflow(by: PhysicalMemory.pageSize)
        guard !o1, offset < physicalSize else { return nil }
        return base + offset
    }

    /// `hat_kpm_va2pfn`, or nil outside the mapped part of the window.
    public func pfn(of address: UInt64) -> PageFrameNumber? {
        guard address >= base, address - base < physicalSize else { return nil }
        return (address - base) >> PhysicalMemory.pageShift
    }

    /// `hat_kpm_fault`: the window is always mapped, so a fault means an
    /// address past the end of memory.
    public func fault(_ hat: any HAT, _ segment: Segment, address: UInt64, size: UInt64,
                      type: FaultType, access: SegmentAccess) throws(SegmentError) {
        var va = address & ~(PhysicalMemory.pageSize - 1)
        let (end, o) = address.addingReportingOverflow(size)
        guard !o else { throw .fault(.noMapping, address: address) }
        while va < end {
            guard pfn(of: va) != nil, hat.probe(va) else { throw .fault(.noMapping, address: va) }
            va += PhysicalMemory.pageSize
        }
    }

    /// segkpm pages are not dumped.
    public func dump(_ segment: Segment, into sink: (UInt64, PageFrameNumber) -> Void) throws(SegmentError) {}

    public func pagelock(_ segment: Segment, address: UInt64, size: UInt64, type: PageLockType,
                         access: SegmentAccess) throws(SegmentError) -> [PageFrameNumber] {
        throw .errno(Errno.ENOTSUP, operation: .pagelock)
    }

    public func capable(_ segment: Segment, capability: SegmentCapability) throws(SegmentError) -> Bool { false }
}
