import Testing
@testable import KernelLayout

/// The two worked examples of kernel-layout.md §1.8, every number.
@Suite("post-12608 worked examples (§1.8)")
struct WorkedExampleTests {
    typealias Row = (name: RegionName, base: UInt64, size: UInt64, end: UInt64)

    static func check(_ layout: Layout, _ rows: [Row]) {
        for row in rows {
            let region = layout.region(row.name)
            #expect(region != nil, "missing region \(row.name)")
            #expect(region?.base == row.base, "\(row.name) base \(Hex.upper(region?.base ?? 0)) != \(Hex.upper(row.base))")
            #expect(region?.size == row.size, "\(row.name) size \(Hex.upper(region?.size ?? 0)) != \(Hex.upper(row.size))")
            #expect(region?.end == row.end, "\(row.name) end")
        }
    }

    @Test("physmem 4 GiB")
    func fourGiB() throws {
        let layout = try Layout.compute(model: .post12608, physmem: 4 << 30)
        #expect(layout.npages == 0x100000)
        #expect(!layout.adjustment.triggered)
        #expect(layout.segkpmBase == 0xFFFF_FD00_0000_0000)
        #expect(layout.vallocBase == 0xFFFF_FE00_0000_0000)
        #expect(layout.kernelbase == 0xFFFF_FC80_0000_0000)
        #expect(layout.userlimit == 0xFFFF_FC7F_FFE0_0000)
        #expect(layout.valloc.pageStructs == 0x780_0000)
        #expect(layout.valloc.pageHash == 0x40_0000)
        #expect(layout.vallocSize == 0x7E0_0000)
        #expect(layout.segkpBase == 0xFFFF_FE00_07E0_0000)
        #expect(layout.segkpSize == 0x8000_0000)
        #expect(layout.segkvmmBase == 0xFFFF_FE00_87E0_0000)
        #expect(layout.segkvmmSize == 0x4_0000_0000)
        #expect(layout.segzioBase == 0xFFFF_FE04_87E0_0000)
        #expect(layout.segzioSize == 0x1_8000_0000)
        #expect(layout.toxicAddr == 0xFFFF_FE06_07E0_0000)
        #expect(layout.segmapStart == 0xFFFF_FE06_47E0_0000)
        #expect(layout.kernelheap == 0xFFFF_FE06_4BE0_0000)
        #expect(layout.heapSize == 0x1F9_7420_0000)
        Self.check(layout, [
            (.misc, 0xFFFF_FFFF_FB7E_B000, 0x15000, 0xFFFF_FFFF_FB80_0000),
            (.heaptext, 0xFFFF_FFFF_F77E_B000, 0x400_0000, 0xFFFF_FFFF_FB7E_B000),
            (.heapCore, 0xFFFF_FFFF_C000_0000, 0x377E_B000, 0xFFFF_FFFF_F77E_B000),
            (.heap, 0xFFFF_FE06_4BE0_0000, 0x1F9_7420_0000, 0xFFFF_FFFF_C000_0000),
            (.segmap, 0xFFFF_FE06_47E0_0000, 0x400_0000, 0xFFFF_FE06_4BE0_0000),
            (.device, 0xFFFF_FE06_07E0_0000, 0x4000_0000, 0xFFFF_FE06_47E0_0000),
            (.segzio, 0xFFFF_FE04_87E0_0000, 0x1_8000_0000, 0xFFFF_FE06_07E0_0000),
            (.segkvmm, 0xFFFF_FE00_87E0_0000, 0x4_0000_0000, 0xFFFF_FE04_87E0_0000),
            (.segkp, 0xFFFF_FE00_07E0_0000, 0x8000_0000, 0xFFFF_FE00_87E0_0000),
            (.valloc, 0xFFFF_FE00_0000_0000, 0x7E0_0000, 0xFFFF_FE00_07E0_0000),
            (.segkpm, 0xFFFF_FD00_0000_0000, 0x1_0000_0000, 0xFFFF_FD01_0000_0000),
            (.redzone, 0xFFFF_FC80_0000_0000, 0x80_0000_0000, 0xFFFF_FD00_0000_0000),
            (.kernelText, 0xFFFF_FFFF_FB80_0000, 0x40_0000, 0xFFFF_FFFF_FBC0_0000),
            (.kernelData, 0xFFFF_FFFF_FBC0_0000, 0x3C0_0000, 0xFFFF_FFFF_FF80_0000),
            (.debugger, 0xFFFF_FFFF_FF80_0000, 0x40_0000, 0xFFFF_FFFF_FFC0_0000),
        ])
        // The unused gap between kpm's end and valloc: 1020 GiB.
        #expect(layout.vallocBase - (layout.segkpmBase + layout.kpmSize) == 0xFF_0000_0000)
        #expect(layout.isSound, "\(layout.checkResults().filter { !$0.ok })")
    }

