import Vmem

/// Where the kernel's run-time structures live: `seg_alloc`'s `struct seg`s
/// for the segments made after `kvm_init` and the drivers' private data
/// (`s_data`) come from `kmem_alloc`, so the model carves them out of real
/// `kmem_default` pages — their addresses in `::seg` are heap addresses, and
/// the pages count as Kernel memory.
final class _BootData: @unchecked Sendable {
    private let arena: Arena
    private var page: UInt64 = 0
    private var used: UInt64 = 4096

    init(arena: Arena) { self.arena = arena }

    /// `kmem_zalloc(size)` from a bump allocator over 4 KiB pages.
    func allocate(_ size: UInt64) throws(ModelKernelError) -> UInt64 {
        let rounded = (size + 15) & ~15
        if used + rounded > 4096 {
            do { page = try arena.alloc(4096) } catch { throw .vmem(error, arena: arena.name) }
            used = 0
        }
        defer { used += rounded }
        return page + used
    }
}
