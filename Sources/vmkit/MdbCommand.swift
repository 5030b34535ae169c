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

    @OptionGroup var machine: ModelKernelOptions

    func run() throws {
        let memory = try machine.memory()
        let kernel = try KernelCommandSupport.boot(model: machine.model, physmem: memory)
        do { try kernel.run(machine.workload(physmem: memory)) } catch { throw ValidationError(error.description) }
        let session = MdbSession(kernel: kernel)
        let interactive = isatty(STDIN_FILENO) != 0
        if interactive {
            print("vmkit mdb: model \(machine.model.name), physmem \(memory >> 20) MiB booted; ::help lists the commands, $q quits.")
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
