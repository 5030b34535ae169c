import Testing
@testable import Vmem

/// Issue 17 item 1: every allocation whose arguments were accepted and that
/// returns no address counts once in `failCount`, as illumos counts
/// `vk_fail` — so that a `stats` line matches illumos's kstats.
@Suite struct FailCountTests {
    static let q: UInt64 = 0x1000

    @Test func rangeTooSmallForTheSizeCountsAsAFailure() throws {
        let a = try Arena(name: "fc", base: 0x10_0000, size: 0x10_0000, quantum: Self.q)
        #expect(throws: VmemError.rangeCannotHoldSize(minaddr: 0x18_0000, maxaddr: 0x18_2000, size: 0x3000)) {
            try a.xalloc(0x3000, minaddr: 0x18_0000, maxaddr: 0x18_2000)
        }
        #expect(a.statistics.failCount == 1)
        #expect(throws: VmemError.rangeCannotHoldSize(minaddr: 0x18_0000, maxaddr: 0x18_0000, size: Self.q)) {
            try a.xalloc(Self.q, minaddr: 0x18_0000, maxaddr: 0x18_0000)
        }
        #expect(throws: VmemError.rangeCannotHoldSize(minaddr: 0, maxaddr: 0x2000, size: 0x3000)) {
            try a.xalloc(0x3000, maxaddr: 0x2000)
        }
        #expect(a.statistics.failCount == 3)
        // Argument errors (illumos panics) are not allocation failures.
        #expect(throws: VmemError.phaseNotBelowAlign(phase: 0x2000, align: 0x2000)) {
            try a.xalloc(Self.q, align: 0x2000, phase: 0x2000)
        }
        #expect(throws: VmemError.zeroSize) { try a.alloc(0) }
        #expect(a.statistics.failCount == 3)
        // Nothing else moved: no allocation, nothing in use.
        #expect(a.statistics.allocCount == 0 && a.size(.allocated) == 0)
        try a.verify()
    }

    @Test func traceStatsLineCountsTheRefusedRange() {
        final class Lines: @unchecked Sendable { var text = "" }
        let lines = Lines()
        var r = TraceReplayer { lines.text += $0 + "\n" }
        r.run("""
            create a base=0x100000 size=0x100000 quantum=0x1000
            xalloc a x 0x3000 min=0x180000 max=0x182000
            xalloc a y 0x1000 min=0x400000 max=0x500000
            stats a
            """)
        let out = lines.text
        #expect(out.contains("x fail"))
        #expect(out.contains("y fail"))
        #expect(out.contains("stats a inuse=0 total=1048576 imported=0 allocs=0 frees=0 fails=2"))
    }

    @Test func allocationFromADestroyedArenaCounts() throws {
        let a = try Arena(name: "fc", base: 0x10_0000, size: 0x10_0000, quantum: Self.q, quantumCacheMax: 2 * Self.q)
        a.destroy()
        #expect(throws: VmemError.arenaDestroyed(arena: "fc")) { try a.alloc(0x4000) }
        #expect(throws: VmemError.arenaDestroyed(arena: "fc")) { try a.alloc(0x4000, policy: .bestFit) }
        #expect(throws: VmemError.arenaDestroyed(arena: "fc")) { try a.alloc(0x4000, policy: .nextFit) }
        #expect(throws: VmemError.arenaDestroyed(arena: "fc")) { try a.xalloc(0x4000, align: 0x8000) }
        #expect(throws: VmemError.arenaDestroyed(arena: "fc")) { try a.alloc(Self.q) }   // cached size
        #expect(a.statistics.failCount == 5)
        // A free is not an allocation.
        #expect(throws: VmemError.arenaDestroyed(arena: "fc")) { try a.xfree(0x10_0000, size: 0x4000) }
        #expect(a.statistics.failCount == 5)
    }

    /// A cached allocation that finds no slab fails once, not once per
    /// slab attempt (illumos: the slab's `vmem_xalloc` counts, and nothing else).
    @Test func failedCachedAllocationCountsOnce() throws {
        let a = try Arena(name: "fc", base: 0x10_0000, size: 0x2000, quantum: Self.q, quantumCacheMax: 2 * Self.q)
        // The slab is 8 pages (1 << highbit(3 * 2 pages)): more than the arena has.
        #expect(a.quantumCacheSlabSize == 0x8000)
        #expect(throws: VmemError.exhausted(arena: "fc", size: Self.q)) { try a.alloc(Self.q) }
        #expect(a.statistics.failCount == 1)
        #expect(throws: VmemError.exhausted(arena: "fc", size: 2 * Self.q)) { try a.alloc(2 * Self.q) }
        #expect(a.statistics.failCount == 2)
        #expect(a.quantumCacheStatistics.map(\.allocFailures).reduce(0, +) >= 2)
        try a.verify()
    }

    @Test func everyFailureKindCountsOnce() throws {
        let parent = try Arena(name: "p", base: 0x100_0000, size: 0x4000, quantum: Self.q)
        let child = try Arena(name: "c", quantum: Self.q, source: .arena(parent))
        var expected: UInt64 = 0
        func fails(_ body: () throws -> UInt64) {
            #expect(throws: VmemError.self) { _ = try body() }
            expected += 1
            #expect(child.statistics.failCount == expected)
        }
        fails { try child.alloc(0x8000) }                                  // import failed
        fails { try child.alloc(0x8000, policy: .bestFit) }
        fails { try child.alloc(0x8000, policy: .nextFit) }
        fails { try child.xalloc(Self.q, nocross: 0x10000) }              // constrained: exhausted
        fails { try child.xalloc(0x3000, minaddr: 0x1000, maxaddr: 0x2000) } // range too small
        fails { try child.allocExact(at: 0x200_0000, size: Self.q) }      // nothing there
        fails { try child.alloc(0x8000, wait: .timeout(.milliseconds(1))) }        // timed out
        try child.verify(); try parent.verify()
    }
}
