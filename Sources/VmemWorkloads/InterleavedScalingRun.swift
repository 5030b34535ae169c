import Vmem

/// Times one thread and two threads in alternating rounds of one process,
/// for the `threads` workload's scaling figure.
///
/// Why: on a virtual machine the speed of a CPU wanders by a quarter from
/// second to second (another guest, the host's scheduler), and a one-thread
/// run followed by a two-thread run compares two different machines. Here
/// both are measured in many short rounds taken turn about (solo, duo,
/// solo, ...), each a few milliseconds long, so that a slow second falls on
/// both alike and the ratio keeps only what the code and the CPUs do.
///
/// Two ``WorkloadWorkers``, bound to CPUs 0 and 1, each with its own loop
/// (slots and random stream) on its arena, fill and warm up first. Then, per
/// round, worker 0 runs `chunk` pairs alone while worker 1 sleeps in the
/// kernel, and then both run `chunk` pairs at once. A solo round's time is
/// worker 0's own loop; a duo round's is from the earlier start to the later
/// end. The coordinating thread (the caller) sleeps while the workers run.
final class InterleavedScalingRun: @unchecked Sendable {
    let arenas: [Arena]
    let workload: StandardWorkload
    let rounds: Int, chunk: Int, warmup: Int
    private(set) var soloNanoseconds: UInt64 = 0
    private(set) var duoNanoseconds: UInt64 = 0
    private(set) var hw: (extent: UInt64, inUse: UInt64) = (0, 0)
    private(set) var metadata = MetadataFootprint()
    /// As ``ThreadedRun/sharedSlabFraction``, at the end of the last round.
    private(set) var sharedSlabFraction: Double?

    /// `arenas` holds two entries: the same arena twice, or one each (the control).
    init(arenas: [Arena], workload: StandardWorkload, rounds: Int, chunk: Int, warmup: Int) {
        precondition(arenas.count == 2)
        self.arenas = arenas; self.workload = workload
        self.rounds = max(rounds, 1); self.chunk = max(chunk, 1); self.warmup = warmup
    }

    func go() throws(VmemError) {
        var solo: UInt64 = 0, duo: UInt64 = 0
        let (rounds, chunk) = (self.rounds, self.chunk)
        let summary = try WorkloadWorkers.measure(arenas: arenas, workload: workload, warmup: warmup) { workers throws(VmemError) in
            for _ in 0..<rounds {
                solo &+= try workers.run(chunk, active: 1)
                duo &+= try workers.run(chunk, active: 2)
            }
        }
        soloNanoseconds = solo
        duoNanoseconds = duo
        hw = summary.hw
        metadata = summary.metadata
        sharedSlabFraction = summary.sharedSlabFraction
    }
}
