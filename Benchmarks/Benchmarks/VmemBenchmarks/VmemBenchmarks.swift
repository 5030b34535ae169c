import Benchmark
import Vmem
import VmemWorkloads

// The workloads of vmem.md §6. Each benchmark iteration is one free+alloc
// pair in steady state (fill and warm-up happen in setup, outside the
// measurement), so wall clock per iteration is ns per pair and the malloc
// counter per iteration is heap allocations per operation.

nonisolated(unsafe) var loop: WorkloadLoop?


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
            try? l.run(pairs)
            benchmark.stopMeasurement()
            loop = l
        }
    }
}
