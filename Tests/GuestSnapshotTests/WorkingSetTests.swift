import Foundation
import Testing
import GuestMemory
import GuestSnapshot
import HostMemory
import Dispatch

/// Working sets: a lazy restore records the pages faults fill, in order; the
/// next restore of the snapshot prefetches them, so the same touches fault
/// no more; the file round-trips and refuses damage by name.
@Suite("Working-set prefetch")
struct WorkingSetTests {
    /// A 64 MiB guest with pages written in two segments, snapshotted.
    static func snapshot(_ dir: String) throws -> SnapshotChain {
        let g = try GuestMemory(limit: 1 << 30)
        try g.allocateSegment(id: 0, length: 64 << 20)
        try g.allocateSegment(id: 3, length: 8 << 20)
        try g.map(gpa: 0, segment: 0, offset: 0, length: 64 << 20, protection: .readWrite)
        try g.map(gpa: 256 << 20, segment: 3, offset: 0, length: 8 << 20, protection: .readWrite)
        try writePattern(g, pages: 0 ..< 4096)                          // all of segment 0 but the top half
        try writePattern(g, pages: (256 << 8) ..< (256 << 8) + 16)        // 16 pages of segment 3
        _ = try GuestSnapshotter(memory: g).writeFull(to: dir + "/full")
        return try SnapshotChain(paths: [dir + "/full"])
    }

    /// Guest pages touched after the restore, in this order: scattered,
    /// a run, one in segment 3, and a hole (a zero page).
    static let touches: [UInt64] = [77, 3000, 5, 6, 7, 8, 9, (256 << 8) + 2, 12_000, 1234]

    @Test func recordedThenReplayed() throws {
        try SnapKit.gated {
            try SnapKit.withScratch { dir in
                let chain = try Self.snapshot(dir)
                // First restore: every touch faults, and the set is the touches in order.
                let (m1, lazy1) = try LazyRestore.intoNewMemory(chain)
                for p in Self.touches { _ = try m1.read(p * 4096, count: 8) }
                #expect(lazy1.statistics.faultsServed == UInt64(Self.touches.count))
                let ws = lazy1.workingSet
                #expect(ws.snapshot == chain.newest.id)
                let expected = Self.touches.map { p in
                    p >= 256 << 8 ? WorkingSet.Page(segment: 3, page: p - (256 << 8)) : WorkingSet.Page(segment: 0, page: p)
                }
                #expect(ws.pages == expected)
                try ws.write(to: dir + "/ws")
                #expect(try WorkingSet(contentsOf: dir + "/ws") == ws)
                try lazy1.finish()
                // fetchAll's pages are not touches.
                #expect(lazy1.workingSet.pages == expected)

                // Second restore: prefetch, then the same touches fault nothing.
                let (m2, lazy2) = try LazyRestore.intoNewMemory(chain)
                let filled = try lazy2.prefetch(try WorkingSet(contentsOf: dir + "/ws"))
                #expect(filled == UInt64(Self.touches.count))
                for p in Self.touches where p < 4096 || (p >= 256 << 8 && p < (256 << 8) + 16) {
                    #expect(try hasPattern(m2, page: p), "page \(p)")
                }
                #expect(try m2.read(12_000 * 4096, count: 4096) == [UInt8](repeating: 0, count: 4096))
                let s = lazy2.statistics
                #expect(s.faultsServed == 0 && s.prefetched == UInt64(Self.touches.count) && s.servedTwice == 0)
                // A second prefetch of the same set has nothing left to do.
                #expect(try lazy2.prefetch(ws) == 0)
                // Restored pages are not dirty, prefetched or not.
                #expect(try m2.harvestDirty(0, 1 << 30, .get).isEmpty)
                #expect(lazy2.workingSet.pages.isEmpty)
                try lazy2.finish()
                #expect(try hasPattern(m2, page: 4095))
            }
        }
    }

