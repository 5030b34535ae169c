import ArgumentParser

@main
struct VMKitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vmkit",
        abstract: "The illumos/FreeBSD virtual-memory machinery in user space: vmem arenas, kernel VA layouts, address spaces and guest memory.",
        subcommands: [DemoCommand.self, LayoutCommand.self, ReplayCommand.self, BenchCommand.self, BootCommand.self, MdbCommand.self, AsCommand.self, GuestCommand.self]
    )
}
