import ArgumentParser
import Inspect
import KernelLayout
import Vmem

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `vmkit layout`: the kernel VA layout of one configuration (the default
/// `show` subcommand), or a sweep over memory sizes.
///
/// The options live in the subcommands rather than here: ArgumentParser gives
/// an option that a parent and a child both declare to the parent, which
/// would swallow `vmkit layout sweep --model …`.
struct LayoutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "layout",
        abstract: "Compute the illumos kernel virtual-address layout for a memory size.",
        discussion: """
            Computes where startup.c puts kpm, valloc, segkp, segkvmm, segzio, the device \
            range, segmap and the heaps, for the amd64 kernel after illumos 12608 \
            (post-12608), before it (pre-12608), or the 32-bit kernel (i386), and checks the \
            layout's invariants. SIZE accepts 4096, 0x1000, 512M, 12.5G, 2T (binary units).

            `vmkit layout [show]` takes --physmem, --physmax, --model, --format \
            (table, json, svg), --arenas and the tunables --segkpsize, --segkvmmsize, \
            --segziosize, --segmapsize, --toxic-size, --valloc-other, --dr-physmax, \
            --kernelbase, --no-physmem-cap. `vmkit layout sweep` takes --from, --to, --step, \
            --model, --json and the same tunables.

            `show` is the default: `vmkit layout --physmem 512G` is `vmkit layout show \
            --physmem 512G`. Both exit 1 when a check of the layout fails (0 otherwise), \
            after printing the result. See `vmkit layout show --help` and `vmkit layout sweep --help` \
            for what each option means.
            """,
        subcommands: [LayoutShowCommand.self, LayoutSweepCommand.self],
        defaultSubcommand: LayoutShowCommand.self
    )
}

/// `vmkit layout [show]`: one layout as a table, JSON or SVG.
struct LayoutShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print one layout as a table, JSON or SVG, or its arena tree as ::vmem."
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, json, svg
    }

    @Option(parsing: .unconditional, help: ArgumentHelp("Physical memory size (default: this machine's memory).", valueName: "size"),
            transform: LayoutArguments.size)
    var physmem: UInt64?

    @Option(parsing: .unconditional, help: ArgumentHelp("End of physical memory, the highest physical address (default: physmem; larger for machines with holes).",
                               valueName: "size"),
            transform: LayoutArguments.size)
    var physmax: UInt64?

    @Option(help: ArgumentHelp("Layout rules: post-12608, pre-12608 or i386 (default: post-12608).", valueName: "model"),
            transform: LayoutArguments.model)
    var model: LayoutModel = .post12608

    @Option(help: "Output: table (top-down, like the startup.c comment), json, or svg (drawn to a log scale).")
    var format: Format = .table

    @OptionGroup var tunables: LayoutTunableOptions

    @Flag(help: "Print the arena tree created on the layout as an mdb ::vmem table instead of the layout.")
    var arenas = false

    @Option(name: [.customShort("o"), .customLong("output")],
            help: ArgumentHelp("Write the result to FILE instead of standard output (an SVG to open in a browser, say).", valueName: "file"))
    var output: String?

    func run() throws {
        let physmem = try self.physmem ?? LayoutArguments.hostMemory()
        var configuration = try tunables.configuration(model: model, physmem: physmem)
        configuration.physmax = physmax
        let layout: Layout
        do {
            layout = try Layout(configuration)
        } catch {
            throw ValidationError(error.description)
        }
        if arenas {
            guard format == .table else {
                throw ValidationError("--arenas prints mdb's ::vmem table; the arenas as JSON are the \"arenas\" of --format json without --arenas")
            }
            try printArenaTable(layout)
            return
        }
        let text: String
        switch format {
        case .table: text = layout.table()
        case .json: text = layout.json()
        case .svg:
            text = layout.svg()
            for message in layout.noteMessages { LayoutArguments.printError("warning: \(message)") }
        }
        if let output {
            try LayoutArguments.writeFile(text, to: output)
        } else {
            print(text, terminator: "")
        }
        // A layout whose invariants fail is a result, printed in full, and a
        // failure: scripts see it in the status.
        if !layout.isSound {
            let names = layout.failedChecks.map(\.name).joined(separator: ", ")
            LayoutArguments.printError("vmkit: layout checks failed: \(names)")
            throw ExitCode.failure
        }
    }

    /// The arena tree the model kernel creates on the layout, as mdb's `::vmem`.
    private func printArenaTable(_ layout: Layout) throws {
        let tree: ArenaTree
        do {
            tree = try ArenaTree.build(from: layout)
        } catch {
            throw ValidationError("cannot create the arenas on this layout: \(error)")
        }
        let data = layout.model.isAMD64 ? nil : layout.region(.kernelData).map { ($0.base, $0.size) }
        print(VmemTable.render(tree.arenas, kernelData: data), terminator: "")
    }
}

