import Vmem
import Synchronization
import CVmemSupport
#if canImport(Glibc)
import Glibc
#endif

/// Runs one workload loop per OS thread against one arena (or, as a
/// control, one arena each); the timed phase starts when every thread has
/// filled and warmed up.
final class ThreadedRun: @unchecked Sendable {
    /// The arena of each thread: all the same one, unless the run is the
    /// arena-per-thread control.
    let arenas: [Arena]
    let workload: StandardWorkload
    let threads: Int, ops: Int, warmup: Int
    let ready = Atomic<Int>(0)
    let go_ = Atomic<Bool>(false)
    let done = Atomic<Int>(0)
    let failed = Atomic<Bool>(false)
    var elapsed: Duration = .zero
    /// Monotonic nanoseconds at which each thread finished its timed loop.
    /// This and the other per-thread results are raw memory, each slot
    /// written by its thread only: threads writing into one Swift array
    /// race on its buffer.
    private let finished: PerWorker<UInt64>
    var hw: (extent: UInt64, inUse: UInt64) = (0, 0)
    var metadata: Double = 0
    /// Of the quantum-cache slabs holding live objects at the end of the
    /// timed phase, the fraction holding live objects of more than one
    /// thread (nil without quantum caches, or with an arena per thread).
    var sharedSlabFraction: Double?
    /// Each thread's live cached objects at the end, as slab bases.
    private let liveSlabs: PerWorker<[UInt64]>
    private let extents: PerWorker<UInt64>
    private let inUse: PerWorker<UInt64>

    init(arenas: [Arena], workload: StandardWorkload, threads: Int, ops: Int, warmup: Int) {
        precondition(arenas.count == threads)
        self.arenas = arenas; self.workload = workload; self.threads = threads; self.ops = ops; self.warmup = warmup
        extents = PerWorker(0, count: threads); inUse = PerWorker(0, count: threads)
        finished = PerWorker(0, count: threads)
        liveSlabs = PerWorker([], count: threads)
    }

    func body(_ index: Int) {
        // One loop per CPU, as the workload means: left to the scheduler, two
        // loops may share a CPU for much of a run this short (tens of ms).
        // Best effort: where binding fails the loops run unbound.
        let cpus = Int(cvmem_cpu_count())
        if threads <= cpus { _ = cvmem_pin_to_cpu(Int32(index)) }
        do {
            var loop = try WorkloadLoop(arena: arenas[index], workload: workload, seed: 42 &+ UInt64(index))
            try loop.run(warmup)
            ready.add(1, ordering: .acquiringAndReleasing)
            while !go_.load(ordering: .acquiring) { sched_yield() }
            try loop.run(ops)
            finished[index] = monotonicNanoseconds()
            done.add(1, ordering: .acquiringAndReleasing)
            while done.load(ordering: .acquiring) < threads { sched_yield() }
            let h = loop.highWater
            extents[index] = h.extent; inUse[index] = h.inUse
            liveSlabs[index] = loop.liveCacheSlabs
            if index == 0 { metadata = arenas[0].metadataBytesPerAllocatedSegment }
            try loop.freeAll()
        } catch {
            failed.store(true, ordering: .relaxed)
            ready.add(1, ordering: .acquiringAndReleasing)
            done.add(1, ordering: .acquiringAndReleasing)
        }
    }

    func go() throws(VmemError) {
        let (ids, error) = OSThreads.start(threads) { [self] i in body(i) }
        if error != 0 {
            // Stand in for the threads that never started so that the
            // barriers below and in the workers still open.
            let missing = threads - ids.count
            failed.store(true, ordering: .relaxed)
            ready.add(missing, ordering: .acquiringAndReleasing)
            done.add(missing, ordering: .acquiringAndReleasing)
        }
        while ready.load(ordering: .acquiring) < threads { sched_yield() }
        // This thread must not compete with the workers for the cores while
        // they are timed: it starts the clock and then blocks in join; the
        // run ends when the last worker finishes.
        let start = monotonicNanoseconds()
        go_.store(true, ordering: .releasing)
        OSThreads.join(ids)
        if error != 0 { throw .notSupported("cannot start benchmark thread: pthread_create error \(error)") }
        if failed.load(ordering: .relaxed) { throw .exhausted(arena: arenas[0].name, size: 0) }
        elapsed = .nanoseconds(Int64(truncatingIfNeeded: (finished.all.max() ?? start) &- start))
        // One arena: the highest end over everything in use. One arena per
        // thread: each arena's extent counts, over everything in use.
        let separate = arenas.count > 1 && arenas[0] !== arenas[1]
        hw = (separate ? extents.all.reduce(0, +) : extents.all.max() ?? 0, inUse.all.reduce(0, +))
        if !separate && threads > 1 && arenas[0].quantumCacheSlabSize > 0 {
            sharedSlabFraction = WorkloadRunner.sharedFraction(liveSlabs.all)
        }
    }

}
