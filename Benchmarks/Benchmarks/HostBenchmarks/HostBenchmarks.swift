import Benchmark
import HostWorkloads

// The host-memory workloads of `vmkit bench as` (see the HostWorkloads
// article), at small sizes. Setup (the address space, the page-cache file,
// the 10,000 segments) happens outside the measurement, and so does each
// sample's map and check of a fresh segment: only the touching, the map and
// unmap pairs or the lookups are timed. Wall clock per iteration is ns per
// fault, per pair or per lookup; the malloc counter covers every thread,
// the fault handler's included. The C baselines are in `vmkit bench as`,
// which times them turn about with these.

nonisolated(unsafe) var zeroFill: ZeroFillFaultWorkload?
nonisolated(unsafe) var copyFile: FileCopyFaultWorkload?
nonisolated(unsafe) var mapUnmap: MapUnmapWorkload?
nonisolated(unsafe) var segat: SegatWorkload?

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        scalingFactor: .kilo,
        maxDuration: .seconds(5),
        maxIterations: 30
    )
    let faultsPerSample = BenchmarkScalingFactor.kilo.rawValue

    Benchmark("fault zero fill (4 KiB write faults, anonymous segvn via userfaultfd)",
              configuration: .init(setup: {
                  zeroFill = try ZeroFillFaultWorkload(pages: faultsPerSample)
              }, teardown: {
                  zeroFill = nil
              })) { benchmark in
        guard let w = zeroFill else { return }
        let segment = try w.prepare()
        benchmark.startMeasurement()
        PageTouch.write(w.host.pointer(segment.base), pages: w.pages)
        benchmark.stopMeasurement()
        try w.finish(segment)
    }

    Benchmark("fault copy (4 KiB write faults, lazy fill from a cached file, read-ahead 4 KiB)",
              configuration: .init(setup: {
                  copyFile = try FileCopyFaultWorkload(pages: faultsPerSample)
              }, teardown: {
                  copyFile = nil
              })) { benchmark in
        guard let w = copyFile else { return }
        let segment = try w.prepare()
        benchmark.startMeasurement()
        PageTouch.write(w.host.pointer(segment.base), pages: w.pages)
        benchmark.stopMeasurement()
        try w.finish(segment)
    }

    Benchmark("map+unmap 2 MiB anonymous segment (pairs)",
              configuration: .init(setup: {
                  mapUnmap = try MapUnmapWorkload(pairs: 1, size: 2 << 20)
              }, teardown: {
                  mapUnmap = nil
              })) { benchmark in
        guard let w = mapUnmap else { return }
        let pairs = benchmark.scaledIterations.count
        benchmark.startMeasurement()
        _ = try w.mapUnmap(pairs)
        benchmark.stopMeasurement()
    }

    // segat returns a retained segment; withSegment(at:) lends it under the lock.
    for borrowed in [false, true] {
        Benchmark(borrowed ? "segat among 10,000 segments, hint missing, segment borrowed (lookups)"
                           : "segat among 10,000 segments, hint missing (lookups)",
                  configuration: .init(scalingFactor: .mega, setup: {
                      segat = try SegatWorkload(segments: 10_000, lookups: 1)
                  }, teardown: {
                      segat = nil
                  })) { benchmark in
            guard let w = segat else { return }
            w.missTheHint()
            let lookups = benchmark.scaledIterations.count
            benchmark.startMeasurement()
            let r = borrowed ? w.lookUpBorrowed(lookups) : w.lookUp(lookups)
            benchmark.stopMeasurement()
            blackHole(r.found)
        }
    }
}