    /// A prefetch racing the VMM's touches on other threads: every page
    /// is filled once (by one or the other), every byte is the snapshot's.
    @Test func prefetchRacesTouches() throws {
        try SnapKit.gated {
            try SnapKit.withScratch { dir in
                let chain = try Self.snapshot(dir)
                let pages = (0 ..< 2048).map { WorkingSet.Page(segment: 0, page: UInt64($0 * 2)) }
                let ws = WorkingSet(snapshot: chain.newest.id, pages: pages)
                for round in 0 ..< 3 {
                    let (m, lazy) = try LazyRestore.intoNewMemory(chain)
                    // Two threads touch pages of the set at random while the third prefetches it.
                    let wrong = Counter(), filled = Counter(), failed = Counter()
                    DispatchQueue.concurrentPerform(iterations: 3) { t in
                        if t == 2 {
                            if let n = try? lazy.prefetch(ws) { filled.add(Int(n)) } else { failed.add() }
                            return
                        }
                        var rng = SnapRNG(seed: UInt64(round * 10 + t))
                        for _ in 0 ..< 600 where (try? hasPattern(m, page: rng.below(2048) * 2)) != true { wrong.add() }
                    }
                    #expect(wrong.value == 0 && failed.value == 0)
                    let s = lazy.statistics
                    #expect(s.servedTwice == 0 && s.refused == 0)
                    // Each page of the set filled once, by the prefetch or by a touch's fault.
                    #expect(UInt64(filled.value) == s.prefetched && s.prefetched + s.faultsServed == 2048, "\(filled.value), \(s)")
                    for p in pages { #expect(try hasPattern(m, page: p.page)) }
                    try lazy.finish()
                }
            }
        }
    }

    /// A restore that prefetched a set records only what the prefetch
    /// missed; merging keeps the set whole, in order, without repeats.
    @Test func mergingKeepsTheSetWhole() throws {
        try SnapKit.gated {
            try SnapKit.withScratch { dir in
                let chain = try Self.snapshot(dir)
                let id = chain.newest.id
                let old = WorkingSet(snapshot: id, pages: [5, 6, 7].map { .init(segment: 0, page: $0) })
                let (m, lazy) = try LazyRestore.intoNewMemory(chain)
                #expect(try lazy.prefetch(old) == 3)
                for p: UInt64 in [6, 40, 5, 41] { _ = try m.read(p * 4096, count: 1) }
                #expect(lazy.workingSet.pages == [40, 41].map { .init(segment: 0, page: $0) })
                let merged = old.merging(lazy.workingSet)
                #expect(merged.snapshot == id)
                #expect(merged.pages == [5, 6, 7, 40, 41].map { .init(segment: 0, page: $0) })
                #expect(merged.merging(old) == merged)
                try lazy.finish()
            }
        }
    }

    /// A set from another snapshot, or naming what the memory lacks, fills nothing.
    @Test func mismatchesAreRefusedBeforeAnyFill() throws {
        try SnapKit.gated {
            try SnapKit.withScratch { dir in
                let chain = try Self.snapshot(dir)
                let (_, lazy) = try LazyRestore.intoNewMemory(chain)
                let other = WorkingSet(snapshot: SnapshotID(high: 1, low: 2), pages: [.init(segment: 0, page: 1)])
                guard case .workingSetMismatch(let id, let reason)? = SnapKit.error({ try lazy.prefetch(other) }) else {
                    Issue.record("another snapshot's set was taken"); return
                }
                #expect(id == SnapshotID(high: 1, low: 2) && reason.contains("not in this chain"))
                let id0 = chain.newest.id
                let badSegment = WorkingSet(snapshot: id0, pages: [.init(segment: 0, page: 1), .init(segment: 5, page: 0)])
                guard case .workingSetMismatch(_, let r1)? = SnapKit.error({ try lazy.prefetch(badSegment) }) else {
                    Issue.record("segment 5 was taken"); return
                }
                #expect(r1.contains("page 1 names segment 5"))
                let badPage = WorkingSet(snapshot: id0, pages: [.init(segment: 3, page: 2048)])
                guard case .workingSetMismatch(_, let r2)? = SnapKit.error({ try lazy.prefetch(badPage) }) else {
                    Issue.record("a page past the segment was taken"); return
                }
                #expect(r2.contains("page 2048 of segment 3, which has 2048"))
                #expect(lazy.statistics.prefetched == 0, "nothing was filled before the refusal")
                try lazy.finish()
                // After finish there is nothing to prefetch into.
                #expect(try lazy.prefetch(WorkingSet(snapshot: id0, pages: [.init(segment: 0, page: 9)])) == 0)
            }
        }
    }

    /// The file format: round trip, and each kind of damage named.
    @Test func fileDamageIsNamed() throws {
        try SnapKit.withScratch { dir in
            let path = dir + "/ws"
            let ws = WorkingSet(snapshot: SnapshotID(high: 0xABCD, low: 0x1234),
                                pages: [.init(segment: 15, page: (1 << 48) - 1), .init(segment: 0, page: 0), .init(segment: 2, page: 77)])
            try ws.write(to: path)
            #expect(try WorkingSet(contentsOf: path) == ws)
            #expect(!FileManager.default.fileExists(atPath: path + ".partial"))
            let good = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            #expect(good.count == 40 + 3 * 8 + 4)
            func damaged(_ bytes: [UInt8]) -> GuestSnapshotError? {
                try? Data(bytes).write(to: URL(fileURLWithPath: path))
                return SnapKit.error { try WorkingSet(contentsOf: path) }
            }
            var b = good; b[0] ^= 1
            if case .corrupt(_, "magic", _, let why)? = damaged(b), why.contains("not a VMKit working set") {} else {
                Issue.record("bad magic not named")
            }
            b = good; b[8] = 2
            if case .unsupportedVersion(_, 2, 1)? = damaged(b) {} else { Issue.record("version not named") }
            b = good; b[45] ^= 0x80
            if case .checksumMismatch(_, "working set", _, _)? = damaged(b) {} else { Issue.record("checksum not named") }
            if case .truncated? = damaged(Array(good.prefix(30))) {} else { Issue.record("short header not named") }
            if case .truncated? = damaged(Array(good.prefix(good.count - 8))) {} else { Issue.record("missing pages not named") }
            if case .corrupt(_, "size", _, _)? = damaged(good + [0, 0, 0, 0]) {} else { Issue.record("extra bytes not named") }
            if case .io(_, "open", ENOENT, _, _)? = SnapKit.error({ try WorkingSet(contentsOf: dir + "/none") }) {} else {
                Issue.record("a missing file not named")
            }
            // Out-of-range pages are refused at write, leaving no file.
            let bad = WorkingSet(snapshot: .none, pages: [.init(segment: 16, page: 0)])
            if case .corrupt(_, "segment", 16, _)? = SnapKit.error({ try bad.write(to: dir + "/bad") }) {} else {
                Issue.record("segment 16 written")
            }
            #expect(!FileManager.default.fileExists(atPath: dir + "/bad"))
        }
    }
}
