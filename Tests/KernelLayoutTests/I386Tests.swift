import Testing
@testable import KernelLayout

private let GiB: UInt64 = 1 << 30

/// The i386 model's own rule (§2.2), with numbers worked out by hand:
/// valloc_sz = R2M(80 n + 4 · 2^highbit(n/4) + 1 MiB); valloc_base =
/// P2ALIGN(0xFE7EB000 − valloc_sz, 2 MiB); kernelbase = 0xD4000000 −
/// ROUND_UP_4MEG(2 · valloc_sz); segmap_start = R2M(kernelbase) + 8 KiB;
/// kernelheap = R2M(segmap_start + 16 MiB − 8 KiB); heap ends 64 MiB below valloc_base.
@Suite("i386 layout")
struct I386Tests {
    struct Expected: Sendable, CustomStringConvertible {
        var physmem: UInt64
        var valloc: UInt64
        var vallocBase: UInt64
        var kernelbase: UInt64
        var kernelheap: UInt64
        var heapSize: UInt64
        var description: String { HumanSize.format(physmem) }
    }

    @Test("the model's rule", arguments: [
        // 1 GiB: n = 0x40000, pp 0x1400000, hash 4 << 17 = 0x80000, + 1 MiB = 0x1580000 -> 0x1600000.
        Expected(physmem: 1 * GiB, valloc: 0x160_0000, vallocBase: 0xFD00_0000, kernelbase: 0xD140_0000,
                 kernelheap: 0xD240_0000, heapSize: 0x26C0_0000),
        // 4 GiB: n = 0x100000, pp 0x5000000, hash 4 << 19 = 0x200000 -> 0x5300000 -> 0x5400000.
        Expected(physmem: 4 * GiB, valloc: 0x540_0000, vallocBase: 0xF920_0000, kernelbase: 0xC980_0000,
                 kernelheap: 0xCA80_0000, heapSize: 0x2AA0_0000),
        // 16 GiB: n = 0x400000, pp 0x14000000, hash 4 << 21 = 0x800000 -> 0x14900000 -> 0x14A00000.
        Expected(physmem: 16 * GiB, valloc: 0x14A0_0000, vallocBase: 0xE9C0_0000, kernelbase: 0xAAC0_0000,
                 kernelheap: 0xABC0_0000, heapSize: 0x3A00_0000),
    ])
    func rule(expected: Expected) throws {
        let layout = try Layout.compute(model: .i386, physmem: expected.physmem)
        #expect(layout.vallocSize == expected.valloc)
        #expect(layout.vallocBase == expected.vallocBase)
        #expect(layout.kernelbase == expected.kernelbase)
        #expect(layout.userlimit == expected.kernelbase)
        #expect(layout.segmapStart == expected.kernelbase + 0x2000)
        #expect(layout.segmapSize == 0xFF_E000)
        #expect(layout.kernelheap == expected.kernelheap)
        #expect(layout.heapEnd == expected.vallocBase - 0x400_0000)
        #expect(layout.heapSize == expected.heapSize)
        #expect(layout.heaptextBase == expected.vallocBase - 0x400_0000)
        #expect(layout.heaptextSize == 0x400_0000)
        #expect(layout.kpmSize == 0 && layout.segkpSize == 0 && layout.segzioSize == 0)
    }

    @Test("the source comment's table is approximate: page_t alone gives a higher kernelbase")
    func commentTable() throws {
        // The comment: 1 GiB -> 0xD1800000, 4 GiB -> 0xCA000000 (2 x page_t only).
        let one = try Layout.compute(model: .i386, physmem: 1 * GiB)
        let four = try Layout.compute(model: .i386, physmem: 4 * GiB)
        #expect(one.kernelbase < 0xD180_0000 && 0xD180_0000 - one.kernelbase <= 0x80_0000)
        #expect(four.kernelbase < 0xCA00_0000 && 0xCA00_0000 - four.kernelbase <= 0x100_0000)
    }

    @Test("kernelbase drops below the ABI minimum from 8 GiB")
    func abiMinimum() throws {
        let six = try Layout.compute(model: .i386, physmem: 6 * GiB)
        #expect(six.isSound)
        let eight = try Layout.compute(model: .i386, physmem: 8 * GiB)
        // n = 0x200000: pp 0xA000000, hash 4 << 20 = 0x400000, +1 MiB -> 0xA500000 -> 0xA600000;
        // 2x = 0x14C00000 (4 MiB multiple); 0xD4000000 - 0x14C00000 = 0xBF400000.
        #expect(eight.kernelbase == 0xBF40_0000)
        // Below KERNELBASE_ABI_MIN the kernel logs a note; the layout is still sound.
        #expect(eight.isSound && eight.notes.contains(.kernelbaseBelowABIMinimum) && !six.notes.contains(.kernelbaseBelowABIMinimum))
        #expect(eight.noteMessages.contains("kernelbase 0xbf400000 is below KERNELBASE_ABI_MIN 0xc0000000: system is not i386 ABI compliant"))
    }

