import ArgumentParser
import Inspect
import KernelLayout
import ModelKernel
import Vmem

/// `vmkit boot`: boots the model kernel, runs its consumers, prints
/// `::memstat`, `::vmem` and `kas::walk seg | ::seg`.
struct BootCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "boot",
        abstract: "Boot a model illumos kernel and show its memory as mdb would.",
        discussion: """
            Computes the layout, attaches the kernel segments to kas in startup order, creates the \
            arena tree, then runs the usual consumers (kmem allocations, thread and LWP stacks, ZFS \
            buffers, a file read through segmap) and any guests (--guests N --guest-size SIZE, from \
            vmm_alloc_arena; post-12608 only). Prints ::memstat, ::vmem and kas::walk seg | ::seg. \
            Page metadata exists only for pages in use, so a 2T machine boots in a few MiB of host memory.
            """)

    @Option(parsing: .unconditional, help: ArgumentHelp("Physical memory of the modelled machine (default: this machine's).", valueName: "size"),
            transform: LayoutArguments.size)
    var physmem: UInt64?

    @Option(help: ArgumentHelp("Kernel model: post-12608, pre-12608 or i386.", valueName: "model"),
            transform: LayoutArguments.model)
    var model: LayoutModel = .post12608

    @Option(help: "Guests to create (post-12608).")
    var guests: Int = 0

    @Option(name: .customLong("guest-size"), parsing: .unconditional,
            help: ArgumentHelp("Memory of each guest (default 1G when --guests is given).", valueName: "size"),
            transform: LayoutArguments.size)
    var guestSize: UInt64?

    @Flag(name: .customLong("no-workload"), help: "Boot only; run no consumers.")
    var noWorkload = false

    @Flag(help: "Check every arena and page-accounting invariant afterwards.")
    var verify = false

    @Flag(help: "Print how long the boot and the consumers took (on stderr).")
    var timing = false

    func validate() throws {
        if guests < 0 || guests > 1 << 20 { throw ValidationError("--guests must be in [0, 1048576], got \(guests)") }
        if guestSize != nil && guests == 0 { throw ValidationError("--guest-size needs --guests") }
        if guestSize == 0 { throw ValidationError("--guest-size must not be 0") }
    }

    func run() throws {
        let memory = try physmem ?? LayoutArguments.hostMemory()
        let clock = ContinuousClock()
        let start = clock.now
        let kernel = try KernelCommandSupport.boot(model: model, physmem: memory)
        let booted = clock.now
        if !noWorkload || guests > 0 {
            var workload = noWorkload ? KernelWorkload(kmemAllocations: 0, threads: 0, lwps: 0, zfsBuffers: 0, fileBytes: 0)
                : KernelWorkload.standard(physmem: memory)
            workload.guests = guests
            workload.guestSize = guestSize ?? (1 << 30)
            do { try kernel.run(workload) } catch { throw ValidationError(error.description) }
        }
        if timing {
            func ms(_ d: Duration) -> String {
                let v = Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) / 1e15
                return String(Int(v * 1000)) + " us"
            }
            LayoutArguments.printError("boot: \(ms(booted - start)), consumers: \(ms(clock.now - booted))")
        }
        print("model \(model.name), physmem \(hex(memory)) (\(memory >> 20) MiB)\n")
        let session = MdbSession(kernel: kernel)
        for command in ["::memstat", "::vmem", "kas::walk seg | ::seg"] {
            print("> \(command)")
            print(session.execute(command).text)
        }
        if verify {
            do { try kernel.verify() } catch { throw ValidationError("verify: \(error)") }
            print("verify: every arena and page-accounting invariant holds")
        }
    }
}

/// Booting with errors the command line can show.
enum KernelCommandSupport {
    static func boot(model: LayoutModel, physmem: UInt64) throws -> ModelKernel {
        do {
            return try ModelKernel(model: model, physmem: physmem)
        } catch {
            throw ValidationError(error.description)
        }
    }
}
