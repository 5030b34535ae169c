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
            guard var l = loop else { return }
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { try? l.run(1) }
            benchmark.stopMeasurement()
            loop = l
        }
    }
}
