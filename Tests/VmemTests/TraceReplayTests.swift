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

