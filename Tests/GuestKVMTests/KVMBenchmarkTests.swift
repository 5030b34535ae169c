import Foundation
import GuestKVM
import Testing

/// The KVM benchmarks, only with VMKIT_BENCH=1 (they take seconds).
@Suite("KVM benchmarks")
struct KVMBenchmarkTests {
    @Test("VM creation with 4 GiB registered, and the 1 % harvest of a 4 GiB slot",
          .enabled(if: ProcessInfo.processInfo.environment["VMKIT_BENCH"] == "1"))
    func figures() throws {
        guard KVMTestSupport.kvmUsable("the KVM benchmarks") else { return }
        print(try KVMBenchmarks.vmCreate())
        for f in try KVMBenchmarks.harvest() { print(f) }
    }
}
