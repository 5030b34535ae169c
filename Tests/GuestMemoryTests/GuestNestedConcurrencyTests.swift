import Testing
import Synchronization
import GuestMemory

/// The lock-free paths of this round under races (run under the thread
/// sanitizer in CI by the name): page holds taken without the map lock
/// against map changes, and harvests that swap the dirty bitmap's buffer
/// against VMM writes, holds and guest touches on overlapping pages.
@Suite("Holds and swapping harvests racing map changes and writers (GuestNestedConcurrencyTests)")
struct GuestNestedConcurrencyTests {
    final class Counts: Sendable {
        let done = Atomic<Bool>(false)
        let refusedWhileHeld = Atomic<Int>(0)
        let unmaps = Atomic<Int>(0)
        let holds = Atomic<Int>(0)
    }

    /// Two threads hold and release pages of mapping A (lock-free fast
    /// path) while a third maps and unmaps mapping B next to it and tries to
    /// unmap A: every unmap of A while a hold is out is refused and changes
    /// nothing; when the holders stop, A unmaps; every writable hold's page
    /// is dirty.
    @Test func holdsAgainstMapChanges() throws {
        try GuestKit.gated {
            let page = GuestKit.page
            let g = try GuestMemory(limit: 64 * page)
            defer { try? g.destroy() }
            try g.allocateSegment(id: 0, length: 64 * page)
            try g.map(gpa: 0, segment: 0, offset: 0, length: 16 * page, protection: .readWrite)
            let c = Counts()
            let mapper: @Sendable () -> Void = {
                while c.holds.load(ordering: .relaxed) < 40_000 {
                    try! g.map(gpa: 32 * page, segment: 0, offset: 32 * page, length: 8 * page, protection: .read)
                    let h = try! g.hold(33 * page, .read)
                    // A held mapping cannot go.
                    if case .mappingHeld? = GuestKit.error({ () throws(GuestMemoryError) in
                        try g.unmap(gpa: 32 * page, length: 8 * page)
                    }) { c.refusedWhileHeld.add(1, ordering: .relaxed) }
                    h.release()
                    try! g.unmap(gpa: 32 * page, length: 8 * page)
                    c.unmaps.add(1, ordering: .relaxed)
                    // A busy mapping: refused or (between holds) gone — then put back.
                    if GuestKit.error({ () throws(GuestMemoryError) in try g.unmap(gpa: 0, length: 16 * page) }) == nil {
                        try! g.map(gpa: 0, segment: 0, offset: 0, length: 16 * page, protection: .readWrite)
                    }
                }
            }
            // A holder may find A briefly unmapped: retry through the error.
            let tolerant: @Sendable (UInt64) -> Void = { seed in
                var rng = GuestRNG(seed: seed)
                var n = 0
                while n < 20_000 {
                    let p = rng.below(16)
                    guard let h = try? g.hold(p * page, .readWrite) else { continue }
                    h.release()
                    n += 1
                    c.holds.add(1, ordering: .relaxed)
                }
            }
            GuestConcurrencyTests.onThreads([{ tolerant(1) }, { tolerant(2) }, mapper])
            #expect(c.refusedWhileHeld.load(ordering: .relaxed) == c.unmaps.load(ordering: .relaxed))
            #expect(c.unmaps.load(ordering: .relaxed) > 0)
            // Quiet now: A has no holds and goes; every page written through a hold is dirty.
            let dirty = try g.harvestDirty(0, 16 * page, .get)
            #expect(dirty == Array(0..<16), "writable holds released: \(dirty)")
            try g.unmap(gpa: 0, length: 16 * page)
            #expect(g.mappings.isEmpty)
        }
    }

    /// VMM writes, writable holds and guest touches on overlapping pages
    /// while harvests (each swapping the bitmap's buffer out: the range is
    /// the whole segment) commit or abort: every page written is reported
    /// by a committed harvest or still dirty at the end.
    @Test(arguments: [NestedTableMode(format: .ept, accessedDirty: .emulated), NestedTableMode(format: .ept)])
    func swappingHarvestsLoseNothing(mode: NestedTableMode) throws {
        try GuestKit.gated {
            let page = GuestKit.page
            let pages: UInt64 = 512
            let g = try GuestMemory(limit: pages * page, nested: mode)
            defer { try? g.destroy() }
            try g.allocateSegment(id: 0, length: pages * page)
            try g.map(gpa: 0, segment: 0, offset: 0, length: pages * page, protection: .readWrite)
            let c = Counts()
            final class Seen: @unchecked Sendable { var pages = Set<UInt64>() }   // the harvester's only
            let seen = Seen()
            let writer: @Sendable (UInt64, Int) -> Void = { seed, how in
                var rng = GuestRNG(seed: seed)
                for _ in 0..<3000 {
                    let p = rng.below(pages)
                    switch how {
                    case 0: try! g.write(p * page + 16, [7])
                    case 1: try! g.hold(p * page, .readWrite).release()
                    default: try! g.touch(p * page, write: true)
                    }
                }
            }
            let harvester: @Sendable () -> Void = {
                var n = 0
                while !c.done.load(ordering: .acquiring) || n < 30 {
                    let h = try! g.harvestDirty(0 ..< pages * page)
                    if n % 4 == 3 { h.abort() } else {
                        h.commit()
                        seen.pages.formUnion(h.pages)
                    }
                    n += 1
                }
            }
            let writers: @Sendable () -> Void = {
                GuestConcurrencyTests.onThreads([{ writer(11, 0) }, { writer(12, 1) }, { writer(13, 2) }])
                c.done.store(true, ordering: .releasing)
            }
            GuestConcurrencyTests.onThreads([writers, harvester])
            let final = Set(try g.harvestDirty(0, pages * page, .getAndReset))
            var written = Set<UInt64>()
            for (seed, _) in [(UInt64(11), 0), (12, 1), (13, 2)] {
                var rng = GuestRNG(seed: seed)
                for _ in 0..<3000 { written.insert(rng.below(pages)) }
            }
            let reported = seen.pages.union(final)
            #expect(written.isSubset(of: reported), "lost: \(written.subtracting(reported).sorted().prefix(8))")
            #expect(reported.isSubset(of: written))
        }
    }
}
