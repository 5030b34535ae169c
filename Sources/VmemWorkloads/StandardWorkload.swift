import Vmem
import Synchronization
import CVmemSupport

/// splitmix64, the generator vmem.md §6 fixes so that any allocator can run
/// the identical sequence. Also the reproducible generator of every
/// randomized test in the package.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64 = 42) { state = seed }
    @inlinable public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A value in `0..<n` (n > 0).
    @inlinable public mutating func below(_ n: UInt64) -> UInt64 { next() % n }
    /// True `percent` times in a hundred.
    @inlinable public mutating func chance(_ percent: UInt64) -> Bool { next() % 100 < percent }
}

/// The standard vmem workloads of vmem.md §6.
public enum StandardWorkload: String, CaseIterable, Sendable {
    case instant, best, small
    case smallNoCache = "small-nocache"
    case threads

    public static let base: UInt64 = 0x1000
    public static let size: UInt64 = 1 << 40
    public static let quantum: UInt64 = 4096
    /// N of vmem.md §6, a literal that inlined code can fold.
    @inlinable public static var liveSlots: Int { 10_000 }
    public static let warmupOps = 200_000
    public static let timedOps = 2_000_000

    /// Sizes are `(1 + r % K)` pages.
    public var k: UInt64 {
        switch self {
        case .instant, .best: return 64
        case .small, .smallNoCache, .threads: return 8
        }
    }

    public var policy: AllocationPolicy { self == .best ? .bestFit : .instantFit }

    public var quantumCacheMax: UInt64 {
        switch self {
        case .small, .threads: return 8 * Self.quantum
        case .instant, .best, .smallNoCache: return 0
        }
    }

    /// Thread counts the workload runs with.
    public var threadCounts: [Int] { self == .threads ? [1, 2] : [1] }

    public func makeArena(debugging: ArenaDebugging = .init()) throws(VmemError) -> Arena {
        try Arena(name: "bench_\(rawValue)", base: Self.base, size: Self.size, quantum: Self.quantum,
                  quantumCacheMax: quantumCacheMax, debugging: debugging)
    }
}

/// One live slot of a workload loop: an allocation and its size, side by
/// side so that a victim costs one cache miss, not two.
public struct WorkloadSlot: Sendable {
    public var address: UInt64
    public var size: UInt64
    @inlinable public init(address: UInt64, size: UInt64) { self.address = address; self.size = size }
}

/// One thread's loop: N live slots, then free-a-victim / allocate-a-new-size.
public struct WorkloadLoop {
    public let arena: Arena
    public let k: UInt64
    /// `k - 1` when `k` is a power of two (then `r % k == r & kMask`, and the
    /// loop saves a division); 0 otherwise.
    public let kMask: UInt64
    public let policy: AllocationPolicy
    public var rng: SplitMix64
    public var slots: [WorkloadSlot]

    public init(arena: Arena, workload: StandardWorkload, seed: UInt64 = 42) throws(VmemError) {
        self.arena = arena
        self.k = workload.k
        self.kMask = k & (k &- 1) == 0 ? k &- 1 : 0
        self.policy = workload.policy
        rng = SplitMix64(seed: seed)
        slots = []
        slots.reserveCapacity(StandardWorkload.liveSlots)
        for _ in 0..<StandardWorkload.liveSlots {
            let s = (1 + rng.next() % k) * StandardWorkload.quantum
            slots.append(WorkloadSlot(address: try arena.alloc(s, policy: policy), size: s))
        }
    }

    /// Runs `count` free+alloc pairs.
    @inlinable
    public mutating func run(_ count: Int) throws(VmemError) {
        // N is a constant the compiler can see in the standard case, so
        // `r % N` becomes a multiplication: a 64-bit division would cost
        // more than some of the operations being measured.
        if slots.count == StandardWorkload.liveSlots {
            try run(count, n: UInt64(truncatingIfNeeded: StandardWorkload.liveSlots))
        } else {
            try run(count, n: UInt64(slots.count))
        }
    }

