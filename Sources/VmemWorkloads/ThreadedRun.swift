import Vmem

/// Runs one workload loop per OS thread against one arena (or, as a
/// control, one arena each), timed in one piece: every thread fills and
/// warms up, then all run `ops` pairs at once, from the earliest start to
/// the latest end (``WorkloadWorkers``).
final class ThreadedRun: @unchecked Sendable {
    /// The arena of each thread: all the same one, unless the run is the
    /// arena-per-thread control.
    let arenas: [Arena]
    let workload: StandardWorkload
    let threads: Int, ops: Int, warmup: Int
    var elapsed: Duration = .zero
    var hw: (extent: UInt64, inUse: UInt64) = (0, 0)
    var metadata = MetadataFootprint()
    /// Of the quantum-cache slabs holding live objects at the end of the
    /// timed phase, the fraction holding live objects of more than one
    /// thread (nil without quantum caches, or with an arena per thread).
    /// (With one user byte per object a shared slab was a line both CPUs
    /// wrote; the caches now give each CPU its own line, see `SlabRecord`.)
    var sharedSlabFraction: Double?

    init(arenas: [Arena], workload: StandardWorkload, threads: Int, ops: Int, warmup: Int) {
        precondition(arenas.count == threads)
        self.arenas = arenas; self.workload = workload; self.threads = threads; self.ops = ops; self.warmup = warmup
    }

    func go() throws(VmemError) {
        var ns: UInt64 = 0
        let ops = self.ops
        let summary = try WorkloadWorkers.measure(arenas: arenas, workload: workload, warmup: warmup) { workers throws(VmemError) in
            ns = try workers.run(ops)
        }
        elapsed = .nanoseconds(Int64(truncatingIfNeeded: ns))
        hw = summary.hw
        metadata = summary.metadata
        sharedSlabFraction = summary.sharedSlabFraction
    }
}
