import Testing
import Synchronization
import Vmem
import VmemWorkloads

/// The live worker loops behind the turn-about run and the Benchmarks/
/// package: commands run where they should, and stopping leaves nothing.
@Suite struct WorkloadWorkersTests {
    @Test func commandsRunOnTheActiveWorkersAndStopFreesEverything() throws {
        let arena = try StandardWorkload.instant.makeArena()
        defer { arena.destroy() }
        let workers = try WorkloadWorkers(arenas: [arena, arena], workload: .instant, warmup: 200)
        #expect(workers.count == 2)
        let filled = arena.statistics.allocCount
        #expect(filled == 2 * UInt64(StandardWorkload.liveSlots) + 400, "two fills and two warm-ups")

        #expect(try workers.run(1_000) > 0)
        #expect(arena.statistics.allocCount == filled + 2_000, "both workers ran 1,000 pairs")
        _ = try workers.run(500, active: 1)
        #expect(arena.statistics.allocCount == filled + 2_500, "only worker 0 ran")
        _ = try workers.run(10, active: 99)          // clamped to the workers there are
        #expect(arena.statistics.allocCount == filled + 2_520)
        _ = try workers.run(0)
        #expect(arena.statistics.allocCount == filled + 2_520)
        try arena.verify()

        let seen = Atomic<Int>(0)
        workers.stop { _, loop in seen.add(loop.slots.count, ordering: .relaxed) }
        #expect(seen.load(ordering: .relaxed) == 2 * StandardWorkload.liveSlots,
                "every worker read its full loop before any loop was freed")
        #expect(arena.size(.allocated) == 0, "stopping freed every allocation")
        try arena.verify()

        workers.stop()                                // a second stop does nothing
        #expect(throws: VmemError.self) { try workers.run(10) }
    }

    @Test func noArenasIsAnErrorNotATrap() {
        #expect(throws: VmemError.self) { _ = try WorkloadWorkers(arenas: [], workload: .small, warmup: 0) }
    }

    /// A loop that cannot fill (an arena too small for the workload) is an
    /// error of the constructor, and the workers it started are stopped.
    @Test func aLoopThatCannotFillIsAnError() throws {
        let tiny = try Arena(name: "tiny", base: 0x1000, size: 64 * 4096, quantum: 4096)
        defer { tiny.destroy() }
        #expect(throws: VmemError.self) {
            _ = try WorkloadWorkers(arenas: [tiny, tiny], workload: .instant, warmup: 10)
        }
        try tiny.verify()
    }
}
