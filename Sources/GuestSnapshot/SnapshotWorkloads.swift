#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import GuestMemory
import HostMemory

/// One measured workload: medians of interleaved rounds of the workload and
/// of its baseline (the same bytes through plain system calls, or the bare
/// userfaultfd setup), for `vmkit bench guest` or a test.
public struct SnapshotBenchResult: Sendable, CustomStringConvertible {
    public let name: String
    public let rounds: Int
    /// Median nanoseconds of the workload.
    public let median: UInt64
    /// Median nanoseconds of the baseline.
    public let baselineMedian: UInt64
    public let baselineName: String
    /// Bytes the workload moved per round (0 where it moves none).
    public let bytes: UInt64
    /// Further figures (allocated bytes, file size, faults).
    public let details: [(String, UInt64)]

    /// Bytes per second of the workload's median, or nil.
    public var bytesPerSecond: Double? { bytes > 0 && median > 0 ? Double(bytes) * 1e9 / Double(median) : nil }

    public var description: String {
        func ms(_ ns: UInt64) -> String { String(Double(ns / 1000) / 1000) + " ms" }
        var s = "\(name): median \(ms(median)) over \(rounds) rounds"
        if let bps = bytesPerSecond { s += " (\(String(Int(bps / 1e6))) MB/s)" }
        s += "; baseline \(baselineName): \(ms(baselineMedian))"
        for (k, v) in details { s += "; \(k) \(v)" }
        return s
    }
}

/// The snapshot benchmarks of issue 16: diff write throughput, a full
/// snapshot of a sparse 1 GiB guest, and lazy restore's time to usable.
/// Each builds its guest in `directory`'s files (use /dev/shm for the page
/// cache without a disk) and removes them.
public enum SnapshotWorkloads {
    static func median(_ xs: [UInt64]) -> UInt64 { xs.sorted()[xs.count / 2] }

    /// A memfd guest of `bytes` mapped read-write at 0.
    static func guest(_ bytes: UInt64) throws(GuestSnapshotError) -> GuestMemory {
        do throws(GuestMemoryError) {
            let g = try GuestMemory(limit: bytes)
            try g.allocateSegment(id: 0, length: bytes)
            try g.map(gpa: 0, segment: 0, offset: 0, length: bytes, protection: .readWrite)
            return g
        } catch { throw .memory(error) }
    }

    /// Fills guest pages `pages` with non-zero bytes through the VMM.
    static func fill(_ g: GuestMemory, pages: some Sequence<UInt64>) throws(GuestSnapshotError) {
        var page = [UInt8](repeating: 0xA5, count: 4096)
        for p in pages {
            page[0] = UInt8(truncatingIfNeeded: p | 1)
            do throws(GuestMemoryError) { try g.write(p * 4096, page) } catch { throw .memory(error) }
        }
    }

    /// Baseline: `count` pages written with one pwrite per `run` pages from
    /// a buffer into a fresh file, then fsync.
    static func plainWrite(_ path: String, pages: UInt64, run: UInt64, stride: UInt64) -> UInt64 {
        let buf = UnsafeMutableRawPointer.allocate(byteCount: Int(run * 4096), alignment: 4096)
        defer { buf.deallocate() }
        buf.initializeMemory(as: UInt8.self, repeating: 0x5A, count: Int(run * 4096))
        let t0 = SnapshotIO.now()
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        var p: UInt64 = 0
        while p < pages {
            _ = SnapshotIO.pwriteAll(fd, buf, Int(run * 4096), p * stride * 4096)
            p += run
        }
        fsync(fd)
        close(fd)
        let t = SnapshotIO.now() - t0
        unlink(path)
        return t
    }

