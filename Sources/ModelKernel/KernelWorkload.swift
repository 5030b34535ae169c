import AddressSpace
import GuestMemory
import PhysicalMemory

/// The consumers `vmkit boot` runs after booting: what a freshly booted
/// machine's kernel allocates, scaled to its memory, plus any guests.
public struct KernelWorkload: Sendable, Hashable {
    /// `kmem_alloc`s of 1 to 16 pages from `kmem_default` (a quarter are
    /// freed again, so the arenas show both).
    public var kmemAllocations: Int
    /// Kernel threads (stacks from `segkp_thread`) and LWPs (`segkp_lwp`).
    public var threads: Int
    public var lwps: Int
    /// 128 KiB ZFS file-data buffers (amd64).
    public var zfsBuffers: Int
    /// Bytes of a file read through segmap (its pages stay in the page cache).
    public var fileBytes: UInt64
    /// Guests and the memory of each, from `vmm_alloc_arena` (post-12608).
    public var guests: Int
    public var guestSize: UInt64
    /// Whether each guest gets a `bhyve` process whose address space maps
    /// the guest's system memory through `segvmm` (`vm_segmap_obj`), as a
    /// VMM process maps its guest's RAM to emulate devices. Off by default:
    /// a guest so mapped cannot be destroyed before its process
    /// (``ModelKernel/destroyProcessAddressSpace(_:)``). `vmkit boot`, `mdb`
    /// and `demo` turn it on.
    public var guestProcesses: Bool
    /// Seed of the size choices.
    public var seed: UInt64

    public init(kmemAllocations: Int = 512, threads: Int = 64, lwps: Int = 16, zfsBuffers: Int = 256,
                fileBytes: UInt64 = 256 << 10, guests: Int = 0, guestSize: UInt64 = 0, guestProcesses: Bool = false,
                seed: UInt64 = 0x5EED) {
        self.kmemAllocations = kmemAllocations
        self.threads = threads
        self.lwps = lwps
        self.zfsBuffers = zfsBuffers
        self.fileBytes = fileBytes
        self.guests = guests
        self.guestSize = guestSize
        self.guestProcesses = guestProcesses
        self.seed = seed
    }

    /// The default consumers for a machine of `physmem` bytes: the numbers
    /// above at 1 GiB and more, proportionally fewer below.
    public static func standard(physmem: UInt64, guests: Int = 0, guestSize: UInt64 = 0) -> KernelWorkload {
        let scale = min(1.0, Double(physmem) / Double(1 << 30))
        func scaled(_ n: Int) -> Int { max(1, Int(Double(n) * scale)) }
        return KernelWorkload(kmemAllocations: scaled(512), threads: scaled(64), lwps: scaled(16),
                              zfsBuffers: scaled(256), fileBytes: UInt64(scaled(32)) * 8192,
                              guests: guests, guestSize: guestSize)
    }
}

/// What a workload left allocated.
public struct WorkloadResult: Sendable {
    public var kmem: [(address: UInt64, size: UInt64)] = []
    public var stacks: [KernelStack] = []
    public var zfsBuffers: [UInt64] = []
    public var file: Vnode?
    /// The hosted guests (``ModelKernel/createGuest(size:nested:)``).
    public var guests: [ModelGuest] = []
    /// Each guest's `bhyve` process address space, when the workload makes them.
    public var processes: [AddressSpace] = []
}

extension ModelKernel {
    /// Runs the consumers. Features this model lacks (ZFS buffers on i386,
    /// guests before 12608) are skipped unless asked for explicitly: asking
    /// for guests on a model without `vmm_alloc_arena` throws.
    /// `progress` is told before each guest is created (guests done, guests
    /// in all), for a caller that shows progress on a terminal.
    @discardableResult
    public func run(_ w: KernelWorkload,
                    progress: ((Int, Int) -> Void)? = nil) throws(ModelKernelError) -> WorkloadResult {
        for (name, n) in [("kmem allocations", w.kmemAllocations), ("threads", w.threads), ("lwps", w.lwps),
                          ("zfs buffers", w.zfsBuffers), ("guests", w.guests)] where n < 0 || n > 1 << 24 {
            throw .invalidArgument(name: name, value: UInt64(truncatingIfNeeded: n), reason: "outside [0, 2^24]")
        }
        if w.guests > 0 {
            guard arenas["vmm_alloc_arena"] != nil else { throw .notSupported(model: model.name, feature: "vmm_alloc_arena (guests)") }
            guard w.guestSize > 0 else { throw .invalidArgument(name: "guest size", value: 0, reason: "must not be zero") }
        }
        var result = WorkloadResult()
        var rng = w.seed
        func next() -> UInt64 {
            rng &+= 0x9E37_79B9_7F4A_7C15
            var z = rng
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        for i in 0..<w.kmemAllocations {
            let size = (1 + next() % 16) * PhysicalMemory.pageSize
            let a = try kmemAlloc(size)
            if i % 4 == 3 { try kmemFree(a, size: size) } else { result.kmem.append((a, size)) }
        }
        for _ in 0..<w.threads { result.stacks.append(try allocateStack(.thread)) }
        for _ in 0..<w.lwps { result.stacks.append(try allocateStack(.lwp)) }
        if arenas["zfs_file_data_buf"] != nil {
            for _ in 0..<w.zfsBuffers { result.zfsBuffers.append(try zioBufAlloc(128 << 10)) }
        }
        if w.fileBytes > 0 {
            let file = try makeFile(name: "/var/adm/messages")
            try readFile(file, offset: 0, length: w.fileBytes)
            result.file = file
        }
        for i in 0..<w.guests {
            progress?(i, w.guests)
            let guest = try createGuest(size: w.guestSize)
            result.guests.append(guest)
            if w.guestProcesses {
                let process = try createProcessAddressSpace(name: "bhyve")
                try mapGuestSegment(guest, segment: 0, offset: 0, length: guest.size,
                                    protection: [.read, .write, .user], into: process)
                result.processes.append(process)
            }
        }
        return result
    }
}
