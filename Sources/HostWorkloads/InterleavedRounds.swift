/// Runs several timed arms turn about in one process — A B, B A, A B, ...
/// — and gives each arm's samples.
///
/// Why turn about: a virtual machine's CPUs change speed from second to
/// second, and an arm timed after another would compare two machines. Taken
/// in rounds (each arm once per round), a slow second falls on every arm
/// alike and the ratio of their medians keeps only what the code does.
///
/// Why the order flips every round: the machine has rhythms of its own. A
/// workload that frees a gigabyte per repeat was seen to run every other
/// repeat slow, whichever arm it was (on a guest that hands freed memory
/// back to its host, which must then fault it in again). In a fixed order
/// A B A B that alternation lands on one arm only, and the ratio measures
/// the host's rhythm (it was seen at 0.54 and at 3.2 for the same code); with
/// the order reversed on odd rounds each arm takes every position equally
/// often, and a drift over the run cancels too. The first `warmup` rounds
/// run every arm untimed (first use of the code, the page cache, the
/// allocator's free lists).
public struct InterleavedRounds {
    /// One arm: a name for progress, and a body that runs one repeat of
    /// `opsPerRepeat` operations and returns the nanoseconds they took (the
    /// body times itself, so that it can leave its setup out).
    public struct Arm {
        public let name: String
        public let opsPerRepeat: Int
        public let body: () throws(HostWorkloadError) -> UInt64

        public init(_ name: String, opsPerRepeat: Int, body: @escaping () throws(HostWorkloadError) -> UInt64) {
            self.name = name
            self.opsPerRepeat = opsPerRepeat
            self.body = body
        }
    }

    public let arms: [Arm]
    public let repeats: Int
    public let warmup: Int

    public init(_ arms: [Arm], repeats: Int, warmup: Int = 1) throws(HostWorkloadError) {
        try HostWorkloadError.checkCount("repeats", repeats, maximum: 10_000)
        try HostWorkloadError.checkCount("warm-up rounds", warmup, minimum: 0, maximum: 100)
        guard !arms.isEmpty else { throw .invalidArgument(name: "arms", value: 0, reason: "nothing to time") }
        for a in arms { try HostWorkloadError.checkCount("\(a.name) operations per repeat", a.opsPerRepeat) }
        self.arms = arms
        self.repeats = repeats
        self.warmup = warmup
    }

    /// Runs the rounds; `progress` hears (round done, rounds in all) after
    /// each, warm-up rounds included.
    public func run(progress: (Int, Int) -> Void = { _, _ in }) throws(HostWorkloadError) -> [TimingSamples] {
        var samples = arms.map { TimingSamples(opsPerRepeat: $0.opsPerRepeat) }
        let total = warmup + repeats
        for round in 0..<total {
            for i in (round % 2 == 0 ? Array(arms.indices) : arms.indices.reversed()) {
                let ns = try arms[i].body()
                if round >= warmup { samples[i].record(nanoseconds: ns) }
            }
            progress(round + 1, total)
        }
        return samples
    }
}
