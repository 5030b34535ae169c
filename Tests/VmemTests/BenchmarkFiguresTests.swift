import Testing
@testable import Vmem
import VmemWorkloads

/// Issue 17 item 6: figures a user can trust — the high-water mark is the
/// peak of the timed run, and the metadata of `small` counts the quantum
/// caches' magazines, depot and slab directory, with both shares reported.
@Suite struct BenchmarkFiguresTests {
    /// Pair by pair, the loop's peak equals the highest end address any
    /// allocation reached since `startPeak()`, with the bytes in use then.
    @Test(arguments: [StandardWorkload.instant, .small])
    func highWaterIsThePeakOfTheRun(_ w: StandardWorkload) throws {
        let arena = try w.makeArena()
        defer { arena.destroy() }
        var loop = try WorkloadLoop(arena: arena, workload: w)
        try loop.run(2_000)
        loop.startPeak()
        var peak = loop.slots.map { $0.address + $0.size }.max()!
        var endOfRun: UInt64 = 0
        for _ in 0..<3_000 {
            try loop.run(1)
            let ends = loop.slots.map { $0.address + $0.size }
            if let top = ends.max(), top > peak { peak = top }
            endOfRun = ends.max()!
        }
        #expect(loop.highWater.extent == peak - StandardWorkload.base)
        #expect(loop.highWater.inUse == loop.slots.reduce(0) { $0 + $1.size })
        // A sample after the run can only be lower.
        #expect(endOfRun <= peak)
        try loop.freeAll()
    }

    @Test func theRunnerReportsThePeak() throws {
        // A run whose last block frees the highest allocations would have
        // sampled low; the peak is at least the end-of-run sample.
        let r = try WorkloadRunner.run(.instant, ops: 5_000, warmup: 500, repeats: 3)
        #expect(r.highWaterRatio >= 1)
    }

    @Test func metadataOfSmallCountsTheCaches() throws {
        let r = try WorkloadRunner.run(.small, ops: 5_000, warmup: 1_000)
        #expect(r.cacheMetadataBytesPerSegment > 0)
        #expect(r.arenaMetadataBytesPerSegment > 0)
        #expect(abs(r.metadataBytesPerSegment - r.arenaMetadataBytesPerSegment - r.cacheMetadataBytesPerSegment) < 1e-9)
        #expect(r.json.contains("\"metadataArenaBytesPerSegment\": "))
        #expect(r.json.contains("\"metadataCacheBytesPerSegment\": "))
        let plain = try WorkloadRunner.run(.smallNoCache, ops: 5_000, warmup: 1_000)
        #expect(plain.cacheMetadataBytesPerSegment == 0)
        #expect(plain.metadataBytesPerSegment == plain.arenaMetadataBytesPerSegment)
    }

    /// The footprint counts live allocations as callers see them (cached
    /// objects, not the slabs that hold them) and the caches' own memory.
    @Test func footprintCountsObjectsNotSlabs() throws {
        let q: UInt64 = 0x1000
        let a = try Arena(name: "fp", base: 0x100_0000, size: 0x1000_0000, quantum: q, quantumCacheMax: 4 * q)
        defer { a.destroy() }
        var live: [UInt64] = []
        for _ in 0..<100 { live.append(try a.alloc(q)) }       // cached
        for _ in 0..<10 { live.append(try a.alloc(16 * q)) }   // arena segments
        let f = a.metadataFootprint
        #expect(f.allocations == 110)
        let caches = a.quantumCacheStatistics
        #expect(f.cacheBytes == caches.reduce(0) { $0 + $1.metadataBytes })
        // At least the used cache's CPU slots, records and directory.
        #expect(caches[0].metadataBytes >= caches[0].cpuCount * 128 + 64 * 128)
        #expect(caches[0].magazines > 0)
        #expect(f.arenaBytes > 0)
        #expect(f.bytesPerAllocation == Double(f.arenaBytes + f.cacheBytes) / 110)
    }
}
