import Benchmark
import GuestMemory
import GuestSnapshot
import GuestWorkloads

// The guest-memory workloads of `vmkit bench guest` (see GuestWorkloads).
// Setup (the guests, the C map, the random GPAs) happens outside the
// measurement, and so does each sample's marking of the dirty pages: only
// the translations, the hold + release pairs, the harvest and the making of
// a guest are timed (the harvest: harvest, count, commit and release; the
// nested faults: 4096 A/D emulation faults, re-armed untimed). The C
// baseline of the translations is timed turn about with ours by
// `vmkit bench guest`.

nonisolated(unsafe) var translate: [Int: TranslateWorkload] = [:]
nonisolated(unsafe) var holds: HoldReleaseWorkload?
nonisolated(unsafe) var harvest: DirtyHarvestWorkload?
nonisolated(unsafe) var faults: NestedFaultWorkload?
nonisolated(unsafe) var reserve: ReserveMapWorkload?
nonisolated(unsafe) var workingSet: WorkingSetWorkload?

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        scalingFactor: .kilo,
        maxDuration: .seconds(5),
        maxIterations: 30
    )

    for n in [1, 4, 32] {
        Benchmark("translate, \(n) mapping\(n == 1 ? "" : "s") (lookups)",
                  configuration: .init(setup: {
                      translate[n] = try TranslateWorkload(mappings: n, lookups: BenchmarkScalingFactor.kilo.rawValue)
                  }, teardown: {
                      translate[n] = nil
                  })) { benchmark in
            guard let w = translate[n] else { return }
            benchmark.startMeasurement()
            let r = w.translateOurs()
            benchmark.stopMeasurement()
            blackHole(r.misses)
        }
    }

    Benchmark("hold + release of one page (pairs)",
              configuration: .init(setup: {
                  holds = try HoldReleaseWorkload(holds: 1)
              }, teardown: {
                  holds = nil
              })) { benchmark in
        guard let w = holds else { return }
        let count = benchmark.scaledIterations.count
        benchmark.startMeasurement()
        _ = try w.holdRelease(count)
        benchmark.stopMeasurement()
    }

    Benchmark("nested fault resolved by A/D emulation (faults)",
              configuration: .init(scalingFactor: .one, setup: {
                  faults = try NestedFaultWorkload(faults: 4096)
              }, teardown: {
                  faults = nil
              })) { benchmark in
        guard let w = faults else { return }
        try w.rearm()
        benchmark.startMeasurement()
        let sum = try w.tableFaults()
        benchmark.stopMeasurement()
        blackHole(sum)
    }

    Benchmark("dirty harvest, 64 GiB guest, 1% dirty (harvests)",
              configuration: .init(scalingFactor: .one, setup: {
                  harvest = try DirtyHarvestWorkload(guestSize: 64 << 30)
              }, teardown: {
                  harvest = nil
              })) { benchmark in
        guard let w = harvest else { return }
        try w.markDirty()
        benchmark.startMeasurement()
        let n = try w.harvestCycle()
        benchmark.stopMeasurement()
        blackHole(n)
    }

    Benchmark("64 GiB guest reserved and mapped, not populated (guests)",
              configuration: .init(scalingFactor: .one, setup: {
                  reserve = try ReserveMapWorkload(guestSize: 64 << 30, guests: 1)
              }, teardown: {
                  reserve = nil
              })) { benchmark in
        guard let w = reserve else { return }
        benchmark.startMeasurement()
        let memory = try GuestMemory.standard(size: w.guestSize)
        benchmark.stopMeasurement()
        try memory.destroy()
    }

    // The fault tail of a lazy restore: 16 MiB of a 1 GiB guest's snapshot
    // (runs of 16 pages, shuffled) touched by the VMM, on demand (one
    // userfaultfd round trip per page) or after prefetching the working set
    // the first restore recorded. The restore itself is untimed.
    for prefetched in [false, true] {
        Benchmark(prefetched ? "16 MiB working set after a lazy restore, prefetched then touched (restores)"
                             : "16 MiB working set after a lazy restore, touched on demand (restores)",
                  configuration: .init(scalingFactor: .one, maxIterations: 10, setup: {
                      workingSet = try WorkingSetWorkload(directory: "/dev/shm")
                  }, teardown: {
                      workingSet = nil
                  })) { benchmark in
            guard let w = workingSet else { return }
            let r = try w.restore()
            benchmark.startMeasurement()
            if prefetched { _ = try w.prefetch(r) }
            let ns = try w.touch(r)
            benchmark.stopMeasurement()
            blackHole(ns)
            w.finish(r)
        }
    }
}
