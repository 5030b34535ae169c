import Testing
@testable import KernelLayout

private let GiB: UInt64 = 1 << 30
private let TiB: UInt64 = 1 << 40

@Suite("layout sweep")
struct SweepTests {
    @Test("pre-12608, 1 GiB .. 16 TiB: the miscalculation is one range of 128 layouts")
    func preMiscalculation() throws {
        let sweep = try LayoutSweep(template: LayoutConfiguration(model: .pre12608, physmem: GiB),
                                    from: GiB, to: 16 * TiB, step: GiB)
        #expect(sweep.count == 16384)
        let result = sweep.run()
        #expect(result.layouts == 16384)
        let above = result.violations.filter { $0.check == .segkpmBaseAboveDefault }
        #expect(above == [SweepViolation(check: .segkpmBaseAboveDefault, from: 0x40_4000_0000, to: 0x60_0000_0000, count: 128)])
        let heap = result.violations.filter { $0.check == .heapAtLeast1_5xPhysmem }
        #expect(!heap.isEmpty)
        // The first shortfall ends at 512 GiB, where 4K is exactly 2 TiB and the rounding leaves no slack.
        #expect(heap.first?.to == 512 * GiB)
        #expect(heap.allSatisfy { $0.to % (128 * GiB) == 0 })
        #expect(Set(result.violations.map(\.check)) == [.segkpmBaseAboveDefault, .heapAtLeast1_5xPhysmem])
        // Ordered by from.
        #expect(result.violations.map(\.from) == result.violations.map(\.from).sorted())
    }

    @Test("post-12608, 1 GiB .. 64 TiB: clean up to the clamp point")
    func postClean() throws {
        let sweep = try LayoutSweep(template: LayoutConfiguration(physmem: GiB), from: GiB, to: 64 * TiB, step: GiB)
        let result = sweep.run()
        #expect(result.layouts == 65536)
        // Unwrapped first: comparing an Optional<UInt64> inside `#expect`
        // trips the address sanitizer in the runtime (a toolchain false positive).
        let firstFailure = try #require(result.violations.map(\.from).min())
        // kernelbase drops below the hole + 1 TiB once segkpm_base is less
        // than 512 GiB above the floor: from 15.6875 TiB + 1 GiB (8x rule).
        #expect(firstFailure == 15 * TiB + 11 * TiB / 16 + GiB)
        let hole = try #require(result.violations.first { $0.check == .kernelbaseAboveHole })
        #expect(hole.to == 64 * TiB)
        #expect(hole.count == 65536 - 16064)
    }

    @Test("grouping: a run is closed by a passing configuration and reopened by a later failure")
    func grouping() throws {
        // 500..520 GiB in 1 GiB steps, pre-12608: fails 508..512, passes 513..., so one run.
        let sweep = try LayoutSweep(template: LayoutConfiguration(model: .pre12608, physmem: GiB),
                                    from: 500 * GiB, to: 640 * GiB, step: GiB)
        let result = sweep.run()
        let heap = result.violations.filter { $0.check == .heapAtLeast1_5xPhysmem }
        #expect(heap == [
            SweepViolation(check: .heapAtLeast1_5xPhysmem, from: 508 * GiB, to: 512 * GiB, count: 5),
            SweepViolation(check: .heapAtLeast1_5xPhysmem, from: 635 * GiB, to: 640 * GiB, count: 6),
        ])
    }

    @Test("a run still open at the end of the range is reported")
    func openAtEnd() throws {
        let sweep = try LayoutSweep(template: LayoutConfiguration(model: .pre12608, physmem: GiB),
                                    from: 300 * GiB, to: 310 * GiB, step: GiB)
        let result = sweep.run()
        #expect(result.violations == [SweepViolation(check: .segkpmBaseAboveDefault, from: 300 * GiB, to: 310 * GiB, count: 11)])
    }

    @Test("steps that do not land on `to` stop before it; one-point sweeps work")
    func steps() throws {
        let uneven = try LayoutSweep(template: LayoutConfiguration(physmem: GiB), from: GiB, to: 10 * GiB, step: 4 * GiB)
        #expect(uneven.count == 3)
        #expect(uneven.run().layouts == 3)
        let one = try LayoutSweep(template: LayoutConfiguration(physmem: GiB), from: GiB, to: GiB, step: GiB)
        #expect(one.run().layouts == 1)
    }

    @Test("progress is reported and ends at the total")
    func progress() throws {
        let sweep = try LayoutSweep(template: LayoutConfiguration(physmem: GiB), from: GiB, to: 1000 * GiB, step: GiB)
        var calls: [UInt64] = []
        _ = sweep.run { done, total in
            #expect(total == 1000)
            calls.append(done)
        }
        #expect(calls.last == 1000)
        #expect(calls.count >= 100 && calls.count <= 101)
        #expect(calls == calls.sorted())
    }

    @Test("JSON shape")
    func json() throws {
        var result = SweepResult(model: .pre12608, layouts: 16384,
                                 violations: [SweepViolation(check: .segkpmBaseAboveDefault, from: 0x40_4000_0000,
                                                             to: 0x60_0000_0000, count: 128)],
                                 seconds: 0.12)
        #expect(result.json() == """
            {"model": "pre-12608", "layouts": 16384, "seconds": 0.12, "violations": [{"check": "segkpm-base-above-default", "from": "0x4040000000", "to": "0x6000000000", "count": 128}]}

            """)
        result.violations = []
        result.seconds = 1.5
        #expect(result.json().contains("\"seconds\": 1.5, \"violations\": []"))
        #expect(result.summary().contains("16384 layouts computed"))
        #expect(result.summary().contains("0 violation ranges"))
    }
}
