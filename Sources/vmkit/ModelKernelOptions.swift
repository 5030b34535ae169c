import ArgumentParser
import KernelLayout
import ModelKernel

/// The options `vmkit boot` and `vmkit mdb` share: which machine to boot and
/// what to run on it.
struct ModelKernelOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: ArgumentHelp("Physical memory of the modelled machine (default: this machine's).", valueName: "size"),
            transform: LayoutArguments.size)
    var physmem: UInt64?

    @Option(help: ArgumentHelp("Kernel model: post-12608, pre-12608 or i386.", valueName: "model"),
            transform: LayoutArguments.model)
    var model: LayoutModel = .post12608

    @Option(help: "Guests to create (post-12608).", transform: CountArgument.parse)
    var guests: Int = 0

    @Option(name: .customLong("guest-size"), parsing: .unconditional,
            help: ArgumentHelp("Memory of each guest (default 1G).", valueName: "size"),
            transform: LayoutArguments.size)
    var guestSize: UInt64?

    @Flag(name: .customLong("no-workload"), help: "Boot only; run no consumers.")
    var noWorkload = false

    @Flag(help: "Audit every arena (kmem_flags KMF_AUDIT): ::vmem_seg shows who allocated each segment, and -v, -c, -e, -l and -t work.")
    var audit = false

    func validate() throws {
        if guests < 0 || guests > 1 << 20 { throw ValidationError("--guests must be in [0, 1048576], got \(guests)") }
        if guestSize == 0 { throw ValidationError("--guest-size must not be 0") }
    }

    /// The memory size asked for, or this machine's.
    func memory() throws -> UInt64 { try physmem ?? LayoutArguments.hostMemory() }

    /// The consumers to run: the standard ones unless --no-workload, plus the guests.
    func workload(physmem: UInt64) -> KernelWorkload {
        var w = noWorkload ? KernelWorkload(kmemAllocations: 0, threads: 0, lwps: 0, zfsBuffers: 0, fileBytes: 0)
            : KernelWorkload.standard(physmem: physmem)
        w.guests = guests
        w.guestProcesses = true
        w.guestSize = guestSize ?? (1 << 30)
        return w
    }
}
