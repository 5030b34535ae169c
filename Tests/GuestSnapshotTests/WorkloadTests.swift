import Testing
import GuestSnapshot

/// The benchmark workloads run small, so `vmkit bench guest` cannot wire a
/// broken one: each reports what it measured, and the figures hang together.
@Suite("Snapshot workloads")
struct WorkloadTests {
    @Test func workloadsRunSmall() throws {
        try SnapKit.gated {
            try SnapKit.withScratch { dir in
                let diff = try SnapshotWorkloads.diffWrite(directory: dir, guestBytes: 16 << 20, dirtyBytes: 4 << 20, rounds: 3)
                #expect(diff.rounds == 3 && diff.median > 0 && diff.baselineMedian > 0 && diff.bytes == 4 << 20)
                #expect(diff.details.first { $0.0 == "pages recorded" }?.1 == 1024)
                let full = try SnapshotWorkloads.fullSnapshot(directory: dir, guestBytes: 16 << 20, rounds: 3)
                let pages = full.details.first { $0.0 == "pages" }!.1
                let allocated = full.details.first { $0.0.hasPrefix("allocated") }!.1
                #expect(pages == 410)
                // Holes: about a tenth of the file is allocated (the tables and one data page per ten).
                #expect(allocated >= pages * 4096 && allocated < (16 << 20) / 5)
                let lazy = try SnapshotWorkloads.lazyRestore(directory: dir, guestBytes: 64 << 20, touchedBytes: 4 << 20, rounds: 3)
                #expect(lazy.median > 0 && lazy.details.first?.1 == 1)
                #expect("\(lazy)".contains("lazy restore"))
                let ws = try SnapshotWorkloads.workingSetPrefetch(directory: dir, guestBytes: 64 << 20, workingSetBytes: 1 << 20, rounds: 3)
                func detail(_ k: String) -> UInt64? { ws.details.first { $0.0 == k }?.1 }
                // 16 runs of 16 pages: 256 faults on demand; all prefetched and none left after.
                #expect(detail("faults on demand") == 256 && detail("pages prefetched") == 256 && detail("faults after the prefetch") == 0)
                #expect(ws.median > 0 && ws.baselineMedian > 0 && ws.bytes == 1 << 20)
            }
        }
    }
}
