import Testing
import Vmem

/// Hand-computed checks of the reference model itself, so that a wrong
/// expectation in ``ReferenceArena`` is caught before it is blamed on `Arena`.
@Suite struct ReferenceArenaTests {
    typealias R = ReferenceArena

    func arena(_ spans: [(UInt64, UInt64)], quantum: UInt64 = 1, source: R? = nil,
               minimumImport: UInt64 = 0) throws -> R {
        let r = try R(name: "ref", quantum: quantum, source: source, minimumImport: minimumImport)
        for (b, s) in spans { try r.add(base: b, size: s) }
        return r
    }

    func walk(_ r: R) -> [String] { r.walk().map(\.description) }

    func lists(_ r: R) -> [Int: [UInt64]] {
        var out: [Int: [UInt64]] = [:]
        for (i, l) in r.freeLists.enumerated() where !l.isEmpty { out[i] = l.map { r.segs[$0]!.start } }
        return out
    }

    @Test func bitHelpers() {
        #expect(R.highbit(0) == 0)
        #expect(R.highbit(1) == 1)
        #expect(R.highbit(5) == 3)
        #expect(R.highbit(UInt64.max) == 64)
        #expect(R.listIndex(4096) == 12)
        #expect(R.listIndex(4095) == 11)
        #expect(R.listIndex(1 << 63) == 63)
    }

    @Test func newSpanIsOneFreeSegmentAtItsListHead() throws {
        let r = try arena([(0x1000, 0x1000), (0x10000, 0x1800)])
        #expect(walk(r) == ["span 0x1000 0x2000", "free 0x1000 0x2000", "span 0x10000 0x11800", "free 0x10000 0x11800"])
        #expect(lists(r) == [12: [0x10000, 0x1000]])
        #expect(r.freemap == 1 << 12)
        #expect(r.selfCheck() == nil)
    }

    @Test func instantFitSplitsWhenRemainderChangesList() throws {
        let r = try arena([(0x1000, 0x1000)])
        #expect(try r.alloc(0x100) == 0x1000)
        #expect(walk(r) == ["span 0x1000 0x2000", "alloc 0x1000 0x1100", "free 0x1100 0x2000"])
        #expect(lists(r) == [11: [0x1100]])
    }

    @Test func carvingAtStartShrinksInPlaceKeepingListPosition() throws {
        // Both on list 13; A is the tail. A first-fit carve of A's start keeps A at the tail.
        let r = try arena([(0x10000, 0x3000), (0x20000, 0x3000)])
        #expect(lists(r) == [13: [0x20000, 0x10000]])
        #expect(try r.xalloc(0x100, maxaddr: 0x20000, policy: .firstFit) == 0x10000)
        #expect(lists(r) == [13: [0x20000, 0x10100]])
        #expect(try r.alloc(0x100) == 0x20000)        // the head is still B
        #expect(lists(r) == [13: [0x20100, 0x10100]])
    }

    @Test func middleCarvePushesRightThenLeft() throws {
        let r = try arena([(0x10000, 0x10000)])
        #expect(try r.xalloc(0x1000, align: 0x10000, phase: 0x7800) == 0x17800)
        // [0x10000,0x17800) and [0x18800,0x20000) are both 0x7800 bytes: list 14, left at the head.
        #expect(lists(r) == [14: [0x10000, 0x18800]])
        #expect(try r.alloc(0x4000) == 0x10000)
    }

    @Test func carveAtEndOfSegmentLeavesLeftRemainder() throws {
        let r = try arena([(0x10000, 0x10000)])
        #expect(try r.alloc(0x100, fromEnd: true) == 0x1FF00)
        #expect(walk(r) == ["span 0x10000 0x20000", "free 0x10000 0x1ff00", "alloc 0x1ff00 0x20000"])
    }

    @Test func instantFitNonPowerOfTwoSkipsMightFitList() throws {
        let r = try arena([(0x10000, 0x1800), (0x20000, 0x4000)])
        #expect(try r.alloc(0x1100) == 0x20000)       // highbit(0x1100) = 13: list 14, not the 0x1800 on list 12
    }

