import Vmem
import Synchronization
import CVmemSupport
#if canImport(Glibc)
import Glibc
#endif

/// Worker threads that each keep a workload loop alive between commands:
/// bound one per CPU, they fill and warm up their loops once, then run
/// `pairs` pairs whenever told, all at once or only the first few.
///
/// This is what times the `threads` workload in steady state without
/// timing anything else: the turn-about scaling run and the `Benchmarks/`
/// package both command the same live loops again and again, and neither
/// thread creation nor the fill falls inside a timed phase.
///
/// Between commands the workers sleep in the kernel on a futex, not
/// spinning (a spinning vCPU slows its sibling). Worker `i` is bound to CPU
/// `i` and draws from splitmix64 seeded with `42 + i`; its arena is
/// `arenas[i]` (the same arena for all, or one each for the control).
public final class WorkloadWorkers: @unchecked Sendable {
    public let count: Int
    let arenas: [Arena]
    /// Bumped by the commander to start a phase; workers sleep on it.
    private let phase: UnsafeMutablePointer<Atomic<UInt32>>
    /// Workers done with the current phase; the commander sleeps on it.
    private let done: UnsafeMutablePointer<Atomic<UInt32>>
    /// Pairs per active worker in this phase, or -1 to stop.
    private let pairs = Atomic<Int>(0)
    /// Workers `0..<active` run this phase; the others only answer it.
    private let active = Atomic<Int>(0)
    private let failed = Atomic<Bool>(false)
    /// Workers that started (all of them, unless a thread could not).
    private let started = Atomic<Int>(0)
    /// Per worker, written only by that worker (raw memory: two threads
    /// writing into one Swift array race on its buffer).
    private let begin: PerWorker<UInt64>, end: PerWorker<UInt64>
    /// The error that stopped each worker's loop, if one did.
    private let errors: PerWorker<VmemError?>
    private var threads: [pthread_t] = []
    /// Run by each worker on its loop when the workers stop, before any
    /// loop is freed (so that what it reads is every loop's final state).
    private var atStop: (@Sendable (Int, WorkloadLoop) -> Void)?
    private var stopped = false

    /// Starts `arenas.count` workers and returns once every one has filled
    /// and warmed up its loop. Throws when `arenas` is empty, when a thread
    /// cannot start, or when a loop cannot fill (the workers started are
    /// stopped first).
    public init(arenas: [Arena], workload: StandardWorkload, warmup: Int) throws(VmemError) {
        guard !arenas.isEmpty else { throw .notSupported("WorkloadWorkers needs one arena per worker, got none") }
        count = arenas.count
        self.arenas = arenas
        phase = .allocate(capacity: 1); phase.initialize(to: Atomic(0))
        done = .allocate(capacity: 1); done.initialize(to: Atomic(0))
        begin = PerWorker(0, count: count); end = PerWorker(0, count: count)
        errors = PerWorker(nil, count: count)
        let (ids, error) = OSThreads.start(count) { [self] i in worker(i, workload: workload, warmup: warmup) }
        threads = ids
        started.store(ids.count, ordering: .releasing)
        if error != 0 || ids.count < count {
            // The workers that started wait for a command: stop them. Their
            // "ready" answers are counted against the started ones only.
            failed.store(true, ordering: .relaxed)
            awaitWorkers(ids.count)
            command(pairs: -1, active: 0)
            OSThreads.join(ids)
            stopped = true
            throw .notSupported("cannot start benchmark thread: pthread_create error \(error)")
        }
        awaitWorkers(count)                 // all filled and warmed up
        if failed.load(ordering: .relaxed) {
            let e = firstError
            stop()
            throw e
        }
    }

    deinit {
        stop()
        phase.deinitialize(count: 1); phase.deallocate()
        done.deinitialize(count: 1); done.deallocate()
    }

    /// Runs `pairs` pairs on each of workers `0..<active` at once and
    /// returns the time from the earliest start to the latest end, in
    /// nanoseconds. Throws when a loop failed (now or before).
    @discardableResult
    public func run(_ pairs: Int, active: Int? = nil) throws(VmemError) -> UInt64 {
        let n = min(max(active ?? count, 1), count)
        guard !stopped, !failed.load(ordering: .relaxed) else { throw firstError }
        command(pairs: max(pairs, 0), active: n)
        awaitWorkers(count)
        if failed.load(ordering: .relaxed) { throw firstError }
        var first = UInt64.max, last: UInt64 = 0
        for i in 0..<n {
            first = min(first, begin[i])
            last = max(last, end[i])
        }
        return last &- first
    }

    /// The error of the first worker whose loop failed (read once the
    /// workers have answered the phase).
    private var firstError: VmemError {
        errors.all.lazy.compactMap { $0 }.first ?? .notSupported("a workload worker stopped (stopped workers run nothing)")
    }

    /// Stops the workers: each runs `body` on its loop (on its own thread,
    /// after every worker has finished its last phase and before any loop
    /// is freed), then frees its loop's allocations and exits. Later calls
    /// do nothing.
    public func stop(_ body: (@Sendable (Int, WorkloadLoop) -> Void)? = nil) {
        guard !stopped else { return }
        stopped = true
        atStop = body
        command(pairs: -1, active: 0)
        OSThreads.join(threads)
    }

