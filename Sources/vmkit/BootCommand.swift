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

    @OptionGroup var machine: ModelKernelOptions

    @Flag(help: "Check every arena and page-accounting invariant afterwards.")
    var verify = false

    @Flag(help: "Print how long the boot and the consumers took (on stderr).")
    var timing = false

    func validate() throws {
        if machine.guestSize != nil && machine.guests == 0 { throw ValidationError("--guest-size needs --guests") }
    }

    func run() throws {
        let memory = try machine.memory()
        let clock = ContinuousClock()
        let start = clock.now
        let kernel = try KernelCommandSupport.boot(model: machine.model, physmem: memory)
        let booted = clock.now
        if !machine.noWorkload || machine.guests > 0 {
            do { try kernel.run(machine.workload(physmem: memory)) } catch { throw ValidationError(error.description) }
        }
        if timing {
            func ms(_ d: Duration) -> String {
                let v = Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) / 1e15
                return String(Int(v * 1000)) + " us"
            }
            LayoutArguments.printError("boot: \(ms(booted - start)), consumers: \(ms(clock.now - booted))")
        }
        print("model \(machine.model.name), physmem \(hex(memory)) (\(memory >> 20) MiB)\n")
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