    @Test("physmem is capped at 16 GiB unless overridden; physmax clamps at 64 GiB")
    func caps() throws {
        let capped = try Layout.compute(model: .i386, physmem: 64 * GiB)
        #expect(capped.notes.contains(.physmemCapped))
        #expect(capped.physmem == 16 * GiB)
        #expect(capped.physmax == 64 * GiB)
        #expect(capped.kernelbase == 0xAAC0_0000)

        // 64 GiB uncapped: n = 0x1000000, pp 0x50000000, hash 4 << 23 = 0x2000000, +1 MiB
        // = 0x52100000 -> 0x52200000; valloc_base = P2ALIGN(0xFE7EB000 - 0x52200000) = 0xAC400000;
        // kernelbase = 0xD4000000 - 0xA4400000 = 0x2FC00000.
        let uncapped = try Layout(LayoutConfiguration(model: .i386, physmem: 64 * GiB, capI386Physmem: false))
        #expect(uncapped.vallocSize == 0x5220_0000)
        #expect(uncapped.vallocBase == 0xAC40_0000)
        #expect(uncapped.kernelbase == 0x2FC0_0000)
        #expect(uncapped.kernelheap == 0x30C0_0000)
        #expect(uncapped.heapSize == 0x7780_0000)
        #expect(!uncapped.wrapped)

        let huge = try Layout(LayoutConfiguration(model: .i386, physmem: 128 * GiB, capI386Physmem: false))
        #expect(huge.notes.contains(.physmaxClamped))
        #expect(huge.physmem == 64 * GiB)
        #expect(huge.kernelbase == 0x2FC0_0000)
    }

    @Test("an eeprom kernelbase is large-page aligned and capped; amd64 ignores it")
    func eepromKernelbase() throws {
        let aligned = try Layout(LayoutConfiguration(model: .i386, physmem: 4 * GiB, eepromKernelbase: 0xC012_3456))
        #expect(aligned.kernelbase == 0xC000_0000)
        #expect(aligned.segmapStart == 0xC000_2000)
        let capped = try Layout(LayoutConfiguration(model: .i386, physmem: 4 * GiB, eepromKernelbase: 0xF000_0000))
        #expect(capped.kernelbase == 0xE000_0000)
        #expect(capped.notes.contains(.kernelbaseCapped))
        let amd64 = try Layout(LayoutConfiguration(model: .post12608, physmem: 4 * GiB, eepromKernelbase: 0xC000_0000))
        #expect(amd64.kernelbase == 0xFFFF_FC80_0000_0000)
        #expect(amd64.noteMessages.contains("kernelbase cannot be changed on 64-bit systems"))
    }

    @Test("a kernelbase too high leaves no heap, reported not trapped")
    func noHeap() throws {
        let layout = try Layout(LayoutConfiguration(model: .i386, physmem: 16 * GiB,
                                                    segmapSize: 1 << 30, eepromKernelbase: 0xE000_0000))
        #expect(layout.heapSize == 0)
        #expect(layout.failedChecks.contains(.heapNonempty))
        #expect(layout.failedChecks.contains(.regionsOrderedNoOverlap))
    }

    @Test("valloc that cannot fit in 32 bits wraps: reported")
    func wraps() throws {
        let layout = try Layout(LayoutConfiguration(model: .i386, physmem: 4 * GiB, vallocOther: 8 * GiB))
        #expect(layout.wrapped)
        #expect(layout.failedChecks.contains(.noWrap))
    }

    @Test("regions bottom up; segkp is an arena importing from heap")
    func regionsAndArenas() throws {
        let layout = try Layout.compute(model: .i386, physmem: 4 * GiB)
        #expect(layout.regions.map(\.name.name) ==
                ["segmap", "heap", "heaptext", "valloc", "misc", "kernel_text", "kernel_data", "debugger"])
        // Unwrapped first: `#expect(x?.size == 0)` on an Optional<UInt64>
        // trips the address sanitizer in the runtime (a toolchain false positive).
        let segkp = try #require(layout.arenaSpecs.first { $0.name == "segkp" })
        #expect(segkp.source == "heap")
        #expect(segkp.size == 0)
        #expect(segkp.qcacheMax == 5 * 4096)
        let names = layout.arenaSpecs.map(\.name)
        #expect(!names.contains("heap_core") && !names.contains("device") && !names.contains("kvmm_arena"))
        #expect(layout.applicableChecks == [.regionsOrderedNoOverlap, .aligned2M, .heapNonempty, .noWrap])
    }

    @Test("tunables that i386 does not have are noted")
    func ignoredTunables() throws {
        let layout = try Layout(LayoutConfiguration(model: .i386, physmem: 4 * GiB, segkpSize: 2 * GiB,
                                                    segkvmmSize: 8 * GiB, segzioSize: 8 * GiB, toxicSize: 2 * GiB))
        #expect(layout.notes.isSuperset(of: [.segkpSizeIgnored, .segkvmmSizeIgnored, .segzioSizeIgnored, .toxicSizeIgnored]))
        #expect(layout.noteMessages.count == 4)
    }
}
