/// One vmem arena the model kernel creates on a layout, as plain data: what
/// `vmem_create` would be called with. ``ArenaTree`` turns the list into
/// real `Vmem.Arena`s.
public struct ArenaSpec: Sendable, Hashable {
    /// The arena's name as `::vmem` shows it.
    public var name: String
    /// The arena it imports from, or `nil` for an arena with its own span.
    public var source: String?
    /// The initial span (`base`, `size`); 0/0 for an importing arena.
    public var base: UInt64
    public var size: UInt64
    public var quantum: UInt64
    /// `qcache_max`: allocations up to this size go through quantum caches.
    public var qcacheMax: UInt64
    /// Bytes at `base` allocated right after creation (`heap`'s first page,
    /// the `first_avail` argument of `kernelheap_init`).
    public var preallocated: UInt64

    public init(name: String, source: String? = nil, base: UInt64 = 0, size: UInt64 = 0,
                quantum: UInt64 = AMD64.pageSize, qcacheMax: UInt64 = 0, preallocated: UInt64 = 0) {
        self.name = name
        self.source = source
        self.base = base
        self.size = size
        self.quantum = quantum
        self.qcacheMax = qcacheMax
        self.preallocated = preallocated
    }
}

extension Layout {
    /// The arena tree the model kernel builds on this layout, parents before
    /// children (`kernel-layout.md` end of §3, `address-space.md` §3.8).
    ///
    /// amd64: `heap` (first page pre-allocated) with `static` → `static_alloc`,
    /// `kmem_metadata`, `kmem_va` → `kmem_default`, `vmem_metadata` →
    /// `vmem_seg`/`vmem_hash`/`vmem_vmem`; the core ranges `heap_core`,
    /// `heaptext`; `zfs_file_data` → `zfs_file_data_buf`; post-12608
    /// `kvmm_arena` → `vmm_alloc_arena`; `device`; `segkp` over its range.
    /// i386 has no `heap_core` (it is `heap`), no `zfs_file_data`
    /// (`segzio_fromheap`), no `device` arena (device mappings come from the
    /// heap), and `segkp` imports from `heap`.
    public var arenaSpecs: [ArenaSpec] {
        let page = AMD64.pageSize
        var specs: [ArenaSpec] = [
            ArenaSpec(name: "heap", base: kernelheap, size: heapSize, preallocated: heapSize >= page ? page : 0),
        ]
        if model.isAMD64 {
            specs.append(ArenaSpec(name: "heap_core", base: heapCoreBase, size: heapCoreSize))
        }
        specs += [
            ArenaSpec(name: "heaptext", base: heaptextBase, size: heaptextSize),
            ArenaSpec(name: "static", source: "heap"),
            ArenaSpec(name: "static_alloc", source: "static", quantum: 8),
            ArenaSpec(name: "kmem_metadata", source: "heap"),
            ArenaSpec(name: "kmem_va", source: "heap", qcacheMax: 8 * page),
            ArenaSpec(name: "kmem_default", source: "kmem_va"),
            ArenaSpec(name: "vmem_metadata", source: "heap"),
            ArenaSpec(name: "vmem_seg", source: "vmem_metadata"),
            ArenaSpec(name: "vmem_hash", source: "vmem_metadata", quantum: 8),
            ArenaSpec(name: "vmem_vmem", source: "vmem_metadata", quantum: 1),
        ]
        if model.isAMD64 {
            specs += [
                ArenaSpec(name: "zfs_file_data", base: segzioBase, size: segzioSize, qcacheMax: 32 << 10),
                ArenaSpec(name: "zfs_file_data_buf", source: "zfs_file_data"),
            ]
        }
        if model == .post12608 {
            specs += [
                ArenaSpec(name: "kvmm_arena", base: segkvmmBase, size: segkvmmSize, quantum: 1 << 20),
                ArenaSpec(name: "vmm_alloc_arena", source: "kvmm_arena", quantum: 1 << 20),
            ]
        }
        if model.isAMD64 {
            specs += [
                ArenaSpec(name: "device", base: toxicAddr, size: toxicSize),
                ArenaSpec(name: "segkp", base: segkpBase, size: segkpSize,
                          qcacheMax: AMD64.defaultStackPages * page),
            ]
        } else {
            specs.append(ArenaSpec(name: "segkp", source: "heap", qcacheMax: 5 * page))
        }
        return specs
    }
}
