import PhysicalMemory
import Vmem

// The kernel's consumers: kmem from kmem_default, ZFS buffers from
// zfs_file_data_buf, guest memory from vmm_alloc_arena, thread stacks from
// segkp, file pages through segmap.

extension ModelKernel {
    /// The arena called `name`, or `notSupported` when this model has none.
    func arena(_ name: String) throws(ModelKernelError) -> Arena {
        guard let a = arenas[name] else { throw .notSupported(model: model.name, feature: "\(name) arena") }
        return a
    }

    /// `size` rounded up to the arena's quantum, refusing zero and overflow.
    func rounded(_ size: UInt64, for arena: Arena, name: String) throws(ModelKernelError) -> UInt64 {
        guard size > 0 else { throw .invalidArgument(name: name, value: size, reason: "must not be zero") }
        let (sum, o) = size.addingReportingOverflow(arena.quantum - 1)
        guard !o, sum & ~(arena.quantum - 1) <= 1 << 52 else {
            throw .invalidArgument(name: name, value: size, reason: "larger than any machine (2^52 bytes)")
        }
        return sum & ~(arena.quantum - 1)
    }

    func allocate(from name: String, _ size: UInt64, what: String) throws(ModelKernelError) -> UInt64 {
        let a = try arena(name)
        let bytes = try rounded(size, for: a, name: what)
        do { return try a.alloc(bytes) } catch {
            throw memory.failures.take() ?? .vmem(error, arena: name)
        }
    }

    func free(to name: String, _ address: UInt64, _ size: UInt64, what: String) throws(ModelKernelError) {
        let a = try arena(name)
        let bytes = try rounded(size, for: a, name: what)
        if case .pages(let vnode)? = arenas.backings[name] { try checkUnheld(address, bytes, vnode) }
        do { try a.free(address, size: bytes) } catch {
            if case .badFree = error { throw .unknownAllocation(kind: "\(name) allocation of \(bytes) bytes", address: address) }
            throw .vmem(error, arena: name)
        }
        if let failure = memory.failures.take() { throw failure }
    }

    /// Refuses to free pages someone else holds (a soft lock, a pagelock):
    /// illumos's free would wait for them; the model says so instead, before
    /// anything changes.
    func checkUnheld(_ address: UInt64, _ size: UInt64, _ vnode: Vnode) throws(ModelKernelError) {
        let (_, o) = address.addingReportingOverflow(size)
        guard !o else { throw .invalidArgument(name: "address", value: address, reason: "address + size overflows") }
        func check(_ page: Page, at va: UInt64) throws(ModelKernelError) {
            if case .shared(let n) = page.lock, n > 1 {
                throw .physicalMemory(.lockConflict(pfn: page.pfn, held: page.lock, requested: .exclusive),
                                      context: "freeing 0x\(String(va, radix: 16)), which is soft-locked")
            }
        }
        // This runs before vmem has checked that the range is an allocation,
        // so the range may be anything up to 2^52 bytes: the page layer walks
        // it run by run, in min(pages, records) steps, and an unaligned range
        // (never an allocation) is left for vmem to refuse.
        guard let runs = try? physicalMemory.pageRuns(of: vnode, offset: address,
                                                       pageCount: size / PhysicalMemory.pageSize) else { return }
        for run in runs { try check(run.first, at: run.first.offset) }
    }

    // MARK: kmem

    /// `kmem_alloc`-style: `size` bytes (rounded up to pages) from
    /// `kmem_default`, whose import creates and maps kernel pages.
    public func kmemAlloc(_ size: UInt64) throws(ModelKernelError) -> UInt64 {
        try allocate(from: "kmem_default", size, what: "kmem size")
    }

    /// Frees a ``kmemAlloc(_:)`` allocation (the same size).
    public func kmemFree(_ address: UInt64, size: UInt64) throws(ModelKernelError) {
        try free(to: "kmem_default", address, size, what: "kmem size")
    }

    // MARK: ZFS

    /// A ZFS-style file-data buffer from `zfs_file_data_buf`: pages on
    /// `kvps[KV_ZVP]`, "ZFS File Data" in `::memstat`, never dumped.
    public func zioBufAlloc(_ size: UInt64) throws(ModelKernelError) -> UInt64 {
        try allocate(from: "zfs_file_data_buf", size, what: "zio buffer size")
    }

    public func zioBufFree(_ address: UInt64, size: UInt64) throws(ModelKernelError) {
        try free(to: "zfs_file_data_buf", address, size, what: "zio buffer size")
    }

    // MARK: Guest memory (post-12608)

