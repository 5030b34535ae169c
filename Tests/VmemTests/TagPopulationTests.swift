import Testing
import VmemWorkloads
import Synchronization
import CVmemSupport
#if canImport(Glibc)
import Glibc
#endif
@testable import Vmem

/// Issue 17 item 3: the tag-refill guard records the refilling thread for
/// real on every platform, so a refill whose requests come back to an arena
/// that is being refilled draws on its reserve instead of recursing.
@Suite struct TagPopulationTests {
    static let q: UInt64 = 0x1000

    /// `a` takes its tags from `b` and `b` from `a`: every refill of one
    /// allocates from the other, whose own refill comes back to the first.
    func pair() throws -> (Arena, Arena) {
        let a = try Arena(name: "a", base: 0x1_0000_0000, size: 1 << 32, quantum: Self.q)
        let b = try Arena(name: "b", base: 0x2_0000_0000, size: 1 << 32, quantum: Self.q)
        try a.useTags(from: b)
        try b.useTags(from: a)
        return (a, b)
    }

    @Test func threadTokensAreRealOnEveryPlatform() {
        let mine = cvmem_thread_token()
        #expect(mine != 0)
        #expect(cvmem_thread_token() == mine)
        let other = Atomic<UInt>(0)
        _ = OSThreads.run(1) { _ in other.store(cvmem_thread_token(), ordering: .relaxed) }
        let theirs = other.load(ordering: .relaxed)
        #expect(theirs != 0 && theirs != mine)
        #expect(!TagPopulation.shared.isCurrentThread)
    }

    @Test func twoArenasThatTakeTheirTagsFromEachOther() throws {
        let (a, b) = try pair()
        var live: [(Arena, UInt64)] = []
        var userAllocs = (a: 0 as UInt64, b: 0 as UInt64)
        // Every other segment stays, so each allocation needs a tag of its own.
        for i in 0..<20_000 {
            let arena = i % 3 == 0 ? b : a
            let x = try arena.alloc(Self.q)
            _ = try arena.alloc(Self.q)   // a neighbour kept, so frees cannot coalesce the tags away
            live.append((arena, x))
            if arena === a { userAllocs.a += 2 } else { userAllocs.b += 2 }
        }
        // Both refilled many times, each from the other: the allocations
        // beyond the caller's are the other arena's tag slabs.
        #expect(a.statistics.tagsOwned > 10_000 && b.statistics.tagsOwned > 5_000)
        #expect(a.statistics.allocCount > userAllocs.a && b.statistics.allocCount > userAllocs.b)
        #expect(a.statistics.populateFail == 0 && b.statistics.populateFail == 0)
        try a.verify(); try b.verify()
        for (arena, x) in live { try arena.free(x, size: Self.q) }
        try a.verify(); try b.verify()
    }

    /// Allocates single quanta from `arena` until its reserve is one below
    /// the refill threshold: its next operation refills.
    func drain(_ arena: Arena) throws {
        while arena.statistics.tagsFree >= UInt64(Arena.tagReserve) { _ = try arena.alloc(Self.q) }
        #expect(arena.statistics.tagsFree == UInt64(Arena.tagReserve) - 1)
    }

    /// The refill of `a` runs `b.alloc`, and `b` is low too: as the
    /// populator's request, it must draw on `b`'s reserve rather than refill
    /// `b` (which would run `a.alloc` inside `a`'s own refill), as illumos's
    /// `vmem_is_populator()` makes every arena do inside a populate. `b`
    /// refills on its own next operation.
    @Test func nestedRefillDrawsOnTheReserve() throws {
        let (a, b) = try pair()
        try drain(a)
        try drain(b)
        let aAllocs = a.statistics.allocCount, bAllocs = b.statistics.allocCount
        let aOwned = a.statistics.tagsOwned, bOwned = b.statistics.tagsOwned
        _ = try a.alloc(Self.q)
        // a's refill took one slab from b, from b's reserve; and the caller's allocation.
        #expect(b.statistics.allocCount == bAllocs + 1)
        #expect(a.statistics.allocCount == aAllocs + 1)
        #expect(a.statistics.tagsOwned > aOwned && b.statistics.tagsOwned == bOwned)
        #expect(b.statistics.tagsFree < UInt64(Arena.tagReserve) - 1)
        // Now b refills, from a, with nobody populating.
        _ = try b.alloc(Self.q)
        #expect(a.statistics.allocCount == aAllocs + 2)
        #expect(b.statistics.tagsOwned > bOwned)
        #expect(a.statistics.populateFail == 0 && b.statistics.populateFail == 0)
        try a.verify(); try b.verify()
    }

    /// A thread that finds another one populating waits for it, and counts
    /// `populateWait`.
    @Test func aRefillThatWaitsForThePopulatorCounts() throws {
        let (a, b) = try pair()
        // A populate lock of their own: other tests meanwhile use the shared one.
        let population = TagPopulation()
        a.population = population
        b.population = population
        try drain(a)
        population.lock.lock()   // this thread plays the populator
        let done = Atomic<Bool>(false)
        let started = OSThreads.start(1) { _ in
            _ = try? a.alloc(Self.q)
            done.store(true, ordering: .relaxed)
        }
        // Wait until the worker sleeps on the populate lock (its word turns 2).
        let deadline = monotonicNanoseconds() + 10_000_000_000
        while population.lock.word.pointee.load(ordering: .relaxed) != 2 && monotonicNanoseconds() < deadline { usleep(100) }
        let finishedEarly = done.load(ordering: .relaxed)
        #expect(!finishedEarly)
        population.lock.unlock()
        OSThreads.join(started.threads)
        let finished = done.load(ordering: .relaxed)
        #expect(finished)
        #expect(a.statistics.populateWait == 1)
        try a.verify()
    }
}

/// Two threads per arena of the pair above, allocating and freeing at random:
/// refills race with refills and with nested refills (under the thread
/// sanitizer with the other `ArenaConcurrencyTests`).
@Suite struct TagPopulationArenaConcurrencyTests {
    @Test func fourThreadsOnTwoArenasThatTakeTagsFromEachOther() throws {
        let (a, b) = try TagPopulationTests().pair()
        let failures = Atomic<Int>(0)
        _ = OSThreads.run(4) { t in
            let arena = t % 2 == 0 ? a : b
            var rng = SplitMix64(seed: UInt64(t) &+ 17)
            var live: [(UInt64, UInt64)] = []
            for _ in 0..<20_000 {
                let r = rng.next()
                if live.count > 2_000 || (r % 3 == 0 && !live.isEmpty) {
                    let i = Int(rng.next() % UInt64(live.count))
                    live.swapAt(i, live.count - 1)
                    let (x, s) = live.removeLast()
                    do { try arena.free(x, size: s) } catch { failures.add(1, ordering: .relaxed) }
                } else {
                    let s = (1 + (r >> 8) % 4) * 0x1000
                    do { live.append((try arena.alloc(s), s)) } catch { failures.add(1, ordering: .relaxed) }
                }
            }
            for (x, s) in live { do { try arena.free(x, size: s) } catch { failures.add(1, ordering: .relaxed) } }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
        #expect(a.statistics.populateFail == 0 && b.statistics.populateFail == 0)
        try a.verify(); try b.verify()
    }
}
