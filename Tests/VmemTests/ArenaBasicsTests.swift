import Testing
@testable import Vmem

@Suite struct ArenaBasicsTests {
    @Test func instantFitTakesHeadOfCertainList() throws {
        let a = try Arena(name: "t", base: 0x1000, size: 0x10000, quantum: 0x1000)
        // One span [0x1000, 0x11000): a 64 KiB free segment on list 16.
        #expect(try a.alloc(0x1000) == 0x1000)
        #expect(try a.alloc(0x3000) == 0x2000)
        try a.verify()
        let segs = a.segments()
        #expect(segs.map(\.kind) == [.span, .allocated, .allocated, .free])
        #expect(segs.last!.start == 0x5000 && segs.last!.end == 0x11000)
    }

    @Test func freeCoalescesBothSides() throws {
        let a = try Arena(name: "t", base: 0x1000, size: 0x10000, quantum: 0x1000)
        let x = try a.alloc(0x1000), y = try a.alloc(0x1000), z = try a.alloc(0x1000)
        try a.free(x, size: 0x1000)
        try a.free(z, size: 0x1000)
        try a.free(y, size: 0x1000)
        try a.verify()
        #expect(a.segments().map(\.kind) == [.span, .free])
        #expect(a.size(.allocated) == 0)
        #expect(a.size(.free) == 0x10000)
    }

    @Test func badAndWrongSizeFreesThrow() throws {
        let a = try Arena(name: "t", base: 0x1000, size: 0x10000, quantum: 0x1000)
        let x = try a.alloc(0x2000)
        #expect(throws: VmemError.wrongSize(address: x, size: 0x1000, allocatedSize: 0x2000)) { try a.free(x, size: 0x1000) }
        try a.free(x, size: 0x2000)
        #expect(throws: VmemError.badFree(address: x, size: 0x2000)) { try a.free(x, size: 0x2000) }
        try a.verify()
    }

    @Test func importAndReleaseWholeSpan() throws {
        let parent = try Arena(name: "parent", base: 0x100000, size: 0x1000000, quantum: 0x1000)
        let child = try Arena(name: "child", quantum: 0x1000, source: .arena(parent), minimumImport: 0x10000)
        let x = try child.alloc(0x2000)
        #expect(x == 0x100000)
        #expect(parent.size(.allocated) == 0x10000)
        #expect(child.statistics.memImported == 0x10000)
        try child.verify(); try parent.verify()
        try child.free(x, size: 0x2000)
        #expect(parent.size(.allocated) == 0)
        #expect(child.size(.total) == 0)
        try child.verify(); try parent.verify()
    }

    @Test func nextFitCyclesBeforeReuse() throws {
        let ids = try Arena(name: "pids", base: 1, size: 10, quantum: 1, flags: .identifier)
        var got: [UInt64] = []
        for _ in 0..<5 {
            let p = try ids.alloc(1, policy: .nextFit)
            got.append(p)
            try ids.free(p, size: 1)
        }
        #expect(got == [1, 2, 3, 4, 5])
        try ids.verify()
    }

    /// vmem.md: end allocation "with any policy". Next fit takes the top of
    /// the segment after the rotor and puts the rotor after it, so the free
    /// rest below is used only when the rotor comes round again.
    @Test func nextFitHonoursEnd() throws {
        let a = try Arena(name: "t", base: 0x1000, size: 0x10000, quantum: 0x1000)
        #expect(try a.alloc(0x1000, policy: .nextFit, fromEnd: true) == 0x10000)
        #expect(try a.alloc(0x2000, policy: .nextFit) == 0x1000)          // wrapped round
        #expect(try a.alloc(0x1000, policy: .nextFit, fromEnd: true) == 0xF000)
        #expect(try a.alloc(0x1000, policy: .nextFit) == 0x3000)
        try a.verify()
        // The fallback search (the rotor went round without a fit; the
        // arena imports) places at the end as well.
        let parent = try Arena(name: "p", base: 0x100000, size: 0x100000, quantum: 0x1000)
        let child = try Arena(name: "c", quantum: 0x1000, source: .arena(parent))
        #expect(try child.alloc(0x3000, policy: .nextFit, fromEnd: true) == 0x100000)   // the import is exactly 12K
        #expect(try child.alloc(0x1000, policy: .nextFit) == 0x103000)
        try child.verify(); try parent.verify()
    }

