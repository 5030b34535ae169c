import Testing
@testable import KernelLayout

private let GiB: UInt64 = 1 << 30
private let TiB: UInt64 = 1 << 40

/// The post-12608 8x rule at its edges (§1.5), numbers worked out from the formula:
/// shift = P2ROUNDUP(8 × (PMAX − 256 GiB), 512 GiB), segkpm_base = SEGKPM_BASE − shift
/// floored at 0xFFFF810000000000, valloc_base = segkpm_base + P2ROUNDUP(PMAX, 1 GiB).
@Suite("post-12608 large-memory adjustment edges")
struct PostAdjustmentTests {
    @Test("exactly 256 GiB: no adjustment (the test is strict >)")
    func exactlyThreshold() throws {
        let layout = try Layout.compute(model: .post12608, physmem: 256 * GiB)
        #expect(!layout.adjustment.triggered)
        #expect(layout.segkpmBase == 0xFFFF_FD00_0000_0000)
        #expect(layout.vallocBase == 0xFFFF_FE00_0000_0000)
        #expect(layout.kernelbase == 0xFFFF_FC80_0000_0000)
        #expect(layout.isSound)
    }

    @Test("one page above 256 GiB: a whole 512 GiB step")
    func onePageMore() throws {
        let layout = try Layout.compute(model: .post12608, physmem: 256 * GiB + 4096)
        #expect(layout.adjustment.triggered)
        #expect(layout.adjustment.shift == 0x80_0000_0000)
        #expect(layout.segkpmBase == 0xFFFF_FC80_0000_0000)
        #expect(layout.vallocBase == 0xFFFF_FCC0_4000_0000)  // + 257 GiB (1 GiB rounding)
        #expect(layout.kernelbase == 0xFFFF_FC00_0000_0000)
        #expect(layout.userlimit == 0xFFFF_FBFF_FFE0_0000)
        #expect(layout.isSound, "\(layout.checkResults().filter { !$0.ok })")
    }

    @Test("320 GiB: 8 x 64 GiB is exactly one 512 GiB step")
    func threeTwenty() throws {
        let layout = try Layout.compute(model: .post12608, physmem: 320 * GiB)
        #expect(layout.adjustment.shift == 0x80_0000_0000)
        #expect(layout.segkpmBase == 0xFFFF_FC80_0000_0000)
        #expect(layout.vallocBase == 0xFFFF_FCD0_0000_0000)
    }

    @Test("512 GiB + 1 GiB rounds the 2056 GiB shift up to 2560 GiB")
    func fiveTwelveRounding() throws {
        let layout = try Layout.compute(model: .post12608, physmem: 513 * GiB)
        #expect(layout.adjustment.shift == 0x280_0000_0000)
        #expect(layout.segkpmBase == 0xFFFF_FA80_0000_0000)
        #expect(layout.vallocBase == 0xFFFF_FB00_4000_0000)
        #expect(layout.kernelbase == 0xFFFF_FA00_0000_0000)
        #expect(layout.isSound)
    }

    @Test("15.6875 TiB: segkpm_base 512 GiB above the floor puts kernelbase exactly at the VA hole + 1 TiB: sound")
    func lastSound() throws {
        let pmax = 15 * TiB + 11 * TiB / 16
        let layout = try Layout.compute(model: .post12608, physmem: pmax)
        #expect(layout.adjustment.clamp == .none)
        #expect(layout.segkpmBase == 0xFFFF_8180_0000_0000)
        #expect(layout.kernelbase == AMD64.segkpmFloor)
        #expect(layout.isSound, "\(layout.checkResults().filter { !$0.ok })")
        // One page more rounds the shift up by 512 GiB: kernelbase drops below hole + 1 TiB.
        let over = try Layout.compute(model: .post12608, physmem: pmax + 4096)
        #expect(over.adjustment.clamp == .none && over.kernelbase == 0xFFFF_8080_0000_0000)
        #expect(over.failedChecks == LayoutCheckSet([.kernelbaseAboveHole]))
    }