    @inlinable @inline(__always)
    mutating func run(_ count: Int, n: UInt64) throws(VmemError) {
        // One copy of the loop per policy and size rule, each with its
        // policy and rule as constants: fewer values live across the two
        // calls of a pair, so fewer of them wait on the stack.
        let kMask = self.kMask
        switch (policy, kMask != 0) {
        case (.instantFit, true): try run(count, n: n, policy: .instantFit) { 1 &+ ($0 & kMask) }
        case (.bestFit, true): try run(count, n: n, policy: .bestFit) { 1 &+ ($0 & kMask) }
        default:
            let k = self.k, policy = self.policy
            try run(count, n: n, policy: policy) { 1 &+ $0 % k }
        }
    }

    @inlinable @inline(__always)
    mutating func run(_ count: Int, n: UInt64, policy: AllocationPolicy,
                      quanta: (UInt64) -> UInt64) throws(VmemError) {
        var rng = self.rng
        defer { self.rng = rng }
        let arena = self.arena
        try slots.withUnsafeMutableBufferPointer { (live: inout UnsafeMutableBufferPointer<WorkloadSlot>) throws(VmemError) in
            guard count > 0, n > 0, let base = live.baseAddress else { return }
            // The victim of the next pair is drawn one pair early (the draws
            // stay in the order of vmem.md §6) and its slot prefetched, so
            // that the loop's own cache miss does not count as the allocator's.
            var slot = base + Int(truncatingIfNeeded: rng.next() % n)
            var left = count
            while true {
                let s = quanta(rng.next()) &* StandardWorkload.quantum
                left &-= 1
                let next = left > 0 ? base + Int(truncatingIfNeeded: rng.next() % n) : slot
                cvmem_prefetch(next)
                try arena.free(slot.pointee.address, size: slot.pointee.size)
                slot.pointee = WorkloadSlot(address: try arena.alloc(s, policy: policy), size: s)
                if left == 0 { break }
                slot = next
            }
        }
    }

    /// Highest end address in use minus the base, and bytes in use.
    public var highWater: (extent: UInt64, inUse: UInt64) {
        var hi: UInt64 = 0, used: UInt64 = 0
        for slot in slots {
            hi = max(hi, slot.address + slot.size)
            used += slot.size
        }
        return (hi - StandardWorkload.base, used)
    }

    /// The slab of each live allocation the arena's quantum caches serve,
    /// as the slab's base (one entry per allocation); empty without caches.
    public var liveCacheSlabs: [UInt64] {
        let slab = arena.quantumCacheSlabSize, cacheMax = arena.quantumCacheMax
        guard slab > 0 else { return [] }
        return slots.lazy.filter { $0.size <= cacheMax }.map { $0.address & ~(slab &- 1) }
    }

    public mutating func freeAll() throws(VmemError) {
        for slot in slots { try arena.free(slot.address, size: slot.size) }
        slots = []
    }
}

/// What one run measured.
public struct WorkloadResult: Sendable {
    public var workload: String
    public var threads: Int
    public var opsTimed: Int
    public var nsPerPair: Double
    public var opsPerSecond: Double
    public var highWaterRatio: Double
    public var mallocsPerOp: Double?
    /// Bytes of boundary tags, hash buckets and free-list arrays the arena
    /// owns, per live allocated segment, at the end of the timed phase.
    public var metadataBytesPerSegment: Double
    /// Whether the quantum caches refused double frees (``ArenaDebugging/checkCachedFrees``).
    public var checkedCacheFrees: Bool = true
    /// Whether each thread had an arena of its own (the control run).
    public var arenaPerThread: Bool = false
    /// Threads sharing one arena with quantum caches: of the slabs holding
    /// live objects at the end, the fraction holding objects of more than one
    /// thread. Each checked allocation and free writes its slab's record, so
    /// a shared slab is a cache line that the CPUs pass back and forth.
    public var sharedSlabFraction: Double? = nil
    /// Rounds in which one and two threads were timed turn about (see
    /// ``WorkloadRunner/runInterleaved(_:ops:warmup:rounds:debugging:arenaPerThread:)``);
    /// 1 for a run timed in one piece.
    public var rounds: Int = 1
    /// Timed blocks of `opsTimed` pairs, one after another in one run (see
    /// ``WorkloadRunner/run(_:threads:ops:warmup:debugging:arenaPerThread:repeats:)``);
    /// with more than one, `nsPerPair` and `opsPerSecond` are the median
    /// block's, and these are the fastest and the slowest block's ns per pair.
    public var repeats: Int = 1
    public var nsPerPairMin: Double
    public var nsPerPairMax: Double