    /// xalloc is the constrained search under every policy: with `next`, as
    /// neither best nor first fit, it starts at the lists whose members all
    /// fit (instant fit's list), as illumos's vmem_xalloc, which ignores
    /// VM_NEXTFIT, does; first fit starts one list lower.
    @Test func xallocWithNextSearchesAsInstantFit() throws {
        func layout() throws -> Arena {
            // Free: 12K at 0x100000 (list 13) and 48K at 0x104000 (list 15).
            let a = try Arena(name: "x", base: 0x100000, size: 0x10000, quantum: 0x1000)
            let head = try a.alloc(0x3000)
            _ = try a.alloc(0x1000)
            try a.free(head, size: 0x3000)
            return a
        }
        for (policy, want) in [(AllocationPolicy.nextFit, UInt64(0x104000)), (.instantFit, 0x104000), (.firstFit, 0x100000)] {
            let a = try layout()
            #expect(try a.xalloc(0x3000, minaddr: 0x1000, policy: policy) == want, "\(policy)")
            let b = try layout()
            #expect(try b.xalloc(0x3000, policy: policy) == want, "\(policy), unconstrained")
            try a.verify(); try b.verify()
        }
    }

    @Test func exhaustionFailsAtOnceWithoutSleep() throws {
        let a = try Arena(name: "t", base: 0x1000, size: 0x2000, quantum: 0x1000)
        _ = try a.alloc(0x2000)
        #expect(throws: VmemError.exhausted(arena: "t", size: 0x1000)) { try a.alloc(0x1000) }
        #expect(a.statistics.failCount == 1)
    }

    @Test func destroyReportsLeaks() throws {
        let a = try Arena(name: "leaky", base: 0x1000, size: 0x10000, quantum: 0x1000)
        _ = try a.alloc(0x3000)
        _ = try a.alloc(0x1000)
        let r = a.destroy()
        #expect(r.leakedBytes == 0x4000 && r.leakedSegments == 2)
        #expect(throws: VmemError.arenaDestroyed(arena: "leaky")) { try a.alloc(0x1000) }
    }

    @Test func xallocConstraints() throws {
        let a = try Arena(name: "t", base: 0x1000, size: 0x100000, quantum: 0x1000)
        let x = try a.xalloc(0x3000, align: 0x4000, phase: 0x1000, nocross: 0x10000)
        #expect(x % 0x4000 == 0x1000)
        #expect(x / 0x10000 == (x + 0x3000 - 1) / 0x10000)
        let y = try a.xalloc(0x1000, minaddr: 0x80000, maxaddr: 0x90000, fromEnd: true)
        #expect(y == 0x8F000)
        let z = try a.allocExact(at: 0x50000, size: 0x2000)
        #expect(z == 0x50000)
        try a.verify()
    }
}

@Suite struct IdentifierAllocatorTests {
    @Test func processIDsCycleBeforeReuse() throws {
        let pids = try IdentifierAllocator(name: "pids", first: 1, count: 5)
        var seen: [UInt64] = []
        for _ in 0..<12 {
            let p = try pids.allocate()
            seen.append(p)
            try pids.free(p)
        }
        #expect(seen == [1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2])
        try pids.arena.verify()
    }

    @Test func exhaustionAndClaim() throws {
        let pids = try IdentifierAllocator(name: "pids", first: 100, count: 3)
        try pids.claim(101)
        #expect(try pids.allocate() == 100)
        #expect(try pids.allocate() == 102)
        #expect(throws: VmemError.exhausted(arena: "pids", size: 1)) { try pids.allocate() }
        try pids.free(101)
        #expect(try pids.allocate() == 101)
        #expect(pids.inUse == 3)
        #expect(throws: VmemError.self) { try pids.claim(100) }
    }
}
