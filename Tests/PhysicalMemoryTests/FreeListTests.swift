import Testing
import PhysicalMemory

@Suite("Free list, holes, physmem limit, contiguous runs")
struct FreeListTests {
    @Test func framesComeLowestFirstThenMostRecentlyFreed() throws {
        let pm = try PhysicalMemory(pageCount: 100)
        let a = try pm.pageCreate(vnode: .kvp, offset: 0)
        let b = try pm.pageCreate(vnode: .kvp, offset: 0x1000)
        #expect(a == 0 && b == 1)
        try pm.pageDestroy(a)
        #expect(try pm.pageCreate(vnode: .kvp, offset: 0x2000) == a)
    }

    @Test func memoryListHolesAreNotFrames() throws {
        let pm = try PhysicalMemory(memoryList: [FrameRange(lower: 0, upper: 4), FrameRange(lower: 16, upper: 20)])
        #expect(pm.totalPages == 8)
        #expect(pm.frameLimit == 20)
        #expect(throws: PhysicalMemoryError.pfnNotPresent(pfn: 8)) { try pm.page(8) }
        #expect(throws: PhysicalMemoryError.pfnNotPresent(pfn: 8)) {
            try pm.pageCreate(at: 8, vnode: .kvp, offset: 0)
        }
        let pfns = try pm.pageCreate(vnode: .kvp, offset: 0, pageCount: 8)
        #expect(pfns == [0, 1, 2, 3, 16, 17, 18, 19])
        try pm.verify()
    }

    @Test func physmemExcludesTheHighestFramesOnUnusedPagesVnode() throws {
        let pm = try PhysicalMemory(pageCount: 100, physmem: 90)
        #expect(pm.excludedPages == 10)
        #expect(pm.freelistPages == 90)
        let p = try pm.page(95)
        #expect(p.vnode == .unusedPages)
        #expect(try pm.vnodeInfo(.unusedPages).pageCount == 10)
        #expect(throws: PhysicalMemoryError.pfnNotPresent(pfn: 95)) { try pm.pageCreate(at: 95, vnode: .kvp, offset: 0) }
        #expect(try pm.memstatCategory(of: 95) == nil)
        let all = try pm.pageCreate(vnode: .kvp, offset: 0, pageCount: 90)
        #expect(all.max() == 89)
        #expect(throws: PhysicalMemoryError.outOfMemory(requested: 1, available: 0)) { try pm.pageCreate(vnode: .kvp, offset: 90 << 12) }
        try pm.verify()
    }

    @Test func claimingSpecificFramesSplitsRangesAndTombstonesRecycledFrames() throws {
        let pm = try PhysicalMemory(pageCount: 64)
        try pm.pageCreate(at: 10, vnode: .kvp, offset: 0xA000)
        #expect(try pm.page(10).vnode == .kvp)
        #expect(pm.freeRanges == [FrameRange(lower: 0, upper: 10), FrameRange(lower: 11, upper: 64)])
        #expect(throws: PhysicalMemoryError.frameInUse(pfn: 10)) { try pm.pageCreate(at: 10, vnode: .kvp, offset: 0) }
        // A recycled frame (on the stack) claimed, freed and claimed again.
        let x = try pm.pageCreate(vnode: .kvp, offset: 0)        // frame 0
        try pm.pageDestroy(x)                                    // stack: [0]
        try pm.pageCreate(at: x, vnode: .kvp, offset: 0x1000)    // tombstone 0
        try pm.pageDestroy(x)                                    // stack: [0, 0]
        try pm.pageCreate(at: x, vnode: .kvp, offset: 0x2000)    // tombstone 0 twice
        try pm.verify()
        // Neither copy of frame 0 on the stack may be handed out now.
        var got: [PageFrameNumber] = []
        for i in 0..<62 { got.append(try pm.pageCreate(vnode: .zvp, offset: UInt64(i) << 12)) }
        #expect(!got.contains(0) && !got.contains(10))
        #expect(Set(got).count == 62)
        #expect(pm.freelistPages == 0)
        try pm.verify()
    }

    @Test func compactionMergesFreedFramesBackIntoOneRange() throws {
        let pm = try PhysicalMemory(pageCount: 4096)
        let pfns = try pm.pageCreate(vnode: .kvp, offset: 0, pageCount: 4096)
        for pfn in pfns.shuffled() { try pm.pageDestroy(pfn) }
        pm.compactFreeList()
        #expect(pm.freeRanges == [FrameRange(lower: 0, upper: 4096)])
        try pm.verify()
        // After compaction frames again come lowest first.
        #expect(try pm.pageCreate(vnode: .kvp, offset: 0) == 0)
    }

    @Test func contiguousRunsAreAlignedAndComeFromTheFreeList() throws {
        let pm = try PhysicalMemory(pageCount: 2048)
        _ = try pm.pageCreate(vnode: .kvp, offset: 0)              // frame 0 in use
        let run = try pm.pageCreate(vnode: .vvp, offset: 0, pageCount: 512, flags: [.exclusive, .physicallyContiguous])
        #expect(run.first == 512)                                  // 2 MiB aligned
        #expect(run == Array(512 ..< 1024))
        let odd = try pm.pageCreate(vnode: .vvp, offset: 512 << 12, pageCount: 3, flags: .physicallyContiguous)
        #expect(odd.first! % 2 == 0)
        #expect(odd == Array(odd.first! ..< odd.first! + 3))
        #expect(throws: PhysicalMemoryError.noContiguousRun(pageCount: 1025, alignment: 1024)) {
            try pm.pageCreate(vnode: .vvp, offset: 1 << 30, pageCount: 1025, flags: .physicallyContiguous)
        }
        #expect(throws: PhysicalMemoryError.outOfMemory(requested: 1536, available: 1532)) {
            try pm.pageCreate(vnode: .vvp, offset: 1 << 30, pageCount: 1536, flags: .physicallyContiguous)
        }
        let big = try pm.pageCreate(vnode: .vvp, offset: 1 << 31, pageCount: 1024, flags: .physicallyContiguous)
        #expect(big.first == 1024)
        try pm.verify()
    }

    @Test func contiguousRunsFindFramesFreedOntoTheStack() throws {
        let pm = try PhysicalMemory(pageCount: 16)
        let all = try pm.pageCreate(vnode: .kvp, offset: 0, pageCount: 16)
        for pfn in all[8..<16] { try pm.pageDestroy(pfn) }
        let run = try pm.pageCreate(vnode: .zvp, offset: 0, pageCount: 8, flags: .physicallyContiguous)
        #expect(run == Array(8 ..< 16))
        try pm.verify()
    }
}
