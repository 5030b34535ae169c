import Testing
import Foundation
import Synchronization
import GuestMemory

/// Guest writes (touches) and VMM writes racing with harvests that commit
/// or abort: every page written is reported by some committed harvest or is
/// still dirty at the end — none is lost.
@Suite("Nested table: racing touches and harvests")
struct NestedConcurrencyTests {
    final class Done: Sendable { let flag = Atomic<Bool>(false) }
    final class Seen: @unchecked Sendable {
        let lock = Mutex<Set<UInt64>>([])
    }

    @Test(arguments: [NestedTableMode(format: .ept, accessedDirty: .emulated), NestedTableMode(format: .rvi)])
    func noDirtyPageIsLost(mode: NestedTableMode) throws {
        try GuestKit.gated {
            let pages: UInt64 = 256
            let g = try GuestMemory(limit: pages * GuestKit.page, nested: mode)
            defer { try? g.destroy() }
            try g.allocateSegment(id: 0, length: pages * GuestKit.page)
            try g.map(gpa: 0, segment: 0, offset: 0, length: pages * GuestKit.page, protection: .readWrite)
            let done = Done()
            let committed = Seen()
            let guest: @Sendable () -> Void = {
                var rng = GuestRNG(seed: 7)
                for _ in 0..<4000 { _ = try! g.touch(rng.below(pages) * GuestKit.page, write: true) }
            }
            let vmm: @Sendable () -> Void = {
                var rng = GuestRNG(seed: 9)
                for _ in 0..<4000 { try! g.write(rng.below(pages) * GuestKit.page + 8, [1]) }
            }
            let harvester: @Sendable () -> Void = {
                var n = 0
                while !done.flag.load(ordering: .acquiring) || n < 50 {
                    let h = try! g.harvestDirty(0 ..< pages * GuestKit.page)
                    if n % 3 == 2 { h.abort() } else {
                        h.commit()
                        committed.lock.withLock { $0.formUnion(h.pages) }
                    }
                    n += 1
                }
            }
            let writers: @Sendable () -> Void = {
                GuestConcurrencyTests.onThreads([guest, vmm])
                done.flag.store(true, ordering: .releasing)
            }
            GuestConcurrencyTests.onThreads([writers, harvester])
            let final = Set(try g.harvestDirty(0, pages * GuestKit.page, .getAndReset))
            var written = Set<UInt64>()
            var a = GuestRNG(seed: 7), b = GuestRNG(seed: 9)
            for _ in 0..<4000 { written.insert(a.below(pages)); written.insert(b.below(pages)) }
            let reported = committed.lock.withLock { $0 }.union(final)
            #expect(written.isSubset(of: reported), "lost: \(written.subtracting(reported).sorted())")
            #expect(reported.isSubset(of: written))
        }
    }
}
