import Testing
import Vmem
import VmemWorkloads

/// The benchmark harness of vmem.md §6, run small: its bookkeeping must hold
/// whatever the timings are.
@Suite struct WorkloadRunnerTests {
    @Test(arguments: [StandardWorkload.instant, .best, .small, .smallNoCache])
    func singleThreadRunsReportTheirShape(_ w: StandardWorkload) throws {
        let r = try WorkloadRunner.run(w, ops: 2_000, warmup: 500)
        #expect(r.workload == w.rawValue && r.threads == 1 && r.opsTimed == 2_000)
        #expect(r.nsPerPair > 0 && r.opsPerSecond > 0)
        #expect(r.highWaterRatio >= 1, "the span in use cannot be smaller than the bytes in use")
        // Tags alone are 32 bytes a segment. The target of 64 is for the
        // full benchmark's steady state (reported in the README); this short
        // run only has to give a sane count.
        #expect(r.metadataBytesPerSegment >= 32 && r.metadataBytesPerSegment <= 128)
        #expect(r.json.hasPrefix("{\"workload\": \"\(w.rawValue)\", \"threads\": 1, \"opsTimed\": 2000, \"nsPerPair\": "))
    }

    @Test(arguments: [false, true])
    func twoThreadsOnOneArenaOrOneEach(_ perThread: Bool) throws {
        let r = try WorkloadRunner.run(.threads, threads: 2, ops: 2_000, warmup: 500,
                                       debugging: ArenaDebugging(checkCachedFrees: !perThread),
                                       arenaPerThread: perThread)
        #expect(r.threads == 2 && r.opsTimed == 4_000)
        #expect(r.arenaPerThread == perThread && r.checkedCacheFrees == !perThread)
        #expect(r.highWaterRatio >= 1)
        #expect(r.json.contains("\"arenaPerThread\": \(perThread)"))
        // Slab sharing is measured on one shared arena only.
        if perThread {
            #expect(r.sharedSlabFraction == nil && r.json.hasSuffix("\"sharedSlabs\": null}"))
        } else {
            let shared = try #require(r.sharedSlabFraction)
            #expect(shared >= 0 && shared <= 1)
        }
    }

    /// The sharing figure counts slabs that hold live objects of more than
    /// one thread, once each.
    @Test func sharedSlabFraction() {
        #expect(WorkloadRunner.sharedFraction([[1, 2, 2], [2, 3], [4]]) == 0.25)
        #expect(WorkloadRunner.sharedFraction([[1, 1], [2]]) == 0)
        #expect(WorkloadRunner.sharedFraction([[5], [5], [5]]) == 1)
        #expect(WorkloadRunner.sharedFraction([[], []]) == nil)
    }

    /// The `threads` workload's one-thread case runs on a pinned worker too.
    @Test func oneThreadOfTheThreadsWorkload() throws {
        let r = try WorkloadRunner.run(.threads, threads: 1, ops: 1_000, warmup: 100)
        #expect(r.threads == 1 && r.opsTimed == 1_000 && r.arenaPerThread == false)
    }

    /// The loop looks its victims up ahead of time; it must still make the
    /// draws of vmem.md §6 in their order: victim, then size, pair by pair.
    @Test(arguments: [StandardWorkload.instant, .small], [1, 3, 4, 5, 997])
    func loopMakesTheDrawsInTheSpecifiedOrder(_ w: StandardWorkload, _ count: Int) throws {
        // On one CPU: `small`'s per-CPU magazines would otherwise hand out
        // different objects to the two runs whenever the thread migrates.
        try OSThreads.onCPU(0) { try drawOrder(w, count) }
    }

    func drawOrder(_ w: StandardWorkload, _ count: Int) throws {
        let arena = try w.makeArena(), reference = try w.makeArena()
        defer { arena.destroy(); reference.destroy() }
        var loop = try WorkloadLoop(arena: arena, workload: w)
        try loop.run(count)

        var rng = SplitMix64(seed: 42)
        var slots: [WorkloadSlot] = []
        for _ in 0..<StandardWorkload.liveSlots {
            let s = (1 + rng.next() % w.k) * StandardWorkload.quantum
            slots.append(WorkloadSlot(address: try reference.alloc(s, policy: w.policy), size: s))
        }
        for _ in 0..<count {
            let victim = Int(rng.next() % UInt64(slots.count))
            let s = (1 + rng.next() % w.k) * StandardWorkload.quantum
            try reference.free(slots[victim].address, size: slots[victim].size)
            slots[victim] = WorkloadSlot(address: try reference.alloc(s, policy: w.policy), size: s)
        }
        #expect(loop.rng.state == rng.state)
        #expect(loop.slots.map(\.address) == slots.map(\.address))
        #expect(loop.slots.map(\.size) == slots.map(\.size))
    }
}
