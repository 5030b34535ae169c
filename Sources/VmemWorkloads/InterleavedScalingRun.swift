import Vmem
import Synchronization
import CVmemSupport
#if canImport(Glibc)
import Glibc
#endif

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
/// Two workers, bound to CPUs 0 and 1, each with its own loop (slots and
/// random stream) on its arena, fill and warm up first. Then, per round,
/// worker 0 runs `chunk` pairs alone while worker 1 sleeps in the kernel
/// (not spinning: a spinning vCPU would slow its sibling), and then both run
/// `chunk` pairs at once. A solo round's time is worker 0's own loop; a duo
/// round's is from the earlier start to the later end. The coordinating
/// thread (the caller) sleeps while the workers run.
final class InterleavedScalingRun: @unchecked Sendable {
    let arenas: [Arena]
    let workload: StandardWorkload
    let rounds: Int, chunk: Int, warmup: Int
    /// Bumped by the coordinator to start a phase; workers sleep on it.
    private let phase: UnsafeMutablePointer<Atomic<UInt32>>
    /// Workers done with the current phase; the coordinator sleeps on it.
    private let done: UnsafeMutablePointer<Atomic<UInt32>>
    private let mode = Atomic<Int>(0)       // 0 solo, 1 duo, 2 stop
    private let failed = Atomic<Bool>(false)
    /// Per worker, written only by that worker (raw memory, not arrays: two
    /// threads writing into one Swift array race on its buffer).
    private let begin = PerWorker<UInt64>(0), end = PerWorker<UInt64>(0)
    private let extents = PerWorker<UInt64>(0), inUse = PerWorker<UInt64>(0)
    /// Each worker's live cached objects at the end, as slab bases.
    private let liveSlabs = PerWorker<[UInt64]>([])
    private(set) var soloNanoseconds: UInt64 = 0
    private(set) var duoNanoseconds: UInt64 = 0
    private(set) var hw: (extent: UInt64, inUse: UInt64) = (0, 0)
    private(set) var metadata: Double = 0
    /// As ``ThreadedRun/sharedSlabFraction``, at the end of the last round.
    private(set) var sharedSlabFraction: Double?

    /// `arenas` holds two entries: the same arena twice, or one each (the control).
    init(arenas: [Arena], workload: StandardWorkload, rounds: Int, chunk: Int, warmup: Int) {
        precondition(arenas.count == 2)
        self.arenas = arenas; self.workload = workload
        self.rounds = max(rounds, 1); self.chunk = max(chunk, 1); self.warmup = warmup
        phase = .allocate(capacity: 1); phase.initialize(to: Atomic(0))
        done = .allocate(capacity: 1); done.initialize(to: Atomic(0))
    }

    deinit {
        phase.deinitialize(count: 1); phase.deallocate()
        done.deinitialize(count: 1); done.deallocate()
    }

    private func raw(_ p: UnsafeMutablePointer<Atomic<UInt32>>) -> UnsafeMutablePointer<UInt32> {
        UnsafeMutableRawPointer(p).assumingMemoryBound(to: UInt32.self)
    }

    private func finishPhase() {
        done.pointee.add(1, ordering: .acquiringAndReleasing)
        cvmem_futex_wake(raw(done), 1)
    }

    private func worker(_ index: Int) {
        _ = cvmem_pin_to_cpu(Int32(index))
        var loop: WorkloadLoop? = nil
        do {
            loop = try WorkloadLoop(arena: arenas[index], workload: workload, seed: 42 &+ UInt64(index))
            try loop?.run(warmup)
        } catch {
            // Keep answering phases, so that the coordinator's waits end.
            failed.store(true, ordering: .relaxed)
        }
        finishPhase()                       // phase 0: ready
        var seen: UInt32 = 0
        while true {
            while phase.pointee.load(ordering: .acquiring) == seen { _ = cvmem_futex_wait(raw(phase), seen, 0) }
            seen = phase.pointee.load(ordering: .acquiring)
            let m = mode.load(ordering: .acquiring)
            if m == 2 { break }
            if (m == 1 || index == 0) && !failed.load(ordering: .relaxed) {
                let t0 = monotonicNanoseconds()
                do { try loop?.run(chunk) } catch { failed.store(true, ordering: .relaxed) }
                begin[index] = t0
                end[index] = monotonicNanoseconds()
            }
            finishPhase()
        }
        if let loop, !failed.load(ordering: .relaxed) {
            let h = loop.highWater
            extents[index] = h.extent; inUse[index] = h.inUse
            if index == 0 { metadata = arenas[0].metadataBytesPerAllocatedSegment }
            liveSlabs[index] = loop.liveCacheSlabs
        }
        // Both loops' objects are counted before either is freed.
        finishPhase()
        waitUntilBothDone()
        try? loop?.freeAll()
    }

    /// Sleeps until both workers have finished the current phase. The count
    /// is read once per turn and the sleep is on that value, so an increment
    /// between the test and the sleep cannot be missed.
    private func waitUntilBothDone() {
        while true {
            let d = done.pointee.load(ordering: .acquiring)
            if d >= 2 { return }
            _ = cvmem_futex_wait(raw(done), d, 0)
        }
    }

    /// The coordinator's wait for a phase: both workers done, then the count
    /// starts again.
    private func awaitWorkers() {
        waitUntilBothDone()
        done.pointee.store(0, ordering: .releasing)
    }

    private func start(_ m: Int) {
        mode.store(m, ordering: .releasing)
        phase.pointee.add(1, ordering: .acquiringAndReleasing)
        cvmem_futex_wake(raw(phase), 2)
    }

    func go() throws(VmemError) {
        let (ids, error) = OSThreads.start(2) { [self] i in worker(i) }
        if error != 0 || ids.count < 2 {
            // A worker that never started cannot answer: stop the other one.
            failed.store(true, ordering: .relaxed)
            if ids.count == 1 {
                // Its "ready" stands in for the missing worker at the last barrier.
                while done.pointee.load(ordering: .acquiring) < 1 { sched_yield() }
                start(2)
            }
            OSThreads.join(ids)
            throw .notSupported("cannot start benchmark thread: pthread_create error \(error)")
        }
        awaitWorkers()                      // both filled and warmed up
        for _ in 0..<rounds where !failed.load(ordering: .relaxed) {
            start(0)
            awaitWorkers()
            soloNanoseconds &+= end[0] &- begin[0]
            start(1)
            awaitWorkers()
            duoNanoseconds &+= max(end[0], end[1]) &- min(begin[0], begin[1])
        }
        start(2)
        OSThreads.join(ids)
        if failed.load(ordering: .relaxed) { throw .exhausted(arena: arenas[0].name, size: 0) }
        let separate = arenas[0] !== arenas[1]
        hw = (separate ? extents[0] + extents[1] : max(extents[0], extents[1]), inUse[0] + inUse[1])
        if !separate && arenas[0].quantumCacheSlabSize > 0 {
            sharedSlabFraction = WorkloadRunner.sharedFraction([liveSlabs[0], liveSlabs[1]])
        }
    }
}
