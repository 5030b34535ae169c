import Testing
import VmemWorkloads
@testable import KernelLayout

private let GiB: UInt64 = 1 << 30
private let TiB: UInt64 = 1 << 40
private let clampPoint: UInt64 = 15 * TiB + 3 * TiB / 4
/// The largest physmax whose segkpm_base stays 512 GiB above the floor, so
/// that kernelbase is at least the VA hole + 1 TiB (the 8x rule: 64 GiB of
/// physmax per 512 GiB of VA below the clamp point).
private let lastSound: UInt64 = clampPoint - 64 * GiB

@Suite("post-12608 invariants over random memory sizes")
struct PropertyTests {
    static func pages(_ bytes: UInt64) -> UInt64 { bytes & ~0xFFF }

    @Test("1 GiB .. 15.6875 TiB (kernelbase at or above the hole + 1 TiB): every check passes, every formula holds")
    func belowClamp() throws {
        var random = SplitMix64(seed: 0x12608)
        for _ in 0..<4000 {
            // Log-uniform sizes so that small and large memories are both covered.
            let exponent = UInt64.random(in: 30...43, using: &random)
            let physmem = Self.pages(min(max(GiB, (UInt64(1) << exponent) + UInt64.random(in: 0..<(UInt64(1) << exponent), using: &random)), lastSound))
            let hole = Bool.random(using: &random) ? Self.pages(UInt64.random(in: 0...(4 * GiB), using: &random)) : 0
            let physmax = min(physmem + hole, lastSound)
            let layout = try Layout(LayoutConfiguration(physmem: physmem, physmax: physmax))
            let failed = layout.failedChecks
            #expect(failed.isEmpty, "physmem \(Hex.lower(physmem)) physmax \(Hex.lower(physmax)): \(layout.checkResults().filter { !$0.ok }.map(\.detail))")
            if !failed.isEmpty { return }

            let p = physmem
            #expect(layout.kernelbase == layout.segkpmBase - AMD64.kernelRedzoneSize)
            #expect(layout.userlimit == layout.kernelbase - 0x20_0000)
            #expect(layout.segkpmBase <= ModelDefaults.post12608.segkpmBase)
            #expect(layout.segkpmBase >= AMD64.segkpmFloor)
            #expect(layout.adjustment.triggered == (physmax > 256 * GiB))
            #expect(layout.vallocBase - layout.segkpmBase >= physmax)
            #expect(layout.kpmSize >= physmax)
            #expect(layout.segkpBase == layout.vallocBase + layout.vallocSize)
            #expect(layout.segkvmmBase == layout.segkpBase + layout.segkpSize)
            #expect(layout.segzioBase == layout.segkvmmBase + layout.segkvmmSize)
            #expect(layout.segkvmmSize >= 4 * p && layout.segkvmmSize >= 4 * GiB)
            #expect(layout.segzioSize >= p + p / 2)
            #expect(layout.segkpSize == min(2 * GiB, (p + 0x1F_FFFF) & ~0x1F_FFFF))
            #expect(layout.heapSize >= p + p / 2)
            #expect(layout.kernelheap + layout.heapSize == AMD64.coreHeapBase)
            // valloc covers a 120-byte page_t per page.
            #expect(layout.vallocSize >= 120 * (p / 4096))
        }
    }

    @Test("1 GiB .. 64 TiB: nothing traps; past the clamp point the clamp is reported")
    func wholeRange() throws {
        var random = SplitMix64(seed: 64)
        for _ in 0..<3000 {
            let physmem = Self.pages(UInt64.random(in: GiB...(64 * TiB), using: &random))
            let layout = try Layout.compute(model: .post12608, physmem: physmem)
            if physmem <= lastSound {
                #expect(layout.isSound, "physmem \(Hex.lower(physmem))")
            } else {
                #expect(layout.failedChecks.contains(.kernelbaseAboveHole), "physmem \(Hex.lower(physmem))")
                #expect(layout.kernelbase < AMD64.segkpmFloor)
                if physmem > clampPoint { #expect(layout.segkpmBase == AMD64.segkpmFloor) }
            }
            // The same physmem through the other models must not trap either.
            _ = try Layout.compute(model: .pre12608, physmem: physmem).failedChecks
            _ = try Layout.compute(model: .i386, physmem: physmem).failedChecks
        }
    }

    @Test("random tunables within range keep segment order")
    func tunables() throws {
        var random = SplitMix64(seed: 6914)
        for _ in 0..<1000 {
            let physmem = Self.pages(UInt64.random(in: GiB...(512 * GiB), using: &random))
            let config = LayoutConfiguration(
                physmem: physmem,
                segkpSize: Self.pages(UInt64.random(in: (100 << 20)...(10 * GiB), using: &random)),
                segkvmmSize: Self.pages(UInt64.random(in: 0...(64 * GiB), using: &random)),
                segzioSize: Self.pages(UInt64.random(in: 0...(64 * GiB), using: &random)),
                segmapSize: UInt64.random(in: 0...(4 * GiB), using: &random),
                toxicSize: Self.pages(UInt64.random(in: 4096...(4 * GiB), using: &random)))
            let layout = try Layout(config)
            #expect(!layout.failedChecks.contains(.regionsOrderedNoOverlap))
            #expect(!layout.failedChecks.contains(.aligned2M))
            #expect(!layout.wrapped)
            #expect(layout.segkpSize >= 200 << 20 || layout.segkpSize == (physmem + 0x1F_FFFF) & ~0x1F_FFFF)
            #expect(layout.segkpSize <= 8 * GiB)
        }
    }
}
