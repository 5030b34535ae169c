import Testing
import Dispatch
import GuestMemory
import GuestSnapshot
import HostMemory

/// Several threads touch a lazily restored memory at once, in different
/// orders and through an alias: each page is filled exactly once (the
/// kernel's fill is atomic; racing faults are answered with a wake), and
/// every byte is the snapshot's. Run under the thread sanitizer in CI.
@Suite("SnapshotConcurrencyTests: racing first touches")
struct SnapshotConcurrencyTests {
    @Test(arguments: [1, 2])
    func racingTouchesServeEachPageOnce(handlerThreads: Int) throws {
        try SnapKit.gated {
            try SnapKit.withScratch { dir in
                let pages: UInt64 = 2048  // 8 MiB
                let g = try GuestMemory(limit: 64 << 20)
                try g.allocateSegment(id: 0, length: pages * 4096)
                try g.map(gpa: 0, segment: 0, offset: 0, length: pages * 4096, protection: .readWrite)
                // The second half is also at 32 MiB.
                try g.map(gpa: 32 << 20, segment: 0, offset: pages * 2048, length: pages * 2048, protection: .readWrite)
                try writePattern(g, pages: stride(from: 0, to: pages, by: 2))
                try GuestSnapshotter(memory: g).writeFull(to: dir + "/full")
                let chain = try SnapshotChain(paths: [dir + "/full"])
                let m = try chain.newest.makeMemory()
                let lazy = try LazyRestore(chain, into: m, handlerThreads: handlerThreads)
                let bad = Counter()
                DispatchQueue.concurrentPerform(iterations: 4) { t in
                    var rng = SnapRNG(seed: UInt64(t) + 1)
                    for i in 0 ..< pages {
                        let p: UInt64 = switch t {
                        case 0: i
                        case 1: pages - 1 - i
                        default: rng.below(pages)
                        }
                        // Thread 3 goes through the alias for the second half.
                        let gpa = t == 3 && p >= pages / 2 ? (32 << 20) + (p - pages / 2) * 4096 : p * 4096
                        let word = (try? m.load(UInt64.self, at: gpa + 8 * (p % 512))) ?? 1
                        let want = p % 2 == 0 ? patternWord(page: p, word: p % 512) : 0
                        if word != want { bad.add() }
                    }
                }
                let s = lazy.statistics
                #expect(bad.value == 0)
                #expect(s.servedTwice == 0 && s.refused == 0)
                // Threads 0 and 1 touch every page: each served once, copies for the pattern, zeros for the rest.
                #expect(s.faultsServed == pages)
                #expect(s.bytesCopied == pages / 2 * 4096 && s.zeroFills == pages / 2)
                try lazy.finish()
                #expect(lazy.statistics.prefetched == 0)
            }
        }
    }
}

final class Counter: @unchecked Sendable {
    private let lock = HostLock()
    private var n = 0
    func add(_ k: Int = 1) { lock.withLock { n += k } }
    var value: Int { lock.withLock { n } }
}
