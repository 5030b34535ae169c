import Testing
import AddressSpace
import VmemWorkloads

@Suite("Segment tree, as_segat, as_findseg")
struct LookupTests {
    /// Three segments with gaps: [0x10000, 0x20000), [0x30000, 0x40000), [0x50000, 0x60000).
    func threeSegments() throws -> (AddressSpace, [Segment]) {
        let a = try makeKAS()
        let segs = try [0x10000, 0x30000, 0x50000].map { (base: UInt64) in
            try a.attach(base: 0xFFFF_FF00_0000_0000 + base, size: 0x10000, driver: ScriptedDriver())
        }
        return (a, segs)
    }

    @Test func segatFindsTheContainingSegmentAndLeavesTheHintAlone() throws {
        let (a, s) = try threeSegments()
        let k: UInt64 = 0xFFFF_FF00_0000_0000
        #expect(a.lastSegmentHint === s[2])                  // as_addseg set it
        #expect(a.segat(k + 0x10000) === s[0])
        #expect(a.segat(k + 0x1FFFF) === s[0])
        #expect(a.segat(k + 0x20000) == nil)
        #expect(a.segat(k + 0x3ABCD) === s[1])
        #expect(a.segat(k + 0x60000) == nil)
        #expect(a.segat(0) == nil)
        #expect(a.lastSegmentHint === s[2])                  // unchanged
    }

    @Test func findsegTakesTheNextSegmentAboveOrTheTailAndUpdatesTheHint() throws {
        let (a, s) = try threeSegments()
        let k: UInt64 = 0xFFFF_FF00_0000_0000
        #expect(a.findseg(k + 0x10010) === s[0])
        #expect(a.lastSegmentHint === s[0])
        #expect(a.findseg(k + 0x25000) === s[1])              // in a gap: next above
        #expect(a.lastSegmentHint === s[1])
        #expect(a.findseg(k + 0x70000) == nil)                // above everything, no tail
        #expect(a.lastSegmentHint == nil)                     // stored even when nil
        #expect(a.findseg(k + 0x70000, tail: true) === s[2])
        #expect(a.lastSegmentHint === s[2])
        #expect(a.findseg(0, tail: false) === s[0])
    }

    @Test func traversalIsInBaseOrder() throws {
        let (a, s) = try threeSegments()
        #expect(a.segments.map(\.base) == s.map(\.base))
        #expect(a.firstSegment === s[0])
        #expect(a.segment(after: s[0]) === s[1])
        #expect(a.segment(after: s[2]) == nil)
        #expect(a.segment(before: s[1]) === s[0])
        #expect(a.segment(before: s[0]) == nil)
    }

    @Test func aSegmentEndingAtTheTopOfTheAddressSpaceIsFound() throws {
        let a = try makeKAS()
        let top = try a.attach(base: 0xFFFF_FFFF_FFC0_0000, size: 0x40_0000, driver: ScriptedDriver("segkmem_ops"))
        #expect(top.last == UInt64.max)
        #expect(a.segat(UInt64.max) === top)
        #expect(a.segat(0xFFFF_FFFF_FFC0_0000) === top)
        #expect(a.segat(0xFFFF_FFFF_FFBF_FFFF) == nil)
        #expect(a.findseg(0xFFFF_FFFF_FF00_0000) === top)
        #expect(throws: AddressSpaceError.rangeWraps(address: 0xFFFF_FFFF_FFC0_0000, size: 0x80_0000)) {
            try a.attach(base: 0xFFFF_FFFF_FFC0_0000, size: 0x80_0000, driver: ScriptedDriver())
        }
        // as_map's wrap rule refuses a range ending at 2^64; gap sees no room above it.
        #expect(throws: AddressSpaceError.rangeWraps(address: 0xFFFF_FFFF_FFB0_0000, size: 0x50_0000)) {
            try a.map(address: 0xFFFF_FFFF_FFB0_0000, size: 0x50_0000) { _ in .created(ScriptedDriver()) }
        }
        let g = try a.gap(minimumLength: 0x1000, base: 0xFFFF_FFFF_FF00_0000, length: 0xFF_FFFF, direction: .high)
        #expect(g.base == 0xFFFF_FFFF_FF00_0000 && g.length == 0xC0_0000)
        try a.unmapAll()
        #expect(a.segmentCount == 0)
        try a.verify()
    }

    @Test func randomAttachAndUnmapKeepTheTreeBalancedAndCorrect() throws {
        var rng = SplitMix64(seed: 7)
        let a = try makeKAS()
        let base: UInt64 = 0xFFFF_FE00_0000_0000
        var model: [UInt64: UInt64] = [:]               // page slot -> size in slots
        func covering(_ slot: UInt64) -> UInt64? {
            model.first { $0.key <= slot && slot < $0.key + $0.value }?.key
        }
        for step in 0..<3000 {
            let slot = rng.next() % 2000
            if rng.next() % 3 != 0 {
                let n = 1 + rng.next() % 8
                let overlaps = (slot ..< slot + n).contains { covering($0) != nil }
                do {
                    try a.attach(base: base + slot << 16, size: n << 16, driver: ScriptedDriver())
                    #expect(!overlaps)
                    model[slot] = n
                } catch {
                    #expect(overlaps)
                    if case .overlap = error {} else { Issue.record("unexpected \(error)") }
                }
            } else if let start = covering(slot) {
                try a.unmap(address: base + start << 16, size: model[start]! << 16)
                model[start] = nil
            }
            if step % 300 == 0 {
                try a.verify()
                for probe in stride(from: UInt64(0), to: 2010, by: 7) {
                    let want = covering(probe).map { base + $0 << 16 }
                    #expect(a.segat(base + probe << 16 + 0x123)?.base == want)
                }
            }
        }
        try a.verify()
        #expect(a.segmentCount == model.count)
        #expect(a.segments.map(\.base) == model.keys.sorted().map { base + $0 << 16 })
    }
}