    @Test("15.75 TiB: the shift is exactly SEGKPM_BASE - floor; no clamp yet, but kernelbase is below the hole + 1 TiB")
    func clampPoint() throws {
        let pmax = 15 * TiB + 3 * TiB / 4
        let layout = try Layout.compute(model: .post12608, physmem: pmax)
        #expect(layout.adjustment.shift == 0x7C00_0000_0000)
        #expect(layout.adjustment.candidateSegkpmBase == 0xFFFF_8100_0000_0000)
        #expect(layout.adjustment.clamp == .none)
        #expect(layout.segkpmBase == 0xFFFF_8100_0000_0000)
        #expect(layout.vallocBase == 0xFFFF_90C0_0000_0000)
        #expect(layout.kernelbase == 0xFFFF_8080_0000_0000)
        #expect(layout.failedChecks == LayoutCheckSet([.kernelbaseAboveHole]), "\(layout.checkResults().filter { !$0.ok })")
    }

    @Test("one page above 15.75 TiB: clamped to the floor, reported")
    func clampedOnePageMore() throws {
        let pmax = 15 * TiB + 3 * TiB / 4 + 4096
        let layout = try Layout.compute(model: .post12608, physmem: pmax)
        #expect(layout.adjustment.shift == 0x7C80_0000_0000)
        #expect(layout.adjustment.candidateSegkpmBase == 0xFFFF_8080_0000_0000)
        #expect(layout.adjustment.clamp == .toFloor)
        #expect(layout.segkpmBase == 0xFFFF_8100_0000_0000)
        #expect(layout.vallocBase == 0xFFFF_90C0_4000_0000)
        #expect(layout.failedChecks.contains(.kernelbaseAboveHole))
        #expect(!layout.failedChecks.contains(.segkpmBaseAboveDefault))
    }

    @Test("16 TiB: clamped; the heap can no longer hold 1.5x")
    func sixteenTiB() throws {
        let layout = try Layout.compute(model: .post12608, physmem: 16 * TiB)
        #expect(layout.adjustment.candidateSegkpmBase == 0xFFFF_7F00_0000_0000)
        #expect(layout.segkpmBase == 0xFFFF_8100_0000_0000)
        #expect(layout.vallocBase == 0xFFFF_9100_0000_0000)
        #expect(layout.kernelbase == 0xFFFF_8080_0000_0000)
        #expect(layout.userlimit == 0xFFFF_807F_FFE0_0000)
        #expect(layout.kpmSize == 16 * TiB)
        #expect(layout.failedChecks.contains(.kernelbaseAboveHole))
        #expect(layout.failedChecks.contains(.heapAtLeast1_5xPhysmem))
        #expect(!layout.wrapped)
    }

    @Test("physmax above physmem moves kpm and the adjustment, not segkvmm or segzio")
    func holes() throws {
        let layout = try Layout(LayoutConfiguration(physmem: 254 * GiB, physmax: 258 * GiB))
        #expect(layout.adjustment.triggered)
        #expect(layout.kpmSize == 258 * GiB)
        #expect(layout.segkpmBase == 0xFFFF_FC80_0000_0000)
        #expect(layout.segkvmmSize == 4 * 254 * GiB)
        #expect(layout.segzioSize == 381 * GiB)
        #expect(layout.npages == 254 * GiB / 4096)
    }

    @Test("the shift helper")
    func shiftHelper() {
        #expect(LargeMemoryAdjustment.post12608Shift(physmax: 256 * GiB) == 0)
        #expect(LargeMemoryAdjustment.post12608Shift(physmax: 512 * GiB) == 0x200_0000_0000)
        #expect(LargeMemoryAdjustment.post12608Shift(physmax: UInt64.max / 2) == nil)
    }
}

