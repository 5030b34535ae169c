import Benchmark
import Vmem
import VmemWorkloads

// The workloads of vmem.md §6. Each benchmark iteration is one free+alloc
// pair in steady state (fill and warm-up happen in setup, outside the
// measurement), so wall clock per iteration is ns per pair and the malloc
// counter per iteration is heap allocations per operation.
//
// A pair that fails fails the benchmark (`benchmark.error`): a time for
// fewer pairs than the iterations counted would be no figure at all.

nonisolated(unsafe) var loop: WorkloadLoop?
nonisolated(unsafe) var workers: WorkloadWorkers?
nonisolated(unsafe) var sharedArena: Arena?


let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        scalingFactor: .mega,
        maxDuration: .seconds(5),
        maxIterations: 5
    )
    for workload in [StandardWorkload.instant, .best, .small, .smallNoCache] {
        Benchmark("vmem \(workload.rawValue) (free+alloc pairs)",
                  configuration: .init(setup: {
                      let arena = try workload.makeArena()
                      var l = try WorkloadLoop(arena: arena, workload: workload)
                      try l.run(StandardWorkload.warmupOps)
                      loop = l
                  }, teardown: {
                      loop?.arena.destroy()
                      loop = nil
                  })) { benchmark in
            // Take the loop out of the global, so that its slot array has
            // one owner and the run mutates it in place (no copy).
            guard var l = loop.take() else { return }
            // One call for all the pairs: calling `run(1)` per iteration
            // timed the loop's entry (slot-array access, first draw) with
            // every pair. Per-iteration figures are still per pair.
            let pairs = benchmark.scaledIterations.count
            benchmark.startMeasurement()
            do {
                try l.run(pairs)
            } catch {
                benchmark.stopMeasurement()
                benchmark.error("vmem \(workload.rawValue): a free+alloc pair failed: \(error)")
                return
            }
            benchmark.stopMeasurement()
            loop = l
        }
    }

    // The `threads` workload: one loop per worker thread, bound one per CPU,
    // all on one arena with quantum caches. The workers fill and warm up in
    // setup and stay alive; a sample commands every worker to run its pairs
    // at once and waits for the last. Wall clock per iteration is ns per
    // pair as each thread sees it, so the scaling is 2 x (x1 time) / (x2
    // time); the malloc counter covers all the workers.
    for threads in [1, 2] {
        Benchmark("vmem threads x\(threads) (free+alloc pairs per thread)",
                  configuration: .init(setup: {
                      let arena = try StandardWorkload.threads.makeArena()
                      sharedArena = arena
                      workers = try WorkloadWorkers(arenas: Array(repeating: arena, count: threads),
                                                    workload: .threads, warmup: StandardWorkload.warmupOps)
                  }, teardown: {
                      workers?.stop()
                      workers = nil
                      sharedArena?.destroy()
                      sharedArena = nil
                  })) { benchmark in
            guard let w = workers else { return }
            let pairs = benchmark.scaledIterations.count
            benchmark.startMeasurement()
            do {
                _ = try w.run(pairs)
            } catch {
                benchmark.stopMeasurement()
                benchmark.error("vmem threads x\(threads): a worker's free+alloc pair failed: \(error)")
                return
            }
            benchmark.stopMeasurement()
        }
    }
}
