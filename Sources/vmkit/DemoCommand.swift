import ArgumentParser
import Vmem
import Inspect

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Build a small illumos-like arena hierarchy, run a workload, and show it as mdb would.")

    @Option(help: "Operations in the mixed workload.")
    var ops: Int = 20_000

    func validate() throws {
        if ops < 0 { throw ValidationError("--ops must not be negative, got \(ops)") }
    }

    func run() throws {
        let demo = try VmemDemo(ops: ops)
        print("== vmem arena hierarchy after \(ops) mixed operations ==\n")
        print("> ::vmem")
        print(VmemTable.render(demo.arenas), terminator: "")
        print("\n> \(String(demo.dma.address, radix: 16))::vmem_seg   (\(demo.dma.name): nocross 64K, align 16K)")
        let listing = VmemSegTable.render(demo.dma).split(separator: "\n")
        for line in listing.prefix(25) { print(line) }
        if listing.count > 25 { print("... \(listing.count - 25) more segments (vmkit replay / walk shows all)") }
        for a in demo.arenas { try a.verify() }
        print("\nverify: all \(demo.arenas.count) arenas consistent")
    }
}