    /// What the loops held: the high-water mark since the warm-up over the
    /// bytes in use at the end (one arena: the highest peak extent; an arena
    /// each: the peak extents summed),
    /// the first arena's metadata per allocated segment, and, for several
    /// workers on one arena with quantum caches, the share of slabs holding
    /// live objects of more than one worker.
    struct Summary {
        var hw: (extent: UInt64, inUse: UInt64)
        var metadata: MetadataFootprint
        var sharedSlabFraction: Double?
    }

    /// Starts workers on `arenas`, lets `body` command them, then stops
    /// them and summarizes their loops; `body`'s error, if any, is thrown
    /// after the workers have stopped.
    static func measure(arenas: [Arena], workload: StandardWorkload, warmup: Int,
                        _ body: (WorkloadWorkers) throws(VmemError) -> Void) throws(VmemError) -> Summary {
        let workers = try WorkloadWorkers(arenas: arenas, workload: workload, warmup: warmup)
        var failure: VmemError? = nil
        do { try body(workers) } catch { failure = error }
        let summary = workers.stopAndSummarize()
        if let failure { throw failure }
        return summary
    }

    /// ``stop(_:)``, reading every loop's final state first.
    func stopAndSummarize() -> Summary {
        let extents = PerWorker<UInt64>(0, count: count), inUse = PerWorker<UInt64>(0, count: count)
        let liveSlabs = PerWorker<[UInt64]>([], count: count)
        let meta = PerWorker<MetadataFootprint>(MetadataFootprint(), count: 1)
        stop { [arenas] index, loop in
            let h = loop.highWater
            extents[index] = h.extent; inUse[index] = h.inUse
            if index == 0 { meta[0] = arenas[0].metadataFootprint }
            liveSlabs[index] = loop.liveCacheSlabs
        }
        let separate = count > 1 && arenas[0] !== arenas[1]
        var summary = Summary(hw: (separate ? extents.all.reduce(0, +) : extents.all.max() ?? 0, inUse.all.reduce(0, +)),
                              metadata: meta[0], sharedSlabFraction: nil)
        if !separate && count > 1 && arenas[0].quantumCacheSlabSize > 0 {
            summary.sharedSlabFraction = WorkloadRunner.sharedFraction(liveSlabs.all)
        }
        return summary
    }

    // MARK: The workers' side

    private func worker(_ index: Int, workload: StandardWorkload, warmup: Int) {
        // One loop per CPU, as the workload means: left to the scheduler, two
        // loops may share a CPU for much of a short run. Best effort: with
        // more workers than CPUs, or where binding fails, they run unbound.
        if count <= Int(cvmem_cpu_count()) { _ = cvmem_pin_to_cpu(Int32(index)) }
        var loop: WorkloadLoop? = nil
        do {
            loop = try WorkloadLoop(arena: arenas[index], workload: workload, seed: 42 &+ UInt64(index))
            try loop?.run(warmup)
            loop?.startPeak()
        } catch {
            // Keep answering phases, so that the commander's waits end.
            errors[index] = error
            failed.store(true, ordering: .relaxed)
        }
        finishPhase()                       // ready
        var seen: UInt32 = 0
        while true {
            while phase.pointee.load(ordering: .acquiring) == seen { _ = cvmem_futex_wait(raw(phase), seen, 0) }
            seen = phase.pointee.load(ordering: .acquiring)
            let n = pairs.load(ordering: .acquiring)
            if n < 0 { break }
            if index < active.load(ordering: .acquiring) && !failed.load(ordering: .relaxed) {
                let t0 = monotonicNanoseconds()
                do { try loop?.run(n) } catch {
                    errors[index] = error
                    failed.store(true, ordering: .relaxed)
                }
                begin[index] = t0
                end[index] = monotonicNanoseconds()
            }
            finishPhase()
        }
        if let loop, let atStop, !failed.load(ordering: .relaxed) { atStop(index, loop) }
        // Every loop is read before any is freed.
        finishPhase()
        waitUntilDone(started.load(ordering: .acquiring))
        try? loop?.freeAll()
    }

    private func raw(_ p: UnsafeMutablePointer<Atomic<UInt32>>) -> UnsafeMutablePointer<UInt32> {
        UnsafeMutableRawPointer(p).assumingMemoryBound(to: UInt32.self)
    }

    private func finishPhase() {
        done.pointee.add(1, ordering: .acquiringAndReleasing)
        cvmem_futex_wake(raw(done), Int32.max)
    }

    /// Sleeps until `n` workers have finished the current phase. The count
    /// is read once per turn and the sleep is on that value, so an increment
    /// between the test and the sleep cannot be missed.
    private func waitUntilDone(_ n: Int) {
        while true {
            let d = done.pointee.load(ordering: .acquiring)
            if d >= UInt32(n) { return }
            _ = cvmem_futex_wait(raw(done), d, 0)
        }
    }

    /// The commander's wait for a phase: `n` workers done, then the count
    /// starts again.
    private func awaitWorkers(_ n: Int) {
        waitUntilDone(n)
        done.pointee.store(0, ordering: .releasing)
    }

    private func command(pairs n: Int, active a: Int) {
        pairs.store(n, ordering: .releasing)
        active.store(a, ordering: .releasing)
        phase.pointee.add(1, ordering: .acquiringAndReleasing)
        cvmem_futex_wake(raw(phase), Int32.max)
    }
}
