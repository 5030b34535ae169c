import ArgumentParser
import Inspect
import KernelLayout
import ModelKernel

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `vmkit mdb`: a prompt over a booted model kernel.
struct MdbCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mdb",
        abstract: "An mdb-like prompt over a booted model kernel (::vmem, ::vmem_seg, ::memstat, ::seg, ::whatis).",
        discussion: """
            Boots the model (and, unless --no-workload, runs the usual consumers), then reads \
            commands: ::help, ::vmem, ADDR::vmem_seg, ::memstat, kas::walk seg | ::seg, ::whatis ADDR, \
            ::walk dump, ::dump, $q. On a terminal it shows a '> ' prompt; with input from a pipe it \
            prints only the results (errors go to stderr).
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
            help: ArgumentHelp("Memory of each guest (default 1G).", valueName: "size"),
            transform: LayoutArguments.size)
    var guestSize: UInt64?

    @Flag(name: .customLong("no-workload"), help: "Boot only; run no consumers.")
    var noWorkload = false

    func validate() throws {
        if guests < 0 || guests > 1 << 20 { throw ValidationError("--guests must be in [0, 1048576], got \(guests)") }
        if guestSize == 0 { throw ValidationError("--guest-size must not be 0") }
    }

    func run() throws {
        let memory = try physmem ?? LayoutArguments.hostMemory()
        let kernel = try KernelCommandSupport.boot(model: model, physmem: memory)
        var workload = noWorkload ? KernelWorkload(kmemAllocations: 0, threads: 0, lwps: 0, zfsBuffers: 0, fileBytes: 0)
            : KernelWorkload.standard(physmem: memory)
        workload.guests = guests
        workload.guestSize = guestSize ?? (1 << 30)
        do { try kernel.run(workload) } catch { throw ValidationError(error.description) }
        let session = MdbSession(kernel: kernel)
        let interactive = isatty(STDIN_FILENO) != 0
        if interactive {
            print("vmkit mdb: model \(model.name), physmem \(memory >> 20) MiB booted; ::help lists the commands, $q quits.")
        }
        var out = StandardOutput()
        while true {
            if interactive {
                out.write("> ")
                out.flush()
            }
            guard let line = readLine(strippingNewline: true) else { break }
            let result = session.execute(line)
            if result.quit { break }
            if result.isError {
                out.flush()
                LayoutArguments.writeStderr(result.text)
            } else {
                out.write(result.text)
            }
            if interactive { out.flush() }
        }
        out.flush()
    }
}
