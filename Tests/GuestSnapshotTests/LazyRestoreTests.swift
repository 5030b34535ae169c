import Testing
import GuestMemory
import GuestSnapshot
import HostMemory

/// The words a page of the test pattern holds: distinct per page and word.
func patternWord(page: UInt64, word: UInt64) -> UInt64 { (page &* 0x9E37_79B9_7F4A_7C15) ^ (word &+ 1) }

/// Writes the pattern over guest pages `pages` of `memory` (through the VMM).
func writePattern(_ memory: GuestMemory, pages: some Sequence<UInt64>) throws {
    var buf = [UInt64](repeating: 0, count: 512)
    for p in pages {
        for w in 0 ..< 512 { buf[w] = patternWord(page: p, word: UInt64(w)) }
        try buf.withUnsafeBytes { try memory.write(p * 4096, from: $0) }
    }
}

/// Whether guest page `p` reads as the pattern.
func hasPattern(_ memory: GuestMemory, page p: UInt64) throws -> Bool {
    var buf = [UInt64](repeating: 0, count: 512)
    try buf.withUnsafeMutableBytes { try memory.read(p * 4096, into: $0) }
    return (0 ..< 512).allSatisfy { buf[$0] == patternWord(page: p, word: UInt64($0)) }
}

/// Lazy restore: pages come on first touch, one fault per page touched,
/// not per page of the guest.
@Suite("Lazy restore")
struct LazyRestoreTests {
    /// A 1 GiB guest with 8 MiB written: touching 1 MiB after a lazy restore
    /// serves 256 faults, not 262,144; bytes are the snapshot's; holes read zero.
    @Test func oneGiBGuestTouchingOneMiB() throws {
        try SnapKit.gated {
            try SnapKit.withScratch { dir in
                let gib: UInt64 = 1 << 30
                let g = try GuestMemory(limit: gib)
                try g.allocateSegment(id: 0, length: gib)
                try g.map(gpa: 0, segment: 0, offset: 0, length: gib, protection: .readWrite)
                let written = Array(UInt64(4096) ..< 4096 + 2048)  // 8 MiB from 16 MiB
                try writePattern(g, pages: written)
                let r = try GuestSnapshotter(memory: g).writeFull(to: dir + "/full")
                #expect(r.pagesRecorded == 2048 && r.fileSize > gib)
                #expect(r.allocatedBytes < 16 << 20)
                let chain = try SnapshotChain(paths: [dir + "/full"])
                let m = try chain.newest.makeMemory()
                let lazy = try LazyRestore(chain, into: m)
                #expect(lazy.statistics.faultsServed == 0)
                // The VMM reads 1 MiB of restored pages.
                for p in written.prefix(256) { #expect(try hasPattern(m, page: p)) }
                let s = lazy.statistics
                #expect(s.faultsServed == 256 && s.bytesCopied == 256 * 4096 && s.zeroFills == 0)
                // A hole reads zero, answered with a zero page.
                #expect(try m.read(512 << 20, count: 16) == [UInt8](repeating: 0, count: 16))
                #expect(lazy.statistics.zeroFills == 1)
                // Restored pages are not dirty; a VMM write after the restore is.
                #expect(try m.harvestDirty(0, gib, .get).isEmpty)
                try m.write(written[300] * 4096, [1])
                #expect(try m.harvestDirty(0, gib, .get) == [written[300]])
                #expect(lazy.statistics.faultsServed == 258)
                // finish fetches the rest without faults.
                try lazy.finish()
                let f = lazy.statistics
                #expect(f.prefetched == 2048 - 257 && f.servedTwice == 0)
                #expect(try hasPattern(m, page: written.last!))
                #expect(LazyRestore.active(on: m) == nil)
            }
        }
    }

    /// A caller dropping both the memory and the restore destroys the
    /// memory first: finish then copies nothing of what was never touched.
    @Test func destroyingTheMemoryFirstFetchesNothing() throws {
        try SnapKit.gated {
            try SnapKit.withScratch { dir in
                let g = try GuestMemory(limit: 64 << 20)
                try g.allocateSegment(id: 0, length: 64 << 20)
                try g.map(gpa: 0, segment: 0, offset: 0, length: 64 << 20, protection: .readWrite)
                try writePattern(g, pages: 0 ..< 512)
                try GuestSnapshotter(memory: g).writeFull(to: dir + "/full")
                let chain = try SnapshotChain(paths: [dir + "/full"])
                let m = try chain.newest.makeMemory()
                let lazy = try LazyRestore(chain, into: m)
                #expect(try hasPattern(m, page: 3))
                try m.destroy()
                try lazy.finish()
                let s = lazy.statistics
                #expect(s.faultsServed == 1 && s.prefetched == 0, "\(s)")
                #expect(lazy.isFinished && LazyRestore.active(on: m) == nil)
            }
        }
    }

    /// A full snapshot of a lazily restored memory fetches first: nothing is
    /// missing from it.
    @Test func fullSnapshotOfALazilyRestoredMemory() throws {
        try SnapKit.gated {
            try SnapKit.withScratch { dir in
                let g = try ModelGuest()
                var rng = SnapRNG(seed: 99)
                try g.randomWrites(50, rng: &rng)
                try GuestSnapshotter(memory: g.memory).writeFull(to: dir + "/a")
                let chain = try SnapshotChain(paths: [dir + "/a"])
                let m = try chain.newest.makeMemory()
                let lazy = try LazyRestore(chain, into: m)
                let b = try GuestSnapshotter(memory: m).writeFull(to: dir + "/b")
                #expect(b.pagesRecorded == chain.newest.pagesRecorded)
                #expect(lazy.statistics.prefetched > 0)
                let again = try SnapshotChain(paths: [dir + "/b"])
                let n = try again.newest.makeMemory()
                try again.restore(into: n)
                #expect(try ModelGuest(memory: n, model: g.model).mismatch() == nil)
            }
        }
    }
}