    @Test func instantFitFallsBackToMightFitList() throws {
        let r = try arena([(0x10000, 0x1800)])
        #expect(try r.alloc(0x1100) == 0x10000)
        #expect(throws: VmemError.exhausted(arena: "ref", size: 0x800)) { try r.alloc(0x800) }  // 0x700 left
    }

    @Test func instantFitPowerOfTwoUsesItsOwnList() throws {
        let r = try arena([(0x10000, 0x1000), (0x20000, 0x4000)])
        #expect(try r.alloc(0x1000) == 0x10000)
        let r2 = try arena([(0x20000, 0x4000), (0x10000, 0x1000)])
        #expect(try r2.alloc(0x1000) == 0x10000)      // list 12 holds exactly 0x1000
    }

    @Test func bestFirstAndInstantChooseDifferently() throws {
        // list 12 = [D 0x1f00, C 0x1200, B 0x1200, A 0x1800] after adding A, B, C, D.
        func make() throws -> R {
            try arena([(0x10000, 0x1800), (0x20000, 0x1200), (0x30000, 0x1200), (0x40000, 0x1f00)])
        }
        #expect(try make().alloc(0x1100, policy: .bestFit) == 0x30000)   // smallest, first among equals
        #expect(try make().alloc(0x1100, policy: .firstFit) == 0x40000)  // head of the might-fit list
        #expect(try make().alloc(0x1100) == 0x40000)                     // instant falls back, takes first fit
    }

    @Test func bestFitSearchesMightFitListInstantDoesNot() throws {
        func make() throws -> R { try arena([(0x10000, 0x1200), (0x20000, 0x2000)]) }
        #expect(try make().alloc(0x1100, policy: .bestFit) == 0x10000)
        #expect(try make().alloc(0x1100, policy: .instantFit) == 0x20000)
        #expect(try make().xalloc(0x1100) == 0x20000)
        #expect(try make().xalloc(0x1100, policy: .firstFit) == 0x10000)
    }

    @Test func alignAndPhase() throws {
        let r = try arena([(0x10000, 0x10000)])
        #expect(try r.xalloc(0x100, align: 0x1000, phase: 0x10) == 0x10010)
        #expect(walk(r) == ["span 0x10000 0x20000", "free 0x10000 0x10010", "alloc 0x10010 0x10110", "free 0x10110 0x20000"])
        #expect(try r.xalloc(0x100, align: 0x1000, phase: 0x10, fromEnd: true) == 0x1F010)
    }

    @Test func nocrossMovesToNextBoundaryAndReappliesPhase() throws {
        let r = try arena([(0x10000, 0x10000)])
        #expect(try r.alloc(0x800) == 0x10000)
        #expect(try r.xalloc(0x900, align: 0x100, phase: 0x80, nocross: 0x1000) == 0x11080)
        let r2 = try arena([(0x10800, 0x10000)])
        #expect(try r2.xalloc(0x1000, nocross: 0x1000) == 0x11000)
    }

    @Test func minMaxClipAndEndAllocationHonoursThem() throws {
        let r = try arena([(0x10000, 0x10000)])
        #expect(try r.xalloc(0x100, minaddr: 0x15000, maxaddr: 0x16000) == 0x15000)
        #expect(try r.xalloc(0x100, minaddr: 0x15000, maxaddr: 0x16000, fromEnd: true) == 0x15F00)
        #expect(r.selfCheck() == nil)
        // The chosen segment is [0x15100, 0x15f00) (the lowest list that fits); its top is used.
        #expect(try r.xalloc(0x200, nocross: 0x1000, fromEnd: true) == 0x15D00)
        let fresh = try arena([(0x10000, 0x10000)])
        // top would be 0x1ef00, which crosses 0x1f000: the highest legal start is 0x1ee00.
        #expect(try fresh.xalloc(0x200, nocross: 0x1000, maxaddr: 0x1F100, fromEnd: true) == 0x1EE00)
    }

