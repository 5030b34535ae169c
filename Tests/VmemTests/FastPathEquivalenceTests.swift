import Testing
@testable import Vmem
import VmemWorkloads

/// `alloc`'s fast paths (instant fit's carve of a list head, best and first
/// fit's search without the import-wait loop) must leave an arena exactly as
/// the general path does. An audited arena never takes them, so the same
/// random run on a plain and an audited arena, each importing from a parent
/// of its own, must give the same addresses and the same counters, step by
/// step, including the searches a failed fast attempt hands back.
@Suite struct FastPathEquivalenceTests {
    struct Counters: Equatable {
        var inUse, imported, total, allocs, frees, fails, searches, lookups, segments, hash: UInt64
        init(_ s: ArenaStatistics) {
            inUse = s.memInUse; imported = s.memImported; total = s.memTotal; allocs = s.allocCount
            frees = s.freeCount; fails = s.failCount; searches = s.searchCount; lookups = s.lookupCount
            segments = s.allocatedSegments; hash = s.hashSize
        }
    }

    @Test(arguments: [AllocationPolicy.instantFit, .bestFit, .firstFit])
    func fastAndGeneralPathsAgree(_ policy: AllocationPolicy) throws {
        func make(_ audit: Bool) throws -> (Arena, Arena) {
            // A small parent, so that imports fail now and then too.
            let parent = try Arena(name: "parent", base: 0x10_0000, size: 96 << 12, quantum: 0x1000)
            let child = try Arena(name: "child", quantum: 0x1000, source: .arena(parent),
                                  minimumImport: 8 << 12, debugging: ArenaDebugging(audit: audit))
            return (parent, child)
        }
        let (p1, fast) = try make(false), (p2, general) = try make(true)
        defer { fast.destroy(); general.destroy(); p1.destroy(); p2.destroy() }
        #expect(fast.plainPaths && !general.plainPaths)
        var rng = SplitMix64(seed: 99)
        var live: [(UInt64, UInt64)] = []
        var failures = 0, imports = 0
        for step in 0..<4_000 {
            if live.isEmpty || rng.next() % 5 < 3 {
                let size = (1 + rng.next() % 24) << 12
                let fromEnd = rng.next() % 4 == 0
                let a = Result { () throws(VmemError) in try fast.alloc(size, policy: policy, fromEnd: fromEnd) }
                let b = Result { () throws(VmemError) in try general.alloc(size, policy: policy, fromEnd: fromEnd) }
                switch (a, b) {
                case (.success(let x), .success(let y)):
                    #expect(x == y, "step \(step)")
                    live.append((x, size))
                case (.failure(let x), .failure(let y)):
                    #expect(x == y, "step \(step)")
                    failures += 1
                default:
                    Issue.record("step \(step): \(a) vs \(b)")
                    return
                }
            } else if rng.next() % 16 == 0 {
                // A bad free (never allocated, or the wrong size) fails the
                // same way on both, and counts the same lookups.
                let i = Int(rng.next() % UInt64(live.count))
                // An address inside a live allocation starts no segment.
                let inside = live[i].1 > 0x1000 && rng.next() % 2 == 0
                let (addr, size) = inside ? (live[i].0 + 0x1000, UInt64(0x1000)) : (live[i].0, live[i].1 + 0x1000)
                let x = Result { () throws(VmemError) in try fast.free(addr, size: size) }
                let y = Result { () throws(VmemError) in try general.free(addr, size: size) }
                guard case .failure(let e) = x, case .failure(let f) = y else {
                    Issue.record("step \(step): a bad free succeeded: \(x) vs \(y)")
                    return
                }
                #expect(e == f, "step \(step)")
            } else {
                let i = Int(rng.next() % UInt64(live.count))
                try fast.free(live[i].0, size: live[i].1)
                try general.free(live[i].0, size: live[i].1)
                live.swapAt(i, live.count - 1)
                live.removeLast()
            }
            #expect(Counters(fast.statistics) == Counters(general.statistics), "step \(step)")
            imports = Int(fast.statistics.importCount)
        }
        try fast.verify()
        try general.verify()
        // The run must have reached the slow paths: imports and failures.
        #expect(failures > 10 && imports > 10)
    }
}