    /// Diff snapshot write: `dirtyBytes` of a `guestBytes` guest dirtied by
    /// the VMM (one store per page over pages that hold data), then a diff.
    /// Baseline: the same bytes in 1 MiB pwrites.
    public static func diffWrite(directory: String, guestBytes: UInt64 = 1 << 30, dirtyBytes: UInt64 = 256 << 20,
                                 rounds: Int = 7) throws(GuestSnapshotError) -> SnapshotBenchResult {
        let g = try guest(guestBytes)
        let pages = dirtyBytes / 4096
        try fill(g, pages: 0 ..< pages)
        let snap = GuestSnapshotter(memory: g)
        let base = directory + "/bench-diff-base"
        try snap.writeFull(to: base)
        defer { unlink(base) }
        var times: [UInt64] = [], baseline: [UInt64] = [], recorded: UInt64 = 0
        for r in 0 ..< rounds {
            for p in 0 ..< pages {
                do throws(GuestMemoryError) { try g.store(UInt64(r + 1) << 8 | 1, at: p * 4096 + 8) } catch { throw .memory(error) }
            }
            let path = directory + "/bench-diff-\(r)"
            let report = try snap.writeDiff(to: path)
            times.append(report.nanoseconds)
            recorded = report.pagesRecorded
            unlink(path)
            baseline.append(plainWrite(directory + "/bench-diff-plain", pages: pages, run: 256, stride: 1))
        }
        return SnapshotBenchResult(name: "diff snapshot write (\(dirtyBytes >> 20) MiB dirty of \(guestBytes >> 20) MiB)",
                                   rounds: rounds, median: median(times), baselineMedian: median(baseline),
                                   baselineName: "pwrite 1 MiB runs + fsync", bytes: dirtyBytes,
                                   details: [("pages recorded", recorded)])
    }

    /// Full snapshot of a `guestBytes` guest with every tenth page touched
    /// (`percent` of them, scattered: the worst case for runs). Baseline: the
    /// same pages with one pwrite each at the same offsets.
    public static func fullSnapshot(directory: String, guestBytes: UInt64 = 1 << 30, percent: UInt64 = 10,
                                    rounds: Int = 5) throws(GuestSnapshotError) -> SnapshotBenchResult {
        let g = try guest(guestBytes)
        let every = 100 / percent
        let touched = stride(from: UInt64(0), to: guestBytes / 4096, by: Int(every))
        try fill(g, pages: touched)
        let snap = GuestSnapshotter(memory: g)
        var times: [UInt64] = [], baseline: [UInt64] = []
        var last: SnapshotReport?
        let count = UInt64(touched.underestimatedCount)
        for r in 0 ..< rounds {
            let path = directory + "/bench-full"
            last = try snap.writeFull(to: path)
            times.append(last!.nanoseconds)
            if r < rounds - 1 { unlink(path) }
            baseline.append(plainWrite(directory + "/bench-full-plain", pages: count, run: 1, stride: every))
        }
        unlink(directory + "/bench-full")
        return SnapshotBenchResult(name: "full snapshot (\(guestBytes >> 20) MiB guest, \(percent) % touched, scattered)",
                                   rounds: rounds, median: median(times), baselineMedian: median(baseline),
                                   baselineName: "one pwrite per page + fsync", bytes: count * 4096,
                                   details: [("pages", last!.pagesRecorded), ("file size", last!.fileSize),
                                             ("allocated (st_blocks*512)", last!.allocatedBytes)])
    }

