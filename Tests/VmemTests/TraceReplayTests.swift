import Testing
@testable import Vmem

func replay(_ text: String) -> [String] {
    var out: [String] = []
    var r = TraceReplayer { out.append($0) }
    r.run(text)
    return out
}

@Suite struct TraceReplayTests {
    @Test func allocFreeWalkStatsVerifyDestroy() {
        let out = replay("""
        # a comment line
        create heap base=0x1000 size=64K quantum=4K
        alloc heap a 8K
        alloc heap b 0x1000 best
        xalloc heap c 4K align=16K phase=4K
        free heap a
        stats heap
        walk heap
        verify heap
        destroy heap
        """)
        #expect(out == [
            "a 0x1000",
            "b 0x3000",
            "c 0x5000",
            "stats heap inuse=8192 total=65536 imported=0 allocs=3 frees=1 fails=0",
            "seg span 0x1000 0x11000",
            "seg free 0x1000 0x3000",
            "seg alloc 0x3000 0x4000",
            "seg free 0x4000 0x5000",
            "seg alloc 0x5000 0x6000",
            "seg free 0x6000 0x11000",
            "verify heap ok",
            "destroy heap leaked=8192 segments=2",
        ])
    }

    /// vmem.md §5: `verify NAME FAILED: reason` when the arena's
    /// invariants do not hold, and the replay goes on.
    @Test func verifyReportsDamage() throws {
        var out: [String] = []
        var r = TraceReplayer { out.append($0) }
        r.run("""
        create a base=0x1000 size=64K quantum=4K
        alloc a x 8K
        alloc a y 4K
        """)
        let a = try #require(r.arenaNamed("a"))
        #expect(a.corruptForTesting(.statistic))
        r.run("verify a\nstats a")
        #expect(out.count == 4)
        let line = out[2]
        #expect(line.hasPrefix("verify a FAILED: "), "\(line)")
        #expect(line.contains("memInUse"), "the reason names what is wrong: \(line)")
        #expect(out[3].hasPrefix("stats a "))
    }

    /// `qcache=N` counts bytes, or quanta when it is 1...16 and not a
    /// multiple of the quantum: `qcache=8` and `qcache=32K` make the same
    /// arena on 4 KiB pages, one whose small allocations come from slabs.
    @Test func quantumCacheLimitInBytesOrQuanta() {
        func run(_ qcache: String) -> [String] {
            replay("""
            create a base=0x1000 size=4M quantum=4K \(qcache)
            alloc a x 8K
            alloc a y 64K
            walk a
            """)
        }
        let bytes = run("qcache=32K"), quanta = run("qcache=8"), none = run("")
        #expect(bytes == quanta)
        #expect(bytes != none)
        // Without caches the walk shows the 8 KiB allocation itself; with
        // them, a larger slab the cache took from the arena.
        #expect(none.contains("seg alloc 0x1000 0x3000"))
        #expect(!bytes.contains("seg alloc 0x1000 0x3000") && bytes.contains { $0.hasPrefix("seg alloc") })
        // Not a multiple of the quantum and above 16: refused, naming the value.
        #expect(replay("create b base=0x1000 size=1M quantum=4K qcache=17") ==
                ["line 1: error: quantumCacheMax 0x11 is not a multiple of the quantum 0x1000"])
        // Quantum 1: bytes and quanta agree.
        #expect(TraceReplayer.quantumCacheBytes(4, quantum: 1) == 4)
        #expect(TraceReplayer.quantumCacheBytes(16, quantum: 4096) == 65536)
        #expect(TraceReplayer.quantumCacheBytes(0, quantum: 4096) == 0)
        // A quantum so large that N quanta overflow: left to the arena, which refuses the quantum.
        #expect(TraceReplayer.quantumCacheBytes(7, quantum: .max) == 7)
        #expect(replay("create c base=1M size=1G quantum=0xffffffffffffffff qcache=7").count == 1)
    }

    @Test func importFromSourceAndRelease() {
        let out = replay("""
        create parent base=0x100000 size=1M quantum=4K
        create child quantum=4K source=parent minimport=64K
        alloc child x 8K
        stats child
        free child x
        stats parent
        """)
        #expect(out == [
            "x 0x100000",
            "stats child inuse=8192 total=65536 imported=65536 allocs=1 frees=0 fails=0",
            "stats parent inuse=0 total=1048576 imported=0 allocs=1 frees=1 fails=0",
        ])
    }

    @Test func failedAllocationsAndFrees() {
        let out = replay("""
        create a base=0x1000 size=8K quantum=4K
        alloc a x 8K
        alloc a y 4K
        free a x 4K
        free a x
        free a x
        free a nosuch
        xalloc a z 4K align=3K
        """)
        #expect(out == ["x 0x1000", "y fail", "x error wrongsize", "x error unknown", "nosuch error unknown", "z fail"])
    }

    @Test func malformedLinesReportAndContinue() {
        let out = replay("""
        create a base=0x1000 size=8K quantum=4K
        frobnicate a
        alloc nosuch t 4K
        alloc a t banana
        create a base=0 size=4K quantum=4K
        create b quantum=3
        xalloc a t 4K colour=blue
        alloc a t 4K sideways
        add a
        alloc a ok 4K
        """)
        #expect(out.count == 9)
        #expect(out[0] == "line 2: error: unknown command frobnicate")
        #expect(out[1] == "line 3: error: unknown arena nosuch")
        #expect(out[2].hasPrefix("line 4: error: size: size 'banana' is not a number"))
        #expect(out[3] == "line 5: error: arena a already exists")
        #expect(out[4] == "line 6: error: quantum 0x3 is not a power of two")
        #expect(out[5] == "line 7: error: unknown option colour")
        #expect(out[6] == "line 8: error: unexpected word sideways")
        #expect(out[7].hasPrefix("line 9: error: usage: add"))
        #expect(out[8] == "ok 0x1000")
    }

    @Test func overlappingAddIsAnError() {
        let out = replay("""
        create a base=0x1000 size=8K quantum=4K
        add a 0x2000 4K
        add a 0x10000 4K
        walk a
        """)
        #expect(out[0] == "line 2: error: span [0x2000, +0x1000) overlaps existing span [0x1000, 0x3000)")
        #expect(out[1...] == ["seg span 0x1000 0x3000", "seg free 0x1000 0x3000", "seg span 0x10000 0x11000", "seg free 0x10000 0x11000"])
    }
}