    @Test func constrainedRequestThatCannotBeMetFails() throws {
        let r = try arena([(0x10000, 0x1000)])
        #expect(throws: VmemError.exhausted(arena: "ref", size: 0x100)) {
            try r.xalloc(0x100, minaddr: 0x20000, maxaddr: 0x30000)
        }
        #expect(throws: VmemError.exhausted(arena: "ref", size: 0x1000)) {
            try r.xalloc(0x1000, align: 0x20000)
        }
        #expect(r.failCount == 2)
    }

    @Test func freeCoalescesNextThenPreviousAndGoesToListHead() throws {
        let r = try arena([(0x10000, 0x1000), (0x20000, 0x1000)])
        let a = try r.alloc(0x100), b = try r.alloc(0x100), c = try r.alloc(0x100)
        #expect([a, b, c] == [0x20000, 0x20100, 0x20200])
        try r.free(b, size: 0x100)
        #expect(walk(r).suffix(4) == ["alloc 0x20000 0x20100", "free 0x20100 0x20200", "alloc 0x20200 0x20300", "free 0x20300 0x21000"])
        try r.free(c, size: 0x100)   // joins both neighbours
        #expect(walk(r).suffix(3) == ["span 0x20000 0x21000", "alloc 0x20000 0x20100", "free 0x20100 0x21000"])
        try r.free(a, size: 0x100)
        #expect(walk(r).suffix(2) == ["span 0x20000 0x21000", "free 0x20000 0x21000"])
        #expect(lists(r) == [12: [0x20000, 0x10000]])
        #expect(r.selfCheck() == nil)
    }

    @Test func touchingSpansNeverCoalesce() throws {
        let r = try arena([(0x10000, 0x1000), (0x11000, 0x1000)])
        #expect(walk(r) == ["span 0x10000 0x11000", "free 0x10000 0x11000", "span 0x11000 0x12000", "free 0x11000 0x12000"])
        #expect(throws: VmemError.exhausted(arena: "ref", size: 0x2000)) { try r.alloc(0x2000) }
    }

    @Test func badFreesAndOverlaps() throws {
        let r = try arena([(0x10000, 0x1000)], quantum: 0x10)
        let a = try r.alloc(0x100)
        #expect(throws: VmemError.wrongSize(address: a, size: 0x200, allocatedSize: 0x100)) { try r.free(a, size: 0x200) }
        #expect(throws: VmemError.badFree(address: a + 0x10, size: 0x100)) { try r.free(a + 0x10, size: 0x100) }
        try r.free(a, size: 0x100)
        #expect(throws: VmemError.badFree(address: a, size: 0x100)) { try r.free(a, size: 0x100) }
        #expect(throws: VmemError.spanOverlap(base: 0x10800, size: 0x1000, existingStart: 0x10000, existingEnd: 0x11000)) {
            try r.add(base: 0x10800, size: 0x1000)
        }
        #expect(throws: VmemError.overflow(base: UInt64.max - 0xF, size: 0x20)) { try r.add(base: UInt64.max - 0xF, size: 0x20) }
        #expect(throws: VmemError.sizeNotQuantumMultiple(size: 0x18, quantum: 0x10)) { try r.alloc(0x18) }
        #expect(throws: VmemError.overconstrained(size: 0x100, align: 0x100, phase: 0x10, nocross: 0x100)) {
            try r.xalloc(0x100, align: 0x100, phase: 0x10, nocross: 0x100)
        }
        #expect(throws: VmemError.phaseNotBelowAlign(phase: 0x100, align: 0x100)) { try r.xalloc(0x10, align: 0x100, phase: 0x100) }
        #expect(throws: VmemError.rangeCannotHoldSize(minaddr: 0x100, maxaddr: 0x180, size: 0x100)) {
            try r.xalloc(0x100, minaddr: 0x100, maxaddr: 0x180)
        }
    }

    @Test func importRoundsToTheSourceQuantumAndReleasesWhenFree() throws {
        let parent = try arena([(0x100000, 0x100000)], quantum: 0x1000)
        let child = try R(name: "child", quantum: 0x1000, source: parent)
        #expect(try child.alloc(0x3000) == 0x100000)
        #expect(walk(child) == ["span 0x100000 0x103000 imported", "alloc 0x100000 0x103000"])
        #expect(walk(parent) == ["span 0x100000 0x200000", "alloc 0x100000 0x103000", "free 0x103000 0x200000"])
        #expect(child.memImported == 0x3000)
        try child.free(0x100000, size: 0x3000)
        #expect(walk(child).isEmpty)
        #expect(walk(parent) == ["span 0x100000 0x200000", "free 0x100000 0x200000"])
        #expect(child.memImported == 0 && child.memTotal == 0)
    }

    @Test func importWithAlignmentAddsAlignMinusSourceQuantum() throws {
        let parent = try arena([(0x100000, 0x100000)], quantum: 0x1000)
        _ = try parent.alloc(0x1000)
        let child = try R(name: "child", quantum: 0x1000, source: parent)
        // aphase = align - aq = 0x3000, so 0x4000 is imported at 0x101000; 0x104000 is aligned.
        #expect(try child.xalloc(0x1000, align: 0x4000) == 0x104000)
        #expect(walk(child) == ["span 0x101000 0x105000 imported", "free 0x101000 0x104000", "alloc 0x104000 0x105000"])
    }

    @Test func importWithPhaseBelowSourceQuantumAddsAlignMinusQuantum() throws {
        let parent = try arena([(0x100000, 0x100000)], quantum: 0x1000)
        _ = try parent.alloc(0x1000)
        let child = try R(name: "child", quantum: 0x100, source: parent)
        // aq = 0x1000; phase 0x100 is not a multiple: aphase = 0x2000 - 0x100, import 0x2000.
        #expect(try child.xalloc(0x100, align: 0x2000, phase: 0x100) == 0x102100)
        #expect(walk(child) == ["span 0x101000 0x103000 imported", "free 0x101000 0x102100",
                                "alloc 0x102100 0x102200", "free 0x102200 0x103000"])
        // Served from the span: list 11 holds [0x102200, 0x103000); its highest
        // address with phase 0x200 in 0x400 that fits 0x300 is 0x102a00.
        #expect(try child.xalloc(0x300, align: 0x400, phase: 0x200, fromEnd: true) == 0x102A00)
        #expect(child.importCount == 1)
    }

    @Test func minimumImportAndEndAllocationInTheNewSpan() throws {
        let parent = try arena([(0x100000, 0x100000)], quantum: 0x1000)
        let child = try R(name: "child", quantum: 0x1000, source: parent, minimumImport: 0x10000)
        #expect(try child.alloc(0x1000, fromEnd: true) == 0x10F000)
        #expect(walk(child) == ["span 0x100000 0x110000 imported", "free 0x100000 0x10f000", "alloc 0x10f000 0x110000"])
        // The next one is served from the span without importing.
        #expect(try child.alloc(0x2000) == 0x100000)
        #expect(child.importCount == 1)
    }

    @Test func failedImportFailsTheAllocation() throws {
        let parent = try arena([(0x100000, 0x4000)], quantum: 0x1000)
        let child = try R(name: "child", quantum: 0x1000, source: parent)
        #expect(throws: VmemError.importFailed(arena: "child", size: 0x8000)) { try child.alloc(0x8000) }
        #expect(child.failCount == 1 && parent.failCount == 1)
    }

    @Test func constrainedRequestsDoNotImport() throws {
        let parent = try arena([(0x100000, 0x100000)], quantum: 0x1000)
        let child = try R(name: "child", quantum: 0x1000, source: parent)
        #expect(throws: VmemError.exhausted(arena: "child", size: 0x1000)) { try child.xalloc(0x1000, nocross: 0x10000) }
        #expect(throws: VmemError.exhausted(arena: "child", size: 0x1000)) { try child.xalloc(0x1000, minaddr: 0x100000) }
        #expect(walk(parent) == ["span 0x100000 0x200000", "free 0x100000 0x200000"])
    }

    @Test func nextFitCyclesAndTheRotorKeepsFreeNeighboursApart() throws {
        let r = try arena([(1, 99)])
        #expect(try r.alloc(1, policy: .nextFit) == 1)
        #expect(try r.alloc(1, policy: .nextFit) == 2)
        #expect(try r.alloc(1, policy: .nextFit) == 3)
        try r.free(2, size: 1)
        #expect(try r.alloc(1, policy: .nextFit) == 4)
        try r.free(4, size: 1)   // the rotor sits after 4: [4,5) and [5,100) stay apart
        #expect(walk(r) == ["span 0x1 0x64", "alloc 0x1 0x2", "free 0x2 0x3", "alloc 0x3 0x4", "free 0x4 0x5", "free 0x5 0x64"])
        #expect(r.selfCheck() == nil)
        #expect(try r.alloc(1, policy: .nextFit) == 5)
        // Allocating behind the rotor moved it past 5: the free segment [4,5) is still alone.
        #expect(try r.alloc(94, policy: .nextFit) == 6)
        // Full circle: nothing after the rotor; the walk wraps to [2,3).
        #expect(try r.alloc(1, policy: .nextFit) == 2)
        #expect(try r.alloc(1, policy: .nextFit) == 4)
        #expect(throws: VmemError.exhausted(arena: "ref", size: 1)) { try r.alloc(1, policy: .nextFit) }
        #expect(r.selfCheck() == nil)
    }

    @Test func exactAllocation() throws {
        let r = try arena([(0x10000, 0x10000)], quantum: 0x100)
        #expect(try r.allocExact(at: 0x15000, size: 0x300) == 0x15000)
        #expect(throws: VmemError.exhausted(arena: "ref", size: 0x100)) { try r.allocExact(at: 0x15200, size: 0x100) }
        #expect(try r.allocExact(at: 0x15300, size: 0x100) == 0x15300)
        #expect(walk(r) == ["span 0x10000 0x20000", "free 0x10000 0x15000", "alloc 0x15000 0x15300",
                            "alloc 0x15300 0x15400", "free 0x15400 0x20000"])
    }

    /// lowestFit / highestFit against brute force on small numbers.
    @Test func placementMatchesBruteForce() {
        var rng = ModelRNG(seed: 7)
        for _ in 0..<3000 {
            let align: UInt64 = 1 << (rng.next() % 4)
            let phase = rng.next() % align
            let size = 1 + rng.next() % 12
            var nocross: UInt64 = rng.next() % 2 == 0 ? 0 : 1 << (rng.next() % 5)
            if nocross != 0, nocross < align || R.roundUp(phase + size, align)! > nocross { nocross = 0 }
            let lo = rng.next() % 40, hi = lo + rng.next() % 40
            let fits = (lo..<max(lo, hi)).filter { a in
                a % align == phase && a + size <= hi && (nocross == 0 || a / nocross == (a + size - 1) / nocross)
            }
            let low = R.lowestFit(lo: lo, hi: hi, size: size, align: align, phase: phase, nocross: nocross)
            let high = R.highestFit(lo: lo, hi: hi, size: size, align: align, phase: phase, nocross: nocross)
            #expect(high == fits.last, "lo \(lo) hi \(hi) size \(size) align \(align) phase \(phase) nocross \(nocross)")
            // The search's rule (one nocross step) may miss a later fit only when the first
            // boundary step overshoots; with size <= nocross it never does.
            #expect(low == fits.first, "lo \(lo) hi \(hi) size \(size) align \(align) phase \(phase) nocross \(nocross)")
        }
    }

    @Test func placementAtTheTopOfTheAddressSpaceDoesNotWrap() {
        let top = UInt64.max - 0xFFF     // last page start
        #expect(R.lowestFit(lo: top, hi: UInt64.max, size: 0x7FF, align: 0x1000, phase: 0x800, nocross: 0) == top + 0x800)
        #expect(R.lowestFit(lo: top, hi: UInt64.max, size: 0x800, align: 0x1000, phase: 0x800, nocross: 0) == nil)
        #expect(R.lowestFit(lo: top + 1, hi: UInt64.max, size: 0x10, align: 1 << 63, phase: 0, nocross: 0) == nil)
        #expect(R.highestFit(lo: 0, hi: 0x10, size: 0x20, align: 1, phase: 0, nocross: 0) == nil)
    }
}
