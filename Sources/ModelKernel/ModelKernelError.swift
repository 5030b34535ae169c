import AddressSpace
import GuestMemory
import KernelLayout
import PageTables
import PhysicalMemory
import Vmem

/// Every way booting or using the model kernel can fail.
///
/// Lower layers' errors are wrapped with the context that makes them
/// readable (which arena, which step); the kernel's own cases name the
/// offending values. Where illumos would panic ("kernel stack overflow",
/// a bad `segkp_release`) the model throws instead.
public enum ModelKernelError: Error, Hashable, Sendable {
    /// The configuration cannot be laid out.
    case layout(LayoutError)
    /// The layout fails a check the kernel cannot boot with (it would have
    /// panicked before creating its arenas).
    case unusableLayout(failedChecks: [LayoutCheck])
    /// A page operation failed; `context` says what the kernel was doing.
    case physicalMemory(PhysicalMemoryError, context: String)
    /// An arena refused; `arena` names it.
    case vmem(VmemError, arena: String)
    /// The address space refused (an overlapping attach, a fault it could
    /// not resolve, ...).
    case addressSpace(AddressSpaceError)
    /// The translation layer refused.
    case hat(HATError)
    /// This model has no such facility (`vmm_alloc_arena` before 12608,
    /// `zfs_file_data` on i386, ...).
    case notSupported(model: String, feature: String)
    /// An argument out of range; `reason` says which rule it broke.
    case invalidArgument(name: String, value: UInt64, reason: String)
    /// A free (or release) of something the kernel did not hand out.
    case unknownAllocation(kind: String, address: UInt64)
    /// A touch of a segkp red-zone page: what illumos's `segkp_map_red`
    /// panics with on amd64 ("kernel stack overflow").
    case stackOverflow(segment: String, segmentBase: UInt64, address: UInt64, stackBase: UInt64, stackSize: UInt64)
    /// A touch of an address no segment maps (`FC_NOMAP` from `as_fault`).
    case noMapping(address: UInt64)
    /// A fault a segment driver could not resolve.
    case fault(code: FaultCode, address: UInt64, segment: String)
    /// The guest-memory layer refused a hosted guest's segment or mapping.
    case guestMemory(GuestMemoryError, context: String)
    /// A hosted guest's memory segment is still mapped into a process
    /// address space: `holds` segvmm mappings hold its object.
    case guestMemoryMapped(guest: UInt64, segment: Int, holds: Int)
    /// ``ModelKernel/verify()`` found a broken invariant; the text says which.
    case invariantViolated(String)
}

extension ModelKernelError: CustomStringConvertible {
    public var description: String {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        switch self {
        case .layout(let e): return "model kernel: layout: \(e)"
        case .unusableLayout(let checks):
            return "model kernel: the layout fails " + checks.map(\.rawValue).joined(separator: ", ")
                + "; the kernel would panic before creating its arenas"
        case let .physicalMemory(e, context): return "model kernel: \(context): \(e)"
        case let .vmem(e, arena): return "model kernel: arena \(arena): \(e)"
        case .addressSpace(let e): return "model kernel: \(e)"
        case .hat(let e): return "model kernel: hat: \(e)"
        case let .notSupported(model, feature): return "model kernel: the \(model) model has no \(feature)"
        case let .invalidArgument(name, value, reason): return "model kernel: \(name) \(hex(value)): \(reason)"
        case let .unknownAllocation(kind, address): return "model kernel: \(hex(address)) is not a live \(kind)"
        case let .stackOverflow(segment, base, address, stack, size):
            return "kernel stack overflow: \(hex(address)) is the red zone below the stack [\(hex(stack)), +\(hex(size))) "
                + "in \(segment) (segment base \(hex(base)))"
        case .noMapping(let a): return "model kernel: no segment maps \(hex(a)) (FC_NOMAP)"
        case let .fault(code, address, segment): return "model kernel: \(code) at \(hex(address)) in \(segment)"
        case let .guestMemory(e, context): return "model kernel: \(context): \(e)"
        case let .guestMemoryMapped(guest, segment, holds):
            return "model kernel: guest \(hex(guest)) segment \(segment) is mapped into a process (\(holds) segvmm hold(s))"
        case .invariantViolated(let s): return "model kernel: invariant violated: \(s)"
        }
    }
}