/// The tunables shared by `vmkit layout` and `vmkit layout sweep`.
struct LayoutTunableOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: ArgumentHelp("segkpsize in bytes (default 2G; outside [200M, 8G] the kernel resets it to 2G). Ignored on i386.",
                               valueName: "size"),
            transform: LayoutArguments.size)
    var segkpsize: UInt64?

    @Option(parsing: .unconditional, help: ArgumentHelp("segkvmmsize in bytes (post-12608; default 0 = 4 x physmem, at least 4G).", valueName: "size"),
            transform: LayoutArguments.size)
    var segkvmmsize: UInt64?

    @Option(parsing: .unconditional, help: ArgumentHelp("segziosize in bytes (amd64; default 0 = 1.5 x physmem, at least 400M).", valueName: "size"),
            transform: LayoutArguments.size)
    var segziosize: UInt64?

    @Option(parsing: .unconditional, help: ArgumentHelp("The segmapsize boot property in bytes (default and minimum: 64M on amd64, 16M on i386).",
                               valueName: "size"),
            transform: LayoutArguments.size)
    var segmapsize: UInt64?

    @Option(name: .customLong("toxic-size"), parsing: .unconditional,
            help: ArgumentHelp("toxic_size: the device arena on amd64 (default 1G).", valueName: "size"),
            transform: LayoutArguments.size)
    var toxicSize: UInt64?

    @Option(name: .customLong("valloc-other"), parsing: .unconditional,
            help: ArgumentHelp("The part of valloc_sz the model does not derive: memsegs, memlists, page colouring, page counters, pse table (default 1M).",
                               valueName: "size"),
            transform: LayoutArguments.size)
    var vallocOther: UInt64?

    @Option(name: .customLong("dr-physmax"), parsing: .unconditional,
            help: ArgumentHelp("pre-12608: the memory-DR maximum ptob(plat_dr_physmax), e.g. 64T for pabits 46 (default 0: no DR; capped at 64T).",
                               valueName: "size"),
            transform: LayoutArguments.size)
    var drPhysmax: UInt64?

    @Option(parsing: .unconditional, help: ArgumentHelp("i386: an eeprom kernelbase (2 MiB aligned down, capped at 0xE0000000). amd64 ignores it.",
                               valueName: "address"),
            transform: LayoutArguments.size)
    var kernelbase: UInt64?

    @Flag(name: .customLong("no-physmem-cap"),
          help: "i386: do not cap physmem at 16G, as if physmem were set with eeprom.")
    var noPhysmemCap = false

    func configuration(model: LayoutModel, physmem: UInt64) throws -> LayoutConfiguration {
        LayoutConfiguration(
            model: model, physmem: physmem,
            segkpSize: segkpsize, segkvmmSize: segkvmmsize, segzioSize: segziosize,
            segmapSize: segmapsize, toxicSize: toxicSize ?? AMD64.toxicSizeDefault,
            vallocOther: vallocOther ?? (1 << 20), drPhysmax: drPhysmax ?? 0,
            eepromKernelbase: kernelbase, capI386Physmem: !noPhysmemCap)
    }
}

/// Parsing and small host helpers for the layout commands.
enum LayoutArguments {
    static func size(_ text: String) throws -> UInt64 {
        do {
            return try SizeParser.parse(text)
        } catch {
            throw ValidationError(error.description)
        }
    }

    static func model(_ text: String) throws -> LayoutModel {
        do {
            return try LayoutModel(parsing: text)
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// This machine's memory, for a layout without --physmem.
    static func hostMemory() throws -> UInt64 {
        let pages = sysconf(Int32(_SC_PHYS_PAGES))
        let pageSize = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, pageSize > 0 else {
            throw ValidationError("cannot read this machine's memory size; give --physmem")
        }
        return UInt64(pages).multipliedReportingOverflow(by: UInt64(pageSize)).partialValue
    }

    static func printError(_ text: String) {
        writeStderr(text + "\n")
    }

    /// Writes to file descriptor 2 directly (the C `stderr` global is not
    /// concurrency-safe to touch from Swift 6).
    static func writeStderr(_ text: String) {
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                if written <= 0 { return }
                offset += written
            }
        }
    }

    static var stderrIsTerminal: Bool { isatty(STDERR_FILENO) != 0 }

    /// Writes `text` to `path` (created or truncated), or says why not.
    static func writeFile(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ValidationError("cannot write '\(path)': \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var text = text
        let failure: Int32? = text.withUTF8 { buffer -> Int32? in
            var offset = 0
            while offset < buffer.count {
                let n = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0, errno == EINTR { continue }
                if n <= 0 { return n < 0 ? errno : EIO }
                offset += n
            }
            return nil
        }
        if let failure { throw ValidationError("cannot write '\(path)': \(String(cString: strerror(failure)))") }
    }
}
