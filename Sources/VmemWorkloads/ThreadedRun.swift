import Vmem
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs one workload loop per OS thread against one arena; the timed phase
/// starts when every thread has filled and warmed up.
final class ThreadedRun: @unchecked Sendable {
    let arena: Arena
    let workload: StandardWorkload
    let threads: Int, ops: Int, warmup: Int
    let ready = Atomic<Int>(0)
    let go_ = Atomic<Bool>(false)
    let done = Atomic<Int>(0)
    let failed = Atomic<Bool>(false)
    var elapsed: Duration = .zero
    /// Monotonic nanoseconds at which each thread finished its timed loop.
    private var finished: [UInt64]
    var hw: (extent: UInt64, inUse: UInt64) = (0, 0)
    var metadata: Double = 0
    private var extents: [UInt64]
    private var inUse: [UInt64]

    init(arena: Arena, workload: StandardWorkload, threads: Int, ops: Int, warmup: Int) {
        self.arena = arena; self.workload = workload; self.threads = threads; self.ops = ops; self.warmup = warmup
        extents = Array(repeating: 0, count: threads); inUse = Array(repeating: 0, count: threads)
        finished = Array(repeating: 0, count: threads)
    }

    func body(_ index: Int) {
        do {
            var loop = try WorkloadLoop(arena: arena, workload: workload, seed: 42 &+ UInt64(index))
            try loop.run(warmup)
            ready.add(1, ordering: .acquiringAndReleasing)
            while !go_.load(ordering: .acquiring) { sched_yield() }
            try loop.run(ops)
            finished[index] = monotonicNanoseconds()
            done.add(1, ordering: .acquiringAndReleasing)
            while done.load(ordering: .acquiring) < threads { sched_yield() }
            let h = loop.highWater
            extents[index] = h.extent; inUse[index] = h.inUse
            if index == 0 { metadata = arena.metadataBytesPerAllocatedSegment }
            try loop.freeAll()
        } catch {
            failed.store(true, ordering: .relaxed)
            ready.add(1, ordering: .acquiringAndReleasing)
            done.add(1, ordering: .acquiringAndReleasing)
        }
    }

    func go() throws(VmemError) {
        final class Arg { let run: ThreadedRun; let i: Int; init(_ r: ThreadedRun, _ i: Int) { run = r; self.i = i } }
        var ids: [pthread_t] = []
        for i in 0..<threads {
            var t = pthread_t()
            pthread_create(&t, nil, { p in
                let a = Unmanaged<Arg>.fromOpaque(p!).takeRetainedValue()
                a.run.body(a.i)
                return nil
            }, Unmanaged.passRetained(Arg(self, i)).toOpaque())
            ids.append(t)
        }
        while ready.load(ordering: .acquiring) < threads { sched_yield() }
        // This thread must not compete with the workers for the cores while
        // they are timed: it starts the clock and then blocks in join; the
        // run ends when the last worker finishes.
        let start = monotonicNanoseconds()
        go_.store(true, ordering: .releasing)
        for t in ids { pthread_join(t, nil) }
        elapsed = .nanoseconds(Int64(finished.max()! &- start))
        if failed.load(ordering: .relaxed) { throw .exhausted(arena: arena.name, size: 0) }
        hw = (extents.max() ?? 0, inUse.reduce(0, +))
    }
}
