import Vmem

public enum WorkloadRunner {
    /// Runs `workload` with `threads` loops on one arena: fill, warm up, then
    /// time `ops` pairs per thread. `ops` pairs are timed in total per thread.
    ///
    /// `arenaPerThread` is a control for the multi-threaded runs: each loop
    /// gets an arena of its own, so that nothing is shared and the scaling
    /// measured is the machine's own.
    ///
    /// `repeats` (single-thread runs) times that many blocks of `ops` pairs
    /// one after another, after the one warm-up, and reports the median
    /// block with the fastest and slowest: on a machine whose speed wanders
    /// (a virtual machine's neighbours), the median of several blocks moves
    /// far less from run to run than one block does. The high-water mark is
    /// the peak over all the timed blocks (tracked on every allocation); the
    /// metadata is taken after the last block.
    public static func run(_ workload: StandardWorkload, threads: Int = 1, ops: Int = StandardWorkload.timedOps,
                           warmup: Int = StandardWorkload.warmupOps, debugging: ArenaDebugging = .init(),
                           arenaPerThread: Bool = false, repeats: Int = 1) throws(VmemError) -> WorkloadResult {
        var arenas = [try workload.makeArena(debugging: debugging)]
        defer { for a in arenas { a.destroy() } }
        if arenaPerThread {
            while arenas.count < threads { arenas.append(try workload.makeArena(debugging: debugging)) }
        }
        var r = try measure(workload, arenas: arenas, threads: threads, ops: ops, warmup: warmup,
                            repeats: max(repeats, 1))
        r.checkedCacheFrees = debugging.checkCachedFrees
        r.arenaPerThread = arenas.count > 1
        return r
    }

    /// The scaling of `workload` from one thread to two, timed turn about in
    /// `rounds` rounds of `ops / rounds` pairs (see `InterleavedScalingRun`):
    /// the one-thread result, then the two-thread one. `ops` pairs per thread
    /// are timed for each.
    public static func runInterleaved(_ workload: StandardWorkload, ops: Int = StandardWorkload.timedOps,
                                      warmup: Int = StandardWorkload.warmupOps, rounds: Int = 20,
                                      debugging: ArenaDebugging = .init(),
                                      arenaPerThread: Bool = false) throws(VmemError) -> [WorkloadResult] {
        var arenas = [try workload.makeArena(debugging: debugging)]
        defer { for a in arenas { a.destroy() } }
        arenas.append(arenaPerThread ? try workload.makeArena(debugging: debugging) : arenas[0])
        let rounds = max(1, min(rounds, ops))
        let chunk = ops / rounds
        let run = InterleavedScalingRun(arenas: arenas, workload: workload, rounds: rounds, chunk: chunk, warmup: warmup)
        try run.go()
        let timed = chunk * rounds
        var results = [
            result(workload, threads: 1, ops: timed, elapsed: .nanoseconds(Int64(run.soloNanoseconds)),
                   hw: run.hw, meta: run.metadata),
            result(workload, threads: 2, ops: 2 * timed, elapsed: .nanoseconds(Int64(run.duoNanoseconds)),
                   hw: run.hw, meta: run.metadata, perThreadOps: timed),
        ]
        results[1].sharedSlabFraction = run.sharedSlabFraction
        for i in results.indices {
            results[i].rounds = rounds
            results[i].checkedCacheFrees = debugging.checkCachedFrees
            results[i].arenaPerThread = arenaPerThread
        }
        return results
    }

    static func measure(_ workload: StandardWorkload, arenas: [Arena], threads: Int, ops: Int,
                        warmup: Int, repeats: Int = 1) throws(VmemError) -> WorkloadResult {
        let arena = arenas[0]
        // The `threads` workload runs even its one-thread case on a worker
        // bound to a CPU, so that its two cases differ only in the thread count.
        if threads <= 1 && workload != .threads {
            var loop = try WorkloadLoop(arena: arena, workload: workload)
            try loop.run(warmup)
            loop.startPeak()
            let clock = ContinuousClock()
            var blocks: [Duration] = []
            blocks.reserveCapacity(min(repeats, 1024))
            for _ in 0..<repeats {
                let start = clock.now
                try loop.run(ops)
                blocks.append(clock.now - start)
            }
            let hw = loop.highWater
            let meta = arena.metadataFootprint
            try loop.freeAll()
            blocks.sort()
            var r = result(workload, threads: 1, ops: ops, elapsed: blocks[blocks.count / 2], hw: hw, meta: meta)
            if repeats > 1 {
                r.repeats = repeats
                r.nsPerPairMin = nanoseconds(blocks[0]) / Double(ops)
                r.nsPerPairMax = nanoseconds(blocks[blocks.count - 1]) / Double(ops)
            }
            return r
        }
        // Several loops, each on its own thread, started together.
        let n = max(threads, 1)
        let box = ThreadedRun(arenas: arenas.count == n ? arenas : Array(repeating: arena, count: n),
                              workload: workload, threads: n, ops: ops, warmup: warmup)
        try box.go()
        var r = result(workload, threads: n, ops: ops * n, elapsed: box.elapsed, hw: box.hw,
                       meta: box.metadata, perThreadOps: ops)
        r.sharedSlabFraction = box.sharedSlabFraction
        return r
    }

    /// Of the slabs in `perThread` (each thread's live objects, as slab
    /// bases), the fraction that appear for more than one thread; nil when
    /// there are none.
    public static func sharedFraction(_ perThread: [[UInt64]]) -> Double? {
        var owners: [UInt64: Int] = [:]   // slab -> first thread, or -1 once shared
        for (t, slabs) in perThread.enumerated() {
            for s in slabs {
                if let o = owners[s] {
                    if o != t { owners[s] = -1 }
                } else {
                    owners[s] = t
                }
            }
        }
        guard !owners.isEmpty else { return nil }
        return Double(owners.values.lazy.filter { $0 < 0 }.count) / Double(owners.count)
    }

    static func result(_ w: StandardWorkload, threads: Int, ops: Int, elapsed: Duration,
                       hw: (extent: UInt64, inUse: UInt64), meta: MetadataFootprint, perThreadOps: Int? = nil) -> WorkloadResult {
        let ns = nanoseconds(elapsed)
        // ns per pair as one thread sees it; ops/s over all threads.
        let pairsPerThread = Double(perThreadOps ?? ops)
        return WorkloadResult(workload: w.rawValue, threads: threads, opsTimed: ops,
                              nsPerPair: ns / pairsPerThread, opsPerSecond: Double(ops) / (ns / 1e9),
                              highWaterRatio: Double(hw.extent) / Double(max(hw.inUse, 1)), mallocsPerOp: nil,
                              metadataBytesPerSegment: meta.bytesPerAllocation,
                              arenaMetadataBytesPerSegment: meta.arenaBytesPerAllocation,
                              cacheMetadataBytesPerSegment: meta.cacheBytesPerAllocation,
                              nsPerPairMin: ns / pairsPerThread, nsPerPairMax: ns / pairsPerThread)
    }

    static func nanoseconds(_ d: Duration) -> Double {
        let (s, atto) = d.components
        return Double(s) * 1e9 + Double(atto) / 1e9
    }
}
