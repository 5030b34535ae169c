import Foundation
import GuestKVM
import GuestSnapshot
import Testing

/// The figures `vmkit bench guest` gets from `BenchKVMFigures` (the KVM and
/// snapshot workloads, interleaved against their baselines), run
/// `VMKIT_BENCH_RUNS` times (default 3) so the spread shows; only with
/// VMKIT_BENCH=1 (tens of seconds). Files go to /dev/shm.
@Suite("KVM + snapshot benchmark figures")
struct KVMSnapshotBenchmarkTests {
    @Test("VM create, harvest, diff write, full snapshot, lazy restore: medians of each run",
          .enabled(if: ProcessInfo.processInfo.environment["VMKIT_BENCH"] == "1"))
    func figures() throws {
        let runs = Int(ProcessInfo.processInfo.environment["VMKIT_BENCH_RUNS"] ?? "") ?? 3
        let kvm = KVMTestSupport.kvmUsable("the KVM figures")
        for r in 1 ... runs {
            print("run \(r)/\(runs)")
            if kvm {
                let c = try KVMBenchmarks.vmCreate()
                #expect(c.medianMicroseconds > 0)
                print("  \(c)")
                for f in try KVMBenchmarks.harvest() { print("  \(f)") }
            }
            let d = try SnapshotWorkloads.diffWrite(directory: "/dev/shm")
            #expect(d.median > 0)
            print("  \(d)")
            print("  \(try SnapshotWorkloads.fullSnapshot(directory: "/dev/shm"))")
            print("  \(try SnapshotWorkloads.lazyRestore(directory: "/dev/shm", guestBytes: 1 << 30))")
            print("  \(try SnapshotWorkloads.lazyRestore(directory: "/dev/shm", guestBytes: 8 << 30))")
        }
    }
}
