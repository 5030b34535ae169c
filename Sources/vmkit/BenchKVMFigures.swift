import GuestKVM
import GuestSnapshot
import GuestWorkloads
import HostWorkloads

/// The KVM and snapshot figures of issue 16, as ``GuestFigure`` rows for
/// `vmkit bench guest` (print each with `BenchAsCommand.row(f.figure)` or
/// `f.jsonLine`, as the other figures are).
///
/// Each workload (``KVMBenchmarks``, ``SnapshotWorkloads``) already times
/// its own interleaved rounds against a baseline in the same run and
/// returns medians; here each is run `runs` times, and a figure's
/// `nsPerOp` is the median of those medians, `min`/`max` their spread, and
/// `ratio` ours over the baseline's median of medians. The baseline gets a
/// row of its own (`.bare`, `.pwrite`, `.uffd`), as the C baselines do.
/// Without a usable `/dev/kvm` the two KVM workloads are left out and
/// ``run(directory:runs:progress:)`` says why in its notes.
enum BenchKVMFigures {
    /// Figures and notes (one line each: what was skipped and why).
    static func run(directory: String = "/dev/shm", runs: Int = 3,
                    progress: (String) -> Void = { _ in }) throws(KVMError) -> (figures: [GuestFigure], notes: [String]) {
        let runs = max(1, runs)
        var figures: [GuestFigure] = []
        var notes: [String] = []

        /// One row for ours and one for the baseline, from `runs` (ours, baseline) median pairs in ns.
        func rows(_ name: String, _ baselineName: String, operation: String, _ pairs: [(Double, Double)],
                  bytes: UInt64 = 0, target: HostFigure.Target?) {
            var ours = TimingSamples(opsPerRepeat: 1), base = TimingSamples(opsPerRepeat: 1)
            for (o, b) in pairs {
                ours.record(nanoseconds: UInt64(o.rounded()))
                base.record(nanoseconds: UInt64(b.rounded()))
            }
            let gb = bytes > 0 && ours.median > 0 ? Double(bytes) / ours.median : nil
            let gbBase = bytes > 0 && base.median > 0 ? Double(bytes) / base.median : nil
            figures.append(GuestFigure(HostFigure(name: name, operation: operation, samples: ours,
                                                  ratio: base.median > 0 ? ours.median / base.median : nil,
                                                  baseline: baselineName, gbPerSecond: gb, target: target)))
            figures.append(GuestFigure(HostFigure(name: baselineName, operation: operation, samples: base, gbPerSecond: gbBase)))
        }

        if let reason = KVMDevice.unavailableReason() {
            notes.append("kvm.vm-create, kvm.drain, kvm.harvest skipped: \(reason)")
        } else {
            var create: [(Double, Double)] = [], drain: [(Double, Double)] = [], whole: [(Double, Double)] = []
            for r in 1 ... runs {
                progress("kvm.vm-create: run \(r)/\(runs)")
                let c = try KVMBenchmarks.vmCreate()
                create.append((c.medianMicroseconds * 1e3, c.baselineMedianMicroseconds * 1e3))
                progress("kvm.harvest: run \(r)/\(runs)")
                let h = try KVMBenchmarks.harvest()
                drain.append((h[0].medianMicroseconds * 1e3, h[0].baselineMedianMicroseconds * 1e3))
                whole.append((h[1].medianMicroseconds * 1e3, h[1].baselineMedianMicroseconds * 1e3))
            }
            rows("kvm.vm-create", "kvm.vm-create.bare", operation: "vm", create, target: .nsPerOpAtMost(2e6))
            rows("kvm.drain", "kvm.get-dirty-log.bare", operation: "harvest", drain, target: .nsPerOpAtMost(5e5))
            // The bare GET_DIRTY_LOG row was added with the drain; the whole harvest shares that baseline.
            rows("kvm.harvest", "kvm.get-dirty-log.bare", operation: "harvest", whole, target: .nsPerOpAtMost(5e5))
            figures.removeLast()
        }

        var diff: [(Double, Double)] = [], full: [(Double, Double)] = [], lazy1: [(Double, Double)] = [], lazy8: [(Double, Double)] = []
        var workingSet: [(Double, Double)] = []
        var diffBytes: UInt64 = 0
        do throws(GuestSnapshotError) {
            for r in 1 ... runs {
                progress("snap.diff-write: run \(r)/\(runs)")
                let d = try SnapshotWorkloads.diffWrite(directory: directory)
                diffBytes = d.bytes
                diff.append((Double(d.median), Double(d.baselineMedian)))
                progress("snap.full: run \(r)/\(runs)")
                let f = try SnapshotWorkloads.fullSnapshot(directory: directory)
                full.append((Double(f.median), Double(f.baselineMedian)))
                progress("snap.lazy: run \(r)/\(runs)")
                let l1 = try SnapshotWorkloads.lazyRestore(directory: directory, guestBytes: 1 << 30)
                lazy1.append((Double(l1.median), Double(l1.baselineMedian)))
                let l8 = try SnapshotWorkloads.lazyRestore(directory: directory, guestBytes: 8 << 30)
                lazy8.append((Double(l8.median), Double(l8.baselineMedian)))
                progress("snap.working-set: run \(r)/\(runs)")
                let w = try SnapshotWorkloads.workingSetPrefetch(directory: directory)
                workingSet.append((Double(w.median), Double(w.baselineMedian)))
            }
        } catch {
            throw .snapshot(error)
        }
        rows("snap.diff-write", "snap.diff-write.pwrite", operation: "diff", diff, bytes: diffBytes, target: .gbPerSecondAtLeast(1))
        rows("snap.full-1g-10pct", "snap.full.pwrite", operation: "full", full, target: .nsPerOpAtMost(3e8))
        rows("snap.lazy-usable-1g", "snap.lazy-1g.uffd", operation: "restore", lazy1, target: .nsPerOpAtMost(5e6))
        rows("snap.lazy-usable-8g", "snap.lazy-8g.uffd", operation: "restore", lazy8, target: .nsPerOpAtMost(5e6))
        // No target of the issues: the fault tail a working set removes, against touching on demand.
        rows("snap.ws-prefetch-16m", "snap.ws-on-demand", operation: "restore", workingSet, target: nil)
        return (figures, notes)
    }
}