    /// The JSON object of vmem.md §6, on one line.
    public var json: String {
        func num(_ d: Double) -> String {
            let r = (d * 100).rounded() / 100
            return r == r.rounded() ? String(Int(r)) : String(r)
        }
        let m = mallocsPerOp.map { num($0) } ?? "null"
        let shared = sharedSlabFraction.map { num($0) } ?? "null"
        return "{\"workload\": \"\(workload)\", \"threads\": \(threads), \"opsTimed\": \(opsTimed), \"nsPerPair\": \(num(nsPerPair)), \"opsPerSecond\": \(Int(opsPerSecond.rounded())), \"highWaterRatio\": \(num(highWaterRatio)), \"mallocsPerOp\": \(m), \"metadataBytesPerSegment\": \(num(metadataBytesPerSegment)), \"checkedCacheFrees\": \(checkedCacheFrees), \"arenaPerThread\": \(arenaPerThread), \"sharedSlabs\": \(shared), \"rounds\": \(rounds), \"repeats\": \(repeats), \"nsPerPairMin\": \(num(nsPerPairMin)), \"nsPerPairMax\": \(num(nsPerPairMax))}"
    }
}

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
    /// far less from run to run than one block does. The high-water mark and
    /// the metadata are taken after the last block.
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
    /// `rounds` rounds of `ops / rounds` pairs (see ``InterleavedScalingRun``):
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
            let clock = ContinuousClock()
            var blocks: [Duration] = []
            blocks.reserveCapacity(repeats)
            for _ in 0..<repeats {
                let start = clock.now
                try loop.run(ops)
                blocks.append(clock.now - start)
            }
            let hw = loop.highWater
            let meta = arena.metadataBytesPerAllocatedSegment
            try loop.freeAll()
            blocks.sort()
            var r = result(workload, threads: 1, ops: ops, elapsed: blocks[blocks.count / 2], hw: hw, meta: meta)
            if repeats > 1 {
                r.repeats = repeats
                r.nsPerPairMin = result(workload, threads: 1, ops: ops, elapsed: blocks[0], hw: hw, meta: meta).nsPerPair
                r.nsPerPairMax = result(workload, threads: 1, ops: ops, elapsed: blocks[blocks.count - 1], hw: hw, meta: meta).nsPerPair
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
                       hw: (extent: UInt64, inUse: UInt64), meta: Double, perThreadOps: Int? = nil) -> WorkloadResult {
        let (s, atto) = elapsed.components
        let ns = Double(s) * 1e9 + Double(atto) / 1e9
        // ns per pair as one thread sees it; ops/s over all threads.
        let pairsPerThread = Double(perThreadOps ?? ops)
        return WorkloadResult(workload: w.rawValue, threads: threads, opsTimed: ops,
                              nsPerPair: ns / pairsPerThread, opsPerSecond: Double(ops) / (ns / 1e9),
                              highWaterRatio: Double(hw.extent) / Double(max(hw.inUse, 1)), mallocsPerOp: nil,
                              metadataBytesPerSegment: meta, nsPerPairMin: ns / pairsPerThread,
                              nsPerPairMax: ns / pairsPerThread)
    }
}
