import Testing
import VmemWorkloads
import Synchronization
@testable import Vmem

/// Issue 17 item 11: concurrent allocation from a child arena that imports
/// from a parent, with spans given back to the parent while other threads
/// import (the import drops the child's lock; a free may release a span
/// meanwhile; a fresh import may go straight back when room appeared). Its
/// name holds `ArenaConcurrencyTests`, so `.ci/run` runs it under the
/// thread sanitizer.
@Suite struct ImportArenaConcurrencyTests {
    static let q: UInt64 = 0x1000
    static let parentBase: UInt64 = 0x10_0000_0000
    static let parentSize: UInt64 = 1 << 32

    /// `threads` threads on one child, each keeping at most `maxLive`
    /// allocations so that imported spans empty and go back all the time.
    func run(threads: Int, ops: Int, maxLive: Int, quantumCacheMax: UInt64, minimumImport: UInt64) throws {
        let parent = try Arena(name: "parent", base: Self.parentBase, size: Self.parentSize, quantum: Self.q)
        let child = try Arena(name: "child", quantum: Self.q, source: .arena(parent),
                              quantumCacheMax: quantumCacheMax, minimumImport: minimumImport)
        let table = OwnershipTable(base: Self.parentBase, size: Self.parentSize, quantum: Self.q)
        let failures = Atomic<Int>(0)
        _ = OSThreads.run(threads) { t in
            var rng = SplitMix64(seed: 0xC41D &+ UInt64(t))
            var live: [(UInt64, UInt64, Bool)] = []
            func release(_ i: Int) {
                live.swapAt(i, live.count - 1)
                let (a, s, x) = live.removeLast()
                table.release(a, s)
                do { if x { try child.xfree(a, size: s) } else { try child.free(a, size: s) } }
                catch { failures.add(1, ordering: .relaxed) }
            }
            for _ in 0..<ops {
                let r = rng.next()
                if live.count >= maxLive || (r & 3 == 0 && !live.isEmpty) {
                    release(Int(rng.next() % UInt64(live.count)))
                } else {
                    let s = (1 + (r >> 8) % 20) * Self.q
                    let aligned = (r >> 20) & 7 == 0
                    do {
                        let a = aligned ? try child.xalloc(s, align: 0x10000) : try child.alloc(s)
                        if aligned && a % 0x10000 != 0 { failures.add(1, ordering: .relaxed) }
                        if !table.claim(a, s, owner: t + 1) { failures.add(1, ordering: .relaxed) }
                        live.append((a, s, aligned))
                    } catch { failures.add(1, ordering: .relaxed) }
                }
            }
            while !live.isEmpty { release(live.count - 1) }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
        let st = child.statistics
        #expect(st.importCount > 100)
        #expect(st.memInUse == UInt64(child.quantumCacheStatistics.reduce(0) { $0 + $1.slabs }) * child.quantumCacheSlabSize)
        try child.verify()
        try parent.verify()
        if quantumCacheMax == 0 {
            // Spans came and went, many times, and all went back in the end.
            #expect(st.releaseCount == st.importCount)
            #expect(st.memImported == 0)
            #expect(parent.size(.allocated) == 0)
        }
        // Every span the parent handed out came back: kept ones on their
        // last free, fresh ones at once when another thread had made room.
        #expect(child.destroy().isClean)   // drains the caches: their slabs' spans go back too
        let p = parent.statistics
        #expect(p.allocCount >= st.importCount && p.freeCount == p.allocCount)
        #expect(parent.size(.allocated) == 0)
        try parent.verify()
        #expect(parent.destroy().isClean)
    }

    @Test func fourThreadsImportAndReleaseSpans() throws {
        try run(threads: 4, ops: 30_000, maxLive: 8, quantumCacheMax: 0, minimumImport: 0)
    }

    @Test func fourThreadsWithAMinimumImport() throws {
        try run(threads: 4, ops: 30_000, maxLive: 8, quantumCacheMax: 0, minimumImport: 0x40000)
    }

    @Test func fourThreadsWithQuantumCachesOnTheChild() throws {
        try run(threads: 4, ops: 30_000, maxLive: 8, quantumCacheMax: 4 * Self.q, minimumImport: 0)
    }
}
