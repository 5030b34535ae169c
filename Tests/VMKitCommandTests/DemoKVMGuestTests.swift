import Foundation
import Testing

/// The guest section of `vmkit demo`: the real-mode payload on KVM when it
/// is usable, one line saying why not otherwise.
@Suite("vmkit demo: the guest on KVM")
struct DemoKVMGuestTests {
    @Test("the demo runs the real-mode payload: io 0x10 with 42, hlt, KVM's log {2, 5}")
    func demoRunsTheGuest() throws {
        let r = try CommandLineTests.run(["demo", "--physmem", "4G", "--ops", "100"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        // The model's guest is mapped into a bhyve process: its segment list is one segvmm row.
        let walk = try #require(lines.firstIndex { $0.hasPrefix("> ") && $0.hasSuffix("::walk seg | ::seg") && !$0.hasPrefix("> kas") })
        #expect(lines[walk + 1].hasSuffix(" OPS") && lines[walk + 2].hasSuffix(" segvmm_ops") && lines[walk + 3].hasPrefix("a crash dump"))
        let start = try #require(lines.firstIndex { $0.hasPrefix("== a guest on KVM") })
        let section = lines[start...].prefix { !$0.hasPrefix("== a vmem") }
        if section.contains(where: { $0.hasPrefix("kvm: not usable") }) {
            print("demo without KVM: \(section.first { $0.hasPrefix("kvm:") } ?? "")")
            return
        }
        #expect(section.contains("  1  io out port 0x10 size 1 data 42"))
        #expect(section.contains("  2  hlt"))
        #expect(section.contains("dirty pages in KVM's log (the guest's own writes): 2, 5"))
        #expect(section.contains { $0.hasPrefix("dirty pages in RAM, all sources: 1-2, 5") })
    }
}