    /// Guest memory as bhyve allocates it (`vmem_alloc(vmm_alloc_arena)`):
    /// 1 MiB-quantum spans imported from `kvmm_arena`, wired pages on
    /// `kvps[KV_VVP]`, mapped in kvmmseg. "VMM Memory" in `::memstat`, not
    /// in a crash dump.
    public func vmmAlloc(_ size: UInt64) throws(ModelKernelError) -> UInt64 {
        let address = try allocate(from: "vmm_alloc_arena", size, what: "guest memory size")
        let bytes = (try? rounded(size, for: arena("vmm_alloc_arena"), name: "")) ?? size
        withState { liveGuests[address] = bytes }
        return address
    }

    /// Frees guest memory from ``vmmAlloc(_:)``. The memory of a hosted
    /// guest is refused: it goes with ``destroyGuest(_:)``.
    public func vmmFree(_ address: UInt64, size: UInt64) throws(ModelKernelError) {
        // Guests are copied out first: their memory's lock is never taken
        // under the kernel's state lock (the provider takes them the other way).
        let host = withState { Array(hostedGuestTable.values) }.first { g in g.backings.contains { $0.address == address } }
        if let host {
            throw .invalidArgument(name: "guest memory address", value: address,
                                   reason: "backs the hosted guest at 0x\(String(host.address, radix: 16)); destroy the guest instead")
        }
        try vmmRelease(address, size: size)
    }

    /// ``vmmFree(_:size:)`` without the hosted-guest check: the page provider's release.
    func vmmRelease(_ address: UInt64, size: UInt64) throws(ModelKernelError) {
        try free(to: "vmm_alloc_arena", address, size, what: "guest memory size")
        _ = withState { liveGuests.removeValue(forKey: address) }
    }

    /// Guest memory allocations now live: address and size.
    public var guests: [(address: UInt64, size: UInt64)] {
        withState { liveGuests.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
    }

    // MARK: Stacks

    /// A kernel thread stack from the `segkp_thread` cache (or an LWP stack
    /// from `segkp_lwp`), with an unmapped red-zone page below it.
    public func allocateStack(_ kind: KernelStack.Kind = .thread) throws(ModelKernelError) -> KernelStack {
        let base = try segkp.cacheGet(kind == .thread ? threadStackCache : lwpStackCache)
        let stack = KernelStack(kind: kind, base: base, size: stackSize)
        withState { liveStacks[base] = stack }
        return stack
    }

    /// Releases a stack to its cache (or frees it when the cache is full).
    public func freeStack(_ stack: KernelStack) throws(ModelKernelError) {
        guard withState({ liveStacks[stack.base] == stack }) else {
            throw .unknownAllocation(kind: "kernel stack", address: stack.base)
        }
        // A thread that exits while lent its red page gives it back first.
        if lentRedPage(of: stack) != nil { try segkpUnmapRed(on: stack) }
        try segkp.release(stack.base)
        _ = withState { liveStacks.removeValue(forKey: stack.base) }
    }

    /// Stacks now live.
    public var stacks: [KernelStack] { withState { liveStacks.values.sorted { $0.base < $1.base } } }

    // MARK: Files through segmap

    /// A file vnode (its pages are "Page cache" in `::memstat`).
    public func makeFile(name: String) throws(ModelKernelError) -> Vnode {
        do { return try physicalMemory.makeVnode(.file, name: name) } catch {
            throw .physicalMemory(error, context: "making the vnode of \(name)")
        }
    }

    /// Reads `[offset, offset + length)` of `file` the way the kernel's file
    /// systems do: a segmap window per 8 KiB, touched (faulting the file's
    /// pages in through `as_fault`'s segkmap path), then released. With
    /// `free` the pages go to the cache list afterwards.
    public func readFile(_ file: Vnode, offset: UInt64, length: UInt64, free: Bool = false) throws(ModelKernelError) {
        guard length > 0 else { throw .invalidArgument(name: "read length", value: 0, reason: "must not be zero") }
        let (end, o) = offset.addingReportingOverflow(length)
        guard !o, end <= 1 << 52 else { throw .invalidArgument(name: "read offset", value: offset, reason: "offset + length overflows") }
        var position = offset & ~(SegMap.windowSize - 1)
        while position < end {
            let window = try segmap.getmap(vnode: file, offset: position)
            do throws(ModelKernelError) {
                for page in stride(from: window, to: window + SegMap.windowSize, by: Int(PhysicalMemory.pageSize)) {
                    _ = try touch(page, access: .read)
                }
            } catch {
                try? segmap.release(window)
                throw error
            }
            try segmap.release(window, free: free)
            position += SegMap.windowSize
        }
    }
}