/// The pre-12608 rule and the hand check of the number (§1.6 table).
@Suite("pre-12608 adjustment (§1.6)")
struct PreAdjustmentTests {
    @Test("the expression -P2ROUNDUP(4K, 512 GiB), row by row", arguments: [
        (0x3_2000_0000, 0xFFFF_FF80_0000_0000),  // 12.5 GiB
        (128 * GiB, 0xFFFF_FF80_0000_0000),
        (256 * GiB, 0xFFFF_FF00_0000_0000),
        (320 * GiB, 0xFFFF_FE80_0000_0000),
        (384 * GiB, 0xFFFF_FE80_0000_0000),
        (512 * GiB, 0xFFFF_FE00_0000_0000),
        (768 * GiB, 0xFFFF_FD00_0000_0000),
        (1 * TiB, 0xFFFF_FC00_0000_0000),
        (2 * TiB, 0xFFFF_F800_0000_0000),
        (64 * TiB, 0xFFFF_0000_0000_0000),  // the DR example: -2^48
    ] as [(UInt64, UInt64)])
    func expression(k: UInt64, raw: UInt64) {
        #expect(LargeMemoryAdjustment.pre12608Candidate(reservation: k) == raw)
    }

    @Test("the page count 0x8000000 fed as bytes also gives 0xFFFFFF8000000000")
    func pageCountAsBytes() {
        #expect(LargeMemoryAdjustment.pre12608Candidate(reservation: 0x800_0000) == 0xFFFF_FF80_0000_0000)
    }

    @Test("defaults below the threshold")
    func defaults() throws {
        let layout = try Layout.compute(model: .pre12608, physmem: 4 * GiB)
        #expect(!layout.adjustment.triggered)
        #expect(layout.segkpmBase == 0xFFFF_FE00_0000_0000)
        #expect(layout.vallocBase == 0xFFFF_FF00_0000_0000)
        #expect(layout.kernelbase == 0xFFFF_FD80_0000_0000)
        #expect(layout.userlimit == 0xFFFF_FD7F_FFE0_0000)
        #expect(layout.vallocSize == 0x7E0_0000)
        #expect(layout.segkpBase == 0xFFFF_FF00_07E0_0000)
        #expect(layout.segkvmmSize == 0)
        #expect(layout.region(.segkvmm) == nil)
        #expect(layout.segzioBase == 0xFFFF_FF00_87E0_0000)
        #expect(layout.segzioSize == 0x1_8000_0000)
        #expect(layout.toxicAddr == 0xFFFF_FF02_07E0_0000)
        #expect(layout.segmapStart == 0xFFFF_FF02_47E0_0000)
        #expect(layout.kernelheap == 0xFFFF_FF02_4BE0_0000)
        #expect(layout.heapSize == 0xFD_7420_0000)
        #expect(layout.isSound)
    }

    @Test("256 GiB: branch not reached")
    func threshold() throws {
        let layout = try Layout.compute(model: .pre12608, physmem: 256 * GiB)
        #expect(!layout.adjustment.triggered)
        #expect(layout.segkpmBase == 0xFFFF_FE00_0000_0000)
        #expect(!layout.failedChecks.contains(.segkpmBaseAboveDefault))
    }

    @Test("257 and 320 GiB: computed above SEGKPM_BASE, clamped, reported")
    func miscalculation() throws {
        for (physmem, raw) in [(257 * GiB, UInt64(0xFFFF_FE80_0000_0000)), (320 * GiB, 0xFFFF_FE80_0000_0000),
                               (384 * GiB, 0xFFFF_FE80_0000_0000)] {
            let layout = try Layout.compute(model: .pre12608, physmem: physmem)
            #expect(layout.adjustment.triggered)
            #expect(layout.adjustment.candidateSegkpmBase == raw)
            #expect(layout.adjustment.clamp == .toDefault)
            #expect(layout.segkpmBase == 0xFFFF_FE00_0000_0000)
            #expect(layout.vallocBase == 0xFFFF_FE00_0000_0000 + physmem)
            #expect(layout.failedChecks.contains(.segkpmBaseAboveDefault))
            #expect(layout.detail(of: .segkpmBaseAboveDefault).contains("0xfffffe8000000000"))
        }
    }

