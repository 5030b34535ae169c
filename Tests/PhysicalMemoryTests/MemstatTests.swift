import Testing
import PhysicalMemory

@Suite("::memstat classification and text")
struct MemstatTests {
    /// The illustrative rendering of address-space.md §3.9, byte for byte.
    @Test func designPageExampleRendersExactly() {
        var s = MemoryStatistics(totalPages: 1_048_576, physmem: 1_048_576)
        s.count(.kernel, pages: 262_144)
        s.count(.zfsFileData, pages: 131_072)
        s.count(.vmmMemory, pages: 196_608)
        s.count(.anon, pages: 65_536)
        s.count(.execAndLibs, pages: 8192)
        s.count(.pageCache, pages: 16_384)
        s.count(.freeCachelist, pages: 32_768)
        #expect(s.freelist == 335_872)
        let expected = """
        Page Summary                Pages                MB  %Tot
        ------------     ----------------  ----------------  ----
        Kernel                     262144              1024   25%
        ZFS File Data              131072               512   13%
        VMM Memory                 196608               768   19%
        Anon                        65536               256    6%
        Exec and libs                8192                32    1%
        Page cache                  16384                64    2%
        Free (cachelist)            32768               128    3%
        Free (freelist)            335872              1312   32%

        Total                     1048576              4096

        """
        #expect(s.rendered() == expected)
    }

    @Test func percentFormulaRoundsHalfUpWhenTotalEqualsPhysmem() {
        let s = MemoryStatistics(totalPages: 1000, physmem: 1000)
        #expect(s.percent(5) == 1)      // 0.5 % -> 1
        #expect(s.percent(4) == 0)      // 0.4 % -> 0
        #expect(s.percent(15) == 2)     // 1.5 % -> 2
        #expect(s.percent(1000) == 100)
        // (5 × total_pages + pages × 1000) / (physmem × 10), literally.
        let t = MemoryStatistics(totalPages: 4_104_612, physmem: 4_171_018)
        #expect(t.percent(733_145) == (5 * 4_104_612 + 733_145 * 1000) / (4_171_018 * 10))
        #expect(t.megabytes(4_171_018) == 16_293)
        #expect(MemoryStatistics(totalPages: 1, physmem: 0).percent(1) == 0)
        // No trap on absurd values.
        let huge = MemoryStatistics(totalPages: .max, physmem: .max)
        #expect(huge.percent(.max) == 100)
    }

    @Test func modelPagesAreClassifiedLikeMemstatCallback() throws {
        let pm = try PhysicalMemory(pageCount: 16_384)
        let swap = try pm.makeVnode(.swapfs, name: "swapfs")
        let exec = try pm.makeVnode(.exec, name: "/lib/libc.so.1")
        let file = try pm.makeVnode(.file, name: "/var/log/messages")
        for _ in 0..<10 { _ = try pm.bootPageAllocate() }
        _ = try pm.pageCreate(vnode: .kvp, offset: 0xFFFF_FE00_0000_0000, pageCount: 4096)
        _ = try pm.pageCreate(vnode: .zvp, offset: 0xFFFF_FD00_0000_0000, pageCount: 2048)
        _ = try pm.pageCreate(vnode: .vvp, offset: 0xFFFF_FC00_0000_0000, pageCount: 3072)
        _ = try pm.pageCreate(vnode: swap, offset: 0, pageCount: 1024)
        _ = try pm.pageCreate(vnode: exec, offset: 0, pageCount: 128)
        let cached = try pm.pageCreate(vnode: file, offset: 0, pageCount: 256 + 512)
        for pfn in cached.suffix(512) { try pm.pageFree(pfn) }
        // A kernel page on the cache list still counts as Kernel (the vnode test comes first).
        let s = pm.memstat()
        #expect(s.kernel == 4096 && s.bootPages == 10 && s.zfsFileData == 2048 && s.vmmMemory == 3072)
        #expect(s.anon == 1024 && s.execAndLibs == 128 && s.pageCache == 256 && s.cachelist == 512)
        #expect(s.total == 11_146)
        #expect(s.freelist == 5238)
        #expect(s.freelist == pm.freelistPages)
        let expected = """
        Page Summary                Pages                MB  %Tot
        ------------     ----------------  ----------------  ----
        Kernel                       4096                16   25%
        Boot pages                     10                 0    0%
        ZFS File Data                2048                 8   13%
        VMM Memory                   3072                12   19%
        Anon                         1024                 4    6%
        Exec and libs                 128                 0    1%
        Page cache                    256                 1    2%
        Free (cachelist)              512                 2    3%
        Free (freelist)              5238                20   32%

        Total                       16384                64

        """
        #expect(s.rendered() == expected)
        try pm.verify()
    }

    @Test func kernelPagesOnTheCacheListCountAsKernel() throws {
        let pm = try PhysicalMemory(pageCount: 16)
        let k = try pm.pageCreate(vnode: .kvp, offset: 0)
        try pm.pageFree(k)
        #expect(try pm.memstatCategory(of: k) == .kernel)
        let s = pm.memstat()
        #expect(s.kernel == 1 && s.cachelist == 0)
    }

    @Test func physicalRowAndBalloonAppearWhenMdbShowsThem() throws {
        let pm = try PhysicalMemory(pageCount: 1000, physmem: 990)
        let swap = try pm.makeVnode(.swapfs, name: "swapfs")
        _ = try pm.pageCreate(vnode: .kvp, offset: 0, pageCount: 5)
        _ = try pm.pageCreate(vnode: swap, offset: 0, pageCount: 4)
        let s = pm.memstat(balloonPages: 0)
        let expected = """
        Page Summary                Pages                MB  %Tot
        ------------     ----------------  ----------------  ----
        Kernel                          5                 0    1%
        Anon                            4                 0    0%
        Exec and libs                   0                 0    0%
        Page cache                      0                 0    0%
        Free (cachelist)                0                 0    0%
        Free (freelist)               981                 3   99%
        Balloon                         0                 0    0%

        Total                         990                 3
        Physical                     1000                 3

        """
        #expect(s.rendered() == expected)
        // Without the bln_stats symbol there is no Balloon row; a balloon
        // larger than the free memory clamps Free (freelist) at 0.
        #expect(!pm.memstat().rendered().contains("Balloon"))
        #expect(pm.memstat(balloonPages: 5000).freelist == 0)
        #expect(pm.memstat(balloonPages: 81).freelist == 900)
    }

    @Test func freelistClampsAtZeroWhenPagesAreDoubleCounted() {
        var s = MemoryStatistics(totalPages: 10, physmem: 10)
        s.count(.kernel, pages: 12)
        #expect(s.freelist == 0)
        #expect(s.rows.map(\.label) == ["Kernel", "Anon", "Exec and libs", "Page cache", "Free (cachelist)", "Free (freelist)"])
    }
}
