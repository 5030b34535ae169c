import AddressSpace
import HostMemory

/// `segvn` over host memory: anonymous zero-fill memory (private), or a file
/// mapped private (copy-on-write) or shared.
///
/// Anonymous segments are registered with userfaultfd where it is allowed,
/// and this driver fills their pages: the zero page on a read, a copied page
/// of zeros on a write (so the write does not fault a second time). Where
/// userfaultfd is not allowed they are populated when mapped. File segments
/// are served by the kernel from the page cache (userfaultfd's missing mode
/// does not cover regular files); an explicit fault asks the kernel to
/// populate them.
public final class HostSegVn: HostSegmentDriver, @unchecked Sendable {
    override public var opsName: String { "segvn_ops" }

    override func splitOff() -> HostSegmentDriver {
        HostSegVn(hat: hat, object: object, sharing: sharing, maxProtection: maxProtection, modes: modes,
                  origin: origin, originOffset: originOffset, protections: protections)
    }
}

/// `segdev` over host memory: a `memfd` mapped shared, so that another
/// process can map the same pages through the descriptor.
///
/// Registered for missing faults (a page no process has touched: this driver
/// zero-fills it in the object) and, where the kernel offers minor faults on
/// shared memory, for those too (a page another process already wrote is in
/// the page cache but not in our page tables: `UFFDIO_CONTINUE` maps it).
public final class HostSegDev: HostSegmentDriver, @unchecked Sendable {
    override public var opsName: String { "segdev_ops" }

    override func serve(_ fault: UserFault, in segment: Segment) -> UserFaultAnswer {
        guard let service = hat.service else { return .wake }
        do throws(HostMemoryError) {
            if fault.isMinor {
                // Counted before the fill wakes the faulting thread, taken back if nothing was mapped.
                counters.continues.add(1, ordering: .relaxed)
                counters.bytes.add(HostReservation.pageSize, ordering: .relaxed)
                let result: UserFaultService.FillResult
                do throws(HostMemoryError) {
                    result = try service.continueMapping(at: fault.page, length: HostReservation.pageSize)
                } catch {
                    counters.continues.subtract(1, ordering: .relaxed)
                    counters.bytes.subtract(HostReservation.pageSize, ordering: .relaxed)
                    throw error
                }
                switch result {
                case .filled:
                    break
                case .alreadyPresent:
                    counters.continues.subtract(1, ordering: .relaxed)
                    counters.bytes.subtract(HostReservation.pageSize, ordering: .relaxed)
                    counters.alreadyPresent.add(1, ordering: .relaxed)
                    try? service.wake(at: fault.page, length: HostReservation.pageSize)
                }
            } else {
                try zeroFill(service, fault.page, HostReservation.pageSize, write: fault.isWrite)
            }
            return .resolved
        } catch {
            return refuse(fault, segment, because: error.description)
        }
    }

    override func splitOff() -> HostSegmentDriver {
        HostSegDev(hat: hat, object: object, sharing: sharing, maxProtection: maxProtection, modes: modes,
                   origin: origin, originOffset: originOffset, protections: protections)
    }
}
