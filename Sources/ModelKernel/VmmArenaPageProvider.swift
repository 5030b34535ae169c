import GuestMemory
import PhysicalMemory
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The model kernel's `GuestPageProvider`: the system memory of a hosted
/// guest is a `vmem_alloc(vmm_alloc_arena, ...)` (bhyve on illumos since
/// 12608), so its pages are created on `kvps[KV_VVP]`, mapped in `kvmmseg`
/// (with large pages), counted as VMM Memory by `::memstat` and skipped by the
/// dump walk. GuestMemory sees only an address (the kernel VA of the pages)
/// and the kernel sees only a length: neither knows the other's internals.
///
/// A refusal reaches GuestMemory as `GuestMemoryError.host(_:)` with the
/// kernel's message; the kernel's own entry points
/// (``ModelKernel/createGuest(size:nested:)``) rethrow the kernel's typed
/// error, parked per thread in the meantime.
public final class VmmArenaPageProvider: GuestPageProvider, @unchecked Sendable {
    // Set once at the end of the kernel's boot, before any guest exists.
    private weak var kernel: ModelKernel?

    init() {}

    func attach(_ kernel: ModelKernel) { self.kernel = kernel }

    public func provideBacking(forSegment id: Int, length: UInt64) throws(GuestMemoryError) -> GuestPageBacking {
        guard let kernel else {
            throw .host(.system(call: "vmm_alloc_arena", errno: ENXIO, detail: "the model kernel is gone"))
        }
        do {
            return GuestPageBacking(address: try kernel.vmmAlloc(length))
        } catch {
            kernel.guestFailures.record(error)
            throw .host(.system(call: "vmm_alloc_arena", errno: ENOMEM, detail: error.description))
        }
    }

    public func releaseBacking(_ backing: GuestPageBacking, ofSegment id: Int, length: UInt64) {
        guard let kernel else { return }
        do { try kernel.vmmRelease(backing.address, size: length) } catch { kernel.guestFailures.record(error) }
    }
}
