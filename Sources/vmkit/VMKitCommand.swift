import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

@main
struct VMKitCommand: ParsableCommand {
    /// The release this build is; `vmkit --version` prints it.
    static let version = "0.6.0"

    static let configuration = CommandConfiguration(
        commandName: "vmkit",
        abstract: "The illumos/FreeBSD virtual-memory machinery in user space: vmem arenas, kernel VA layouts, address spaces and guest memory.",
        discussion: """
            Exit status: 0 on success; 1 when a command's checks fail (a layout or a sweep \
            with a violated invariant) or standard output cannot be written; 64 for a usage \
            error (an unknown command or option, a bad value).
            """,
        version: version,
        subcommands: [DemoCommand.self, LayoutCommand.self, ReplayCommand.self, BenchCommand.self, BootCommand.self, MdbCommand.self, AsCommand.self, GuestCommand.self]
    )

    static func main() {
        StandardOutputCheck.install()
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let problem = CommandPath.check(arguments, root: VMKitCommand.self) {
            LayoutArguments.printError("Error: \(problem)")
            LayoutArguments.printError("  See 'vmkit --help' for the commands.")
            Glibc.exit(ExitCode.validationFailure.rawValue)
        }
        main(arguments)
    }
}
