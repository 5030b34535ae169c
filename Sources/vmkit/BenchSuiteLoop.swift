import ArgumentParser
import Foundation

/// What `vmkit bench as` and `vmkit bench guest` do for each workload they
/// run: a progress line on a terminal while it runs, its figures printed
/// as soon as it ends, and, when it fails, the command, the workload and
/// the error on stderr and a failing exit.
enum BenchSuiteLoop {
    /// Runs `body` for each of `chosen` and hands its figures to `emit`.
    /// `body` gets a progress function to call with rounds done and total.
    static func run<Workload: RawRepresentable, Figure, Failure: Error>(
        _ chosen: [Workload], command: String,
        _ body: (Workload, (Int, Int) -> Void) throws(Failure) -> [Figure],
        emit: ([Figure]) -> Void
    ) throws where Workload.RawValue == String {
        let showProgress = isatty(STDERR_FILENO) == 1
        for w in chosen {
            let figures: [Figure]
            if showProgress { BenchAsCommand.progress("\(w.rawValue): setting up") }
            do throws(Failure) {
                figures = try body(w) { done, total in
                    if showProgress { BenchAsCommand.progress("\(w.rawValue): round \(done)/\(total)") }
                }
            } catch {
                if showProgress { BenchAsCommand.progress(nil) }
                BenchAsCommand.stderr("\(command): \(w.rawValue): \(error)\n")
                throw ExitCode.failure
            }
            if showProgress { BenchAsCommand.progress(nil) }
            emit(figures)
            fflush(nil)
        }
    }
}