    @Test("physmem 512 GiB")
    func fiveTwelveGiB() throws {
        let layout = try Layout.compute(model: .post12608, physmem: 512 << 30)
        #expect(layout.npages == 0x800_0000)
        #expect(layout.adjustment.triggered)
        #expect(layout.adjustment.shift == 0x200_0000_0000)
        #expect(layout.adjustment.clamp == .none)
        #expect(layout.segkpmBase == 0xFFFF_FB00_0000_0000)
        #expect(layout.vallocBase == 0xFFFF_FB80_0000_0000)
        #expect(layout.kernelbase == 0xFFFF_FA80_0000_0000)
        #expect(layout.userlimit == 0xFFFF_FA7F_FFE0_0000)
        #expect(layout.valloc.pageStructs == 0x3_C000_0000)
        #expect(layout.valloc.pageHash == 0x2000_0000)
        #expect(layout.vallocSize == 0x3_E020_0000)
        #expect(layout.heapSize == 0x1BB_1BE0_0000)
        Self.check(layout, [
            (.misc, 0xFFFF_FFFF_FB7E_B000, 0x15000, 0xFFFF_FFFF_FB80_0000),
            (.heaptext, 0xFFFF_FFFF_F77E_B000, 0x400_0000, 0xFFFF_FFFF_FB7E_B000),
            (.heapCore, 0xFFFF_FFFF_C000_0000, 0x377E_B000, 0xFFFF_FFFF_F77E_B000),
            (.heap, 0xFFFF_FE44_A420_0000, 0x1BB_1BE0_0000, 0xFFFF_FFFF_C000_0000),
            (.segmap, 0xFFFF_FE44_A020_0000, 0x400_0000, 0xFFFF_FE44_A420_0000),
            (.device, 0xFFFF_FE44_6020_0000, 0x4000_0000, 0xFFFF_FE44_A020_0000),
            (.segzio, 0xFFFF_FD84_6020_0000, 0xC0_0000_0000, 0xFFFF_FE44_6020_0000),
            (.segkvmm, 0xFFFF_FB84_6020_0000, 0x200_0000_0000, 0xFFFF_FD84_6020_0000),
            (.segkp, 0xFFFF_FB83_E020_0000, 0x8000_0000, 0xFFFF_FB84_6020_0000),
            (.valloc, 0xFFFF_FB80_0000_0000, 0x3_E020_0000, 0xFFFF_FB83_E020_0000),
            (.segkpm, 0xFFFF_FB00_0000_0000, 0x80_0000_0000, 0xFFFF_FB80_0000_0000),
            (.redzone, 0xFFFF_FA80_0000_0000, 0x80_0000_0000, 0xFFFF_FB00_0000_0000),
        ])
        #expect(layout.isSound, "\(layout.checkResults().filter { !$0.ok })")
    }

    @Test("the core heap is the same in every row")
    func coreHeap() throws {
        for size: UInt64 in [1 << 30, 4 << 30, 512 << 30, 4 << 40] {
            let layout = try Layout.compute(model: .post12608, physmem: size)
            #expect(layout.heapCoreSize == 0x377E_B000)
            #expect(layout.heaptextSize == 0x400_0000)
            #expect(layout.segkpSize == (size >= 2 << 30 ? 0x8000_0000 : size))
            #expect(layout.toxicSize == 0x4000_0000)
            #expect(layout.segmapSize == 0x400_0000)
        }
    }

    @Test("default space between VALLOC_BASE and COREHEAP_BASE is 2 TiB - 1 GiB (post), 1 TiB - 1 GiB (pre)")
    func defaultSpace() {
        #expect(AMD64.coreHeapBase - ModelDefaults.post12608.vallocBase == 0x1FF_C000_0000)
        #expect(AMD64.coreHeapBase - ModelDefaults.pre12608.vallocBase == 0xFF_C000_0000)
        #expect(ModelDefaults.post12608.segkpmBase - AMD64.segkpmFloor == 0x7C00_0000_0000)
    }
}
