import ArgumentParser
import KernelLayout

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `vmkit layout sweep`: every layout in a range of memory sizes, checked.
struct LayoutSweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Compute and check every layout for physmem from --from to --to in --step increments.",
        discussion: """
            Consecutive memory sizes that fail the same check are grouped into one range. \
            A progress bar is drawn on stderr when stderr is a terminal. The output ends with \
            a one-line summary (layouts computed, violations, time); with --json, stdout holds \
            only the JSON object and the summary goes to stderr. Exits 1 when any layout in the range \
            fails a check, 0 otherwise.
            """
    )

    @Option(parsing: .unconditional, help: ArgumentHelp("Smallest physmem.", valueName: "size"), transform: LayoutArguments.size)
    var from: UInt64

    @Option(parsing: .unconditional, help: ArgumentHelp("Largest physmem (inclusive).", valueName: "size"), transform: LayoutArguments.size)
    var to: UInt64

    @Option(parsing: .unconditional, help: ArgumentHelp("Increment of physmem.", valueName: "size"), transform: LayoutArguments.size)
    var step: UInt64

    @Option(help: ArgumentHelp("Layout rules: post-12608, pre-12608 or i386 (default: post-12608).", valueName: "model"),
            transform: LayoutArguments.model)
    var model: LayoutModel = .post12608

    @Flag(name: .customLong("json"), help: "Print {\"model\", \"layouts\", \"seconds\", \"violations\": [{\"check\", \"from\", \"to\", \"count\"}]}.")
    var jsonFlag = false

    @Option(help: ResultFormat.help)
    var format: ResultFormat?

    /// JSON output, asked for with --json or --format json.
    var json: Bool { jsonFlag || format == .json }

    @OptionGroup var tunables: LayoutTunableOptions

    func run() throws {
        let template = try tunables.configuration(model: model, physmem: from)
        let sweep: LayoutSweep
        do {
            sweep = try LayoutSweep(template: template, from: from, to: to, step: step)
        } catch {
            throw ValidationError(error.description)
        }
        let bar = LayoutArguments.stderrIsTerminal ? ProgressBar() : nil
        let clock = ContinuousClock()
        let start = clock.now
        var result = sweep.run { done, total in bar?.draw(done: done, total: total) }
        let elapsed = clock.now - start
        bar?.clear()
        result.seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        if json {
            print(result.json(), terminator: "")
            LayoutArguments.printError(result.summary())
        } else {
            for line in result.violationLines() { print(line) }
            print(result.summary())
        }
        if !result.violations.isEmpty { throw ExitCode.failure }
    }
}

/// A one-line progress bar redrawn in place on stderr.
struct ProgressBar {
    let width = 40

    func draw(done: UInt64, total: UInt64) {
        let fraction = total == 0 ? 1 : Double(done) / Double(total)
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        LayoutArguments.writeStderr("\r[\(bar)] \(Int(fraction * 100))% \(done)/\(total) layouts")
    }

    func clear() {
        LayoutArguments.writeStderr("\r\u{1B}[K")
    }
}
