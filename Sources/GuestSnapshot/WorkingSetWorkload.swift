#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import GuestMemory

/// A guest whose working set is known, for timing the fault tail a
/// prefetched working set removes (`vmkit bench guest`'s
/// `snap.ws-prefetch-16m` and package-benchmark's GuestBenchmarks).
///
/// At init: a `guestBytes` memfd guest gets `workingSetBytes` of non-zero
/// pages in runs of 16, at run starts drawn without repeats by splitmix64
/// (seed 42) and touched in that shuffled order; a full snapshot of it goes
/// to `directory`; one lazy restore touches the pages on demand and its
/// ``LazyRestore/workingSet`` is kept (so the set is recorded the real way).
/// Each measurement then takes a fresh restore (``restore()``, untimed by
/// the caller), optionally ``prefetch(_:)``, and ``touch(_:)``.
public final class WorkingSetWorkload: @unchecked Sendable {
    /// The guest pages touched, in touch order.
    public let touches: [UInt64]
    /// The working set the first restore recorded.
    public private(set) var workingSet: WorkingSet
    let path: String

    /// A restored memory and the restore serving it.
    public struct Restored {
        public let memory: GuestMemory
        public let lazy: LazyRestore
    }

    public init(directory: String, guestBytes: UInt64 = 1 << 30, workingSetBytes: UInt64 = 16 << 20) throws(GuestSnapshotError) {
        let runPages: UInt64 = 16
        let slots = guestBytes / 4096 / runPages
        let runCount = min(max(1, workingSetBytes / 4096 / runPages), slots)
        var state: UInt64 = 42
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        var starts: [UInt64] = []
        var taken = Set<UInt64>()
        while UInt64(starts.count) < runCount {
            let s = next() % slots
            if taken.insert(s).inserted { starts.append(s * runPages) }
        }
        touches = starts.flatMap { s in (0 ..< runPages).map { s + $0 } }
        path = directory + "/bench-ws-\(guestBytes >> 20)-\(getpid())"
        let g = try SnapshotWorkloads.guest(guestBytes)
        try SnapshotWorkloads.fill(g, pages: touches)
        try GuestSnapshotter(memory: g).writeFull(to: path)
        try? g.destroy()
        workingSet = WorkingSet(snapshot: .none, pages: [])
        let first = try restore()
        _ = try touch(first)
        workingSet = first.lazy.workingSet
        finish(first)
    }

    deinit { unlink(path) }

    /// A lazy restore of the snapshot into a new memory.
    public func restore() throws(GuestSnapshotError) -> Restored {
        let (m, l) = try LazyRestore.intoNewMemory(try SnapshotChain(paths: [path]))
        return Restored(memory: m, lazy: l)
    }

    /// Prefetches the working set into `r`: nanoseconds and pages filled.
    public func prefetch(_ r: Restored) throws(GuestSnapshotError) -> (nanoseconds: UInt64, pages: UInt64) {
        let t = SnapshotIO.now()
        let n = try r.lazy.prefetch(workingSet)
        return (SnapshotIO.now() - t, n)
    }

    /// Reads a word of every working-set page of `r`, in touch order: nanoseconds.
    public func touch(_ r: Restored) throws(GuestSnapshotError) -> UInt64 {
        let t = SnapshotIO.now()
        do throws(GuestMemoryError) {
            for p in touches { _ = try r.memory.load(UInt64.self, at: p * 4096) }
        } catch { throw .memory(error) }
        return SnapshotIO.now() - t
    }

    /// Drops `r` without fetching the pages never touched.
    public func finish(_ r: Restored) {
        try? r.memory.destroy()
        try? r.lazy.finish()
    }
}
