import Testing
@testable import KernelLayout

private let GiB: UInt64 = 1 << 30

@Suite("bad input is a typed error naming the value")
struct BadInputTests {
    @Test("zero and sub-page physmem")
    func zeroPhysmem() {
        #expect(throws: LayoutError.zeroSize(name: "physmem", value: 0)) {
            try Layout.compute(model: .post12608, physmem: 0)
        }
        #expect(throws: LayoutError.zeroSize(name: "physmem", value: 4095)) {
            try Layout.compute(model: .i386, physmem: 4095)
        }
    }

    @Test("physmax below physmem")
    func physmaxBelow() {
        #expect(throws: LayoutError.physmaxBelowPhysmem(physmax: GiB, physmem: 2 * GiB)) {
            try Layout(LayoutConfiguration(physmem: 2 * GiB, physmax: GiB))
        }
    }

    @Test("sizes beyond 2^52 are out of range")
    func tooLarge() {
        let limit = LayoutConfiguration.maximumSize
        #expect(throws: LayoutError.outOfRange(name: "physmem", value: limit + 4096, minimum: 4096, maximum: limit)) {
            try Layout.compute(model: .post12608, physmem: limit + 4096)
        }
        #expect(throws: LayoutError.outOfRange(name: "segziosize", value: UInt64.max, minimum: 0, maximum: limit)) {
            try Layout(LayoutConfiguration(physmem: GiB, segzioSize: .max))
        }
        #expect(throws: LayoutError.outOfRange(name: "dr-physmax", value: 1 << 60, minimum: 0, maximum: limit)) {
            try Layout(LayoutConfiguration(model: .pre12608, physmem: GiB, drPhysmax: 1 << 60))
        }
        #expect(throws: LayoutError.outOfRange(name: "kernelbase", value: 1 << 32, minimum: 0, maximum: 0xFFFF_FFFF)) {
            try Layout(LayoutConfiguration(model: .i386, physmem: GiB, eepromKernelbase: 1 << 32))
        }
    }

    @Test("page tunables must be whole pages; toxic_size at least a page")
    func unaligned() {
        #expect(throws: LayoutError.unaligned(name: "segkpsize", value: 0x8000_0001, alignment: 4096)) {
            try Layout(LayoutConfiguration(physmem: GiB, segkpSize: 0x8000_0001))
        }
        #expect(throws: LayoutError.unaligned(name: "segkvmmsize", value: 100, alignment: 4096)) {
            try Layout(LayoutConfiguration(physmem: GiB, segkvmmSize: 100))
        }
        #expect(throws: LayoutError.zeroSize(name: "toxic-size", value: 0)) {
            try Layout(LayoutConfiguration(physmem: GiB, toxicSize: 0))
        }
    }

    @Test("unknown model names")
    func unknownModel() throws {
        #expect(throws: LayoutError.unknownModel("amd64")) { try LayoutModel(parsing: "amd64") }
        #expect(throws: LayoutError.unknownModel("")) { try LayoutModel(parsing: "") }
        #expect(try LayoutModel(parsing: "POST-12608") == .post12608)
        #expect(try LayoutModel(parsing: "i386") == .i386)
        #expect(LayoutError.unknownModel("x").description.contains("post-12608, pre-12608, i386"))
    }

    @Test("unparsable sizes name the parameter")
    func unparsable() throws {
        #expect(throws: LayoutError.unparsableSize(name: "physmem", text: "12x", reason: .unknownUnit(text: "12x", unit: "x"))) {
            try LayoutConfiguration.size("12x", for: "physmem")
        }
        #expect(throws: LayoutError.unparsableSize(name: "physmax", text: "-1G", reason: .negative("-1G"))) {
            try LayoutConfiguration.size("-1G", for: "physmax")
        }
        #expect(try LayoutConfiguration.size("12.5G", for: "physmem") == 0x3_2000_0000)
    }

    @Test("descriptions name the values")
    func descriptions() {
        #expect(LayoutError.physmaxBelowPhysmem(physmax: 0x1000, physmem: 0x2000).description
                == "physmax 0x1000 is below physmem 0x2000")
        #expect(LayoutError.zeroSize(name: "physmem", value: 0).description.contains("physmem 0x0"))
        #expect(LayoutError.unparsableSize(name: "--physmem", text: "4X", reason: .unknownUnit(text: "4X", unit: "X"))
                    .description.contains("'X'"))
    }

    @Test("an out-of-range segkpsize is reset to 2 GiB, as the kernel does")
    func segkpReset() throws {
        for size: UInt64 in [0, 100 << 20, 16 * GiB] {
            let layout = try Layout(LayoutConfiguration(physmem: 8 * GiB, segkpSize: size))
            #expect(layout.segkpSize == 2 * GiB)
            #expect(layout.notes.contains(.segkpSizeReset))
            #expect(layout.noteMessages.contains { $0.contains("segkpsize has been reset to 524288 pages") })
        }
        let small = try Layout(LayoutConfiguration(physmem: 8 * GiB, segkpSize: 300 << 20))
        #expect(small.segkpSize == 300 << 20)
        #expect(small.notes.isEmpty)
        // MIN(size, MAX(200 MiB, physmem)), then R2M.
        let tiny = try Layout(LayoutConfiguration(physmem: 100 << 20, segkpSize: 2 * GiB))
        #expect(tiny.segkpSize == 200 << 20)
    }

    @Test("a layout that would wrap past 2^64 is reported, not trapped")
    func wrapReported() throws {
        let huge = try Layout.compute(model: .post12608, physmem: LayoutConfiguration.maximumSize)
        #expect(huge.wrapped)
        #expect(huge.failedChecks.contains(.noWrap))
        #expect(huge.checkResults().first { $0.check == .noWrap }?.ok == false)
        let tunable = try Layout(LayoutConfiguration(physmem: GiB, segkvmmSize: LayoutConfiguration.maximumSize))
        #expect(tunable.failedChecks.contains(.noWrap))
        let pre = try Layout.compute(model: .pre12608, physmem: LayoutConfiguration.maximumSize)
        #expect(pre.failedChecks.contains(.noWrap))
        // Rendering a wrapped layout must not trap either.
        _ = huge.json(); _ = huge.table(); _ = huge.svg()
    }

    @Test("sweep ranges are validated")
    func sweepErrors() {
        let template = LayoutConfiguration(physmem: GiB)
        #expect(throws: LayoutError.zeroStep) {
            try LayoutSweep(template: template, from: GiB, to: 2 * GiB, step: 0)
        }
        #expect(throws: LayoutError.emptySweep(from: 2 * GiB, to: GiB)) {
            try LayoutSweep(template: template, from: 2 * GiB, to: GiB, step: GiB)
        }
        #expect(throws: LayoutError.zeroSize(name: "physmem", value: 0)) {
            try LayoutSweep(template: template, from: 0, to: GiB, step: GiB)
        }
    }
}
