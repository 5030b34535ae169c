import Benchmark
import KernelLayout
import Vmem

/// Layout arithmetic is on the hot path of `vmkit layout sweep`: one layout
/// computed and checked should take well under 2 µs and allocate nothing.
let benchmarks: @Sendable () -> Void = {
    // 1000 layouts per sample, so the per-sample timer and the framework's
    // own allocations do not swamp a computation of a few hundred ns.
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
        timeUnits: .nanoseconds,
        scalingFactor: .kilo,
        maxDuration: .seconds(2)
    )

    Benchmark("layout post-12608 512G") { benchmark in
        let configuration = LayoutConfiguration(model: .post12608, physmem: 512 << 30)
        for _ in benchmark.scaledIterations {
            let layout = try Layout(configuration)
            blackHole(layout.failedChecks)
        }
    }

    Benchmark("layout pre-12608 320G") { benchmark in
        let configuration = LayoutConfiguration(model: .pre12608, physmem: 320 << 30)
        for _ in benchmark.scaledIterations {
            let layout = try Layout(configuration)
            blackHole(layout.failedChecks)
        }
    }

    Benchmark("layout i386 4G") { benchmark in
        let configuration = LayoutConfiguration(model: .i386, physmem: 4 << 30)
        for _ in benchmark.scaledIterations {
            let layout = try Layout(configuration)
            blackHole(layout.failedChecks)
        }
    }

    Benchmark("layout sweep post-12608 1G..64T step 1G",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal], scalingFactor: .one,
                                  maxDuration: .seconds(5))) { benchmark in
        let sweep = try LayoutSweep(template: LayoutConfiguration(physmem: 1 << 30),
                                    from: 1 << 30, to: 64 << 40, step: 1 << 30)
        for _ in benchmark.scaledIterations {
            blackHole(sweep.run())
        }
    }

    Benchmark("size parse 12.5G") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try SizeParser.parse("12.5G"))
        }
    }
}