    @Test("512 GiB: exactly SEGKPM_BASE, no extra VA, heap below 1.5x")
    func fiveTwelve() throws {
        let layout = try Layout.compute(model: .pre12608, physmem: 512 * GiB)
        #expect(layout.adjustment.candidateSegkpmBase == 0xFFFF_FE00_0000_0000)
        #expect(layout.adjustment.clamp == .none)
        #expect(layout.segkpmBase == 0xFFFF_FE00_0000_0000)
        #expect(layout.vallocBase == 0xFFFF_FE80_0000_0000)
        #expect(!layout.failedChecks.contains(.segkpmBaseAboveDefault))
        #expect(layout.failedChecks.contains(.heapAtLeast1_5xPhysmem))
    }

    @Test("768 GiB, 1 TiB, 2 TiB: below the default", arguments: [
        (768 * GiB, 0xFFFF_FD00_0000_0000, 0xFFFF_FDC0_0000_0000, 0xFFFF_FC80_0000_0000),
        (1 * TiB, 0xFFFF_FC00_0000_0000, 0xFFFF_FD00_0000_0000, 0xFFFF_FB80_0000_0000),
        (2 * TiB, 0xFFFF_F800_0000_0000, 0xFFFF_FA00_0000_0000, 0xFFFF_F780_0000_0000),
    ] as [(UInt64, UInt64, UInt64, UInt64)])
    func below(physmem: UInt64, segkpm: UInt64, valloc: UInt64, kernelbase: UInt64) throws {
        let layout = try Layout.compute(model: .pre12608, physmem: physmem)
        #expect(layout.segkpmBase == segkpm)
        #expect(layout.vallocBase == valloc)
        #expect(layout.kernelbase == kernelbase)
        #expect(layout.adjustment.clamp == .none)
    }

    @Test("DR example: pabits 46 on a 12.5 GiB machine")
    func drExample() throws {
        let config = LayoutConfiguration(model: .pre12608, physmem: 0x3_2000_0000, drPhysmax: 1 << 46)
        let layout = try Layout(config)
        #expect(layout.adjustment.triggered)
        #expect(layout.adjustment.reservation == 64 * TiB)
        #expect(layout.adjustment.candidateSegkpmBase == 0xFFFF_0000_0000_0000)
        #expect(layout.adjustment.clamp == .toFloor)
        #expect(layout.segkpmBase == 0xFFFF_8100_0000_0000)
        #expect(layout.vallocBase == 0xFFFF_C100_0000_0000)
        #expect(layout.kernelbase == 0xFFFF_8080_0000_0000)
        #expect(layout.kpmSize == 0x4000_0000_0000)
        #expect(layout.failedChecks.contains(.kernelbaseAboveHole))
        #expect(!layout.failedChecks.contains(.kpmBelowValloc))
    }

    @Test("DR maximum above PHYSMEM_MAX64 is capped; post-12608 ignores DR")
    func drCaps() throws {
        let capped = try Layout(LayoutConfiguration(model: .pre12608, physmem: 4 * GiB, drPhysmax: 128 * TiB))
        #expect(capped.notes.contains(.drPhysmaxCapped))
        #expect(capped.kpmSize == 64 * TiB)
        let post = try Layout(LayoutConfiguration(model: .post12608, physmem: 4 * GiB, drPhysmax: 64 * TiB))
        #expect(post.notes.contains(.drPhysmaxIgnored))
        #expect(!post.adjustment.triggered)
        #expect(post.kpmSize == 4 * GiB)
    }
}