    /// Lazy restore of a `guestBytes` guest with `touchedBytes` in its full
    /// snapshot: from the call (opening the file included) to usable.
    /// Baseline: a bare `UserFaultService` started and the window registered.
    public static func lazyRestore(directory: String, guestBytes: UInt64, touchedBytes: UInt64 = 64 << 20,
                                   rounds: Int = 9) throws(GuestSnapshotError) -> SnapshotBenchResult {
        let path = directory + "/bench-lazy-\(guestBytes >> 20)"
        do {
            let g = try guest(guestBytes)
            try fill(g, pages: stride(from: UInt64(0), to: guestBytes / 4096, by: Int(guestBytes / touchedBytes)))
            try GuestSnapshotter(memory: g).writeFull(to: path)
        }
        defer { unlink(path) }
        var times: [UInt64] = [], baseline: [UInt64] = [], touchNanos: [UInt64] = []
        var faults: UInt64 = 0
        for _ in 0 ..< rounds {
            let target = try SnapshotFile(path: path).makeMemory()
            let t0 = SnapshotIO.now()
            let chain = try SnapshotChain(paths: [path])
            let lazy = try LazyRestore(chain, into: target)
            times.append(SnapshotIO.now() - t0)
            // One touch proves it usable; then 1 MiB of first touches, one fault each.
            do throws(GuestMemoryError) { _ = try target.load(UInt64.self, at: 0) } catch { throw .memory(error) }
            faults = lazy.statistics.faultsServed
            let t2 = SnapshotIO.now()
            do throws(GuestMemoryError) {
                for p in UInt64(1) ... 256 { _ = try target.load(UInt64.self, at: p * 4096) }
            } catch { throw .memory(error) }
            touchNanos.append((SnapshotIO.now() - t2) / 256)
            // Not fetching the rest: the memory goes away with the restore.
            try? target.destroy()
            let b = try guest(guestBytes)
            let t1 = SnapshotIO.now()
            do throws(HostMemoryError) {
                let s = try UserFaultService { _, _ in .wake }
                try s.register(at: b.hostBase, length: guestBytes, modes: .missing)
                baseline.append(SnapshotIO.now() - t1)
                try s.stop()
            } catch { throw .host(error) }
        }
        return SnapshotBenchResult(name: "lazy restore to usable (\(guestBytes >> 20) MiB guest, \(touchedBytes >> 20) MiB in the file)",
                                   rounds: rounds, median: median(times), baselineMedian: median(baseline),
                                   baselineName: "bare uffd service + register", bytes: 0,
                                   details: [("faults for one touch", faults),
                                             ("ns per first touch (256 pages)", median(touchNanos))])
    }

    /// The fault tail with and without a working set (``WorkingSetWorkload``):
    /// baseline, the pages touched on demand after a lazy restore, one fault
    /// each; workload, a fresh restore whose working set (recorded by the
    /// first on-demand round) is prefetched, then the same touches. Rounds
    /// interleave the two.
    public static func workingSetPrefetch(directory: String, guestBytes: UInt64 = 1 << 30,
                                          workingSetBytes: UInt64 = 16 << 20,
                                          rounds: Int = 9) throws(GuestSnapshotError) -> SnapshotBenchResult {
        let w = try WorkingSetWorkload(directory: directory, guestBytes: guestBytes, workingSetBytes: workingSetBytes)
        var onDemand: [UInt64] = [], withPrefetch: [UInt64] = [], prefetchOnly: [UInt64] = []
        var faultsOnDemand: UInt64 = 0, faultsAfter: UInt64 = 0, prefetched: UInt64 = 0
        for _ in 0 ..< rounds {
            let a = try w.restore()
            onDemand.append(try w.touch(a))
            faultsOnDemand = a.lazy.statistics.faultsServed
            w.finish(a)
            let b = try w.restore()
            let (p, n) = try w.prefetch(b)
            prefetchOnly.append(p)
            prefetched = n
            withPrefetch.append(p + (try w.touch(b)))
            faultsAfter = b.lazy.statistics.faultsServed
            w.finish(b)
        }
        return SnapshotBenchResult(name: "working set of \(w.touches.count) pages (runs of 16, shuffled) touched after a lazy restore of a "
                                       + "\(guestBytes >> 20) MiB guest: prefetched, then touched",
                                   rounds: rounds, median: median(withPrefetch), baselineMedian: median(onDemand),
                                   baselineName: "touched on demand (one fault per page)", bytes: UInt64(w.touches.count) * 4096,
                                   details: [("faults on demand", faultsOnDemand), ("pages prefetched", prefetched),
                                             ("faults after the prefetch", faultsAfter),
                                             ("prefetch ns (median)", median(prefetchOnly))])
    }
}
