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
        abstract: "An mdb-like prompt over a booted model kernel (::vmem, ::vmem_seg, ::memstat, ::seg, ::whatis, ::vm).",
        discussion: """
            Boots the model (and, unless --no-workload, runs the usual consumers and any --guests), then \
            reads commands: ::help, ::dcmds, ::walkers, ::vmem, ADDR::vmem_seg, ::memstat, ::whatis ADDR, \
            ::page, ::dump, the guest dcmds ::vm, ADDR::memseg, ADDR::memmap, GPA::npt -g ADDR, pipelines \
            [ADDR]::walk NAME | ::DCMD for every walker, ::DCMD ! CMD (to the shell), and $q. On a terminal \
            it edits the line with BSD editline when libedit.so.2 is present (emacs keys, history in \
            ~/.vmkit_history, tab completion, Ctrl-C drops the line, Ctrl-D quits) and pages long output \
            (::set +o pager turns that off); with input from a pipe it prints only the results, errors go \
            to stderr, and the exit status is 1 if any command failed.
            """)

    @OptionGroup var machine: ModelKernelOptions

    func run() throws {
        let memory = try machine.memory()
        let kernel = try KernelCommandSupport.boot(model: machine.model, physmem: memory, audit: machine.audit)
        try KernelCommandSupport.run(machine.workload(physmem: memory), on: kernel, model: machine.model, physmem: memory)
        let session = MdbSession(kernel: kernel)
        let interactive = isatty(STDIN_FILENO) != 0
        if interactive {
            print("vmkit mdb: model \(machine.model.name), physmem \(memory >> 20) MiB booted; ::help lists the commands, $q quits.")
        }
        var out = StandardOutput()
        let home = getenv("HOME").map { String(cString: $0) }
        let editor = interactive
            ? LineEditor(completer: { MdbSession.completions(before: $0, word: $1) },
                         historyPath: home.map { $0 + "/.vmkit_history" })
            : nil
        var failed = false
        while true {
            let line: String
            if let editor {
                out.flush()
                switch editor.read(prompt: "> ") {
                case .line(let l): line = l
                case .interrupted: continue
                case .endOfFile: out.write("\n"); out.flush(); return
                }
            } else {
                guard let l = readLine(strippingNewline: true) else { break }
                line = l
            }
            let result = session.execute(line)
            if result.quit { break }
            if result.isError {
                failed = true
                out.flush()
                LayoutArguments.writeStderr(result.text)
            } else if let command = result.shellCommand {
                out.flush()
                let status = MdbOutput.pipe(result.text, to: command)
                if status != 0 && !interactive { failed = true }
            } else if interactive, session.pagerEnabled, let rows = MdbOutput.terminalRows() {
                MdbOutput.page(result.text, rows: rows, out: &out)
            } else {
                out.write(result.text)
            }
            if interactive { out.flush() }
        }
        out.flush()
        // Read from a script, a failed command fails the run (as `mdb -e` does).
        if failed && !interactive { throw ExitCode(1) }
    }
}
