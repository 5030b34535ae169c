import Testing
import CVmemSupport
@testable import Vmem
import VmemWorkloads

/// The unconstrained search reads only the free-list arrays' sizes; the
/// general, constrained search places every candidate. Where no constraint
/// binds they must agree on everything: the segment, the address, and how
/// many segments `searchCount` says were looked at.
@Suite struct SearchEquivalenceTests {
    /// A fragmented arena: many free segments of many sizes on every list,
    /// tombstones included (frees and carves in a random order).
    func fragmentedArena(seed: UInt64) throws -> Arena {
        let q: UInt64 = 0x1000
        let a = try Arena(name: "search", base: 0x10_0000, size: 1 << 32, quantum: q)
        var rng = SplitMix64(seed: seed)
        var live: [(UInt64, UInt64)] = []
        for _ in 0..<4_000 {
            let size = (1 + rng.next() % 96) * q
            live.append((try a.alloc(size, policy: .bestFit), size))
        }
        for _ in 0..<6_000 {
            let i = Int(rng.next() % UInt64(live.count))
            try a.free(live[i].0, size: live[i].1)
            let size = (1 + rng.next() % 96) * q
            live[i] = (try a.alloc(size, policy: rng.next() % 2 == 0 ? .bestFit : .instantFit), size)
        }
        for i in stride(from: 0, to: live.count, by: 2) { try a.free(live[i].0, size: live[i].1) }
        try a.verify()
        return a
    }

    @Test(arguments: [AllocationPolicy.bestFit, .firstFit, .instantFit], [false, true])
    func unconstrainedSearchMatchesTheGeneralOne(_ policy: AllocationPolicy, _ fromEnd: Bool) throws {
        let a = try fragmentedArena(seed: 7)
        defer { a.destroy() }
        let q = a.quantum
        var found = 0, misses = 0, widest: UInt64 = 0
        // Up to 200 pages, then sizes near and beyond the 4 GiB span.
        for pages in Array(UInt64(1)...200) + [1 << 19, 1 << 20, 1 << 21] {
            let size = pages * q
            let plain = Constraints(size: size, align: q, phase: 0, nocross: 0, minaddr: 0, maxaddr: 0, fromEnd: fromEnd)
            // minaddr 1 lies below every segment, so it binds nothing, but
            // it sends the search down the general path.
            var general = plain
            general.minaddr = 1
            #expect(!plain.isConstrained && general.isConstrained)
            let before = a.core.pointee.stats.searchCount
            let fast = a.core.pointee.search(plain, policy: policy)
            let fastCount = a.core.pointee.stats.searchCount &- before
            let slow = a.core.pointee.search(general, policy: policy)
            let slowCount = a.core.pointee.stats.searchCount &- before &- fastCount
            #expect(fast == slow, "size \(pages) pages, \(policy), fromEnd \(fromEnd)")
            #expect(fastCount == slowCount, "size \(pages) pages, \(policy), fromEnd \(fromEnd)")
            if fast.0 != 0 { found += 1 } else { misses += 1 }
            widest = max(widest, fastCount)
        }
        // The arena must have given the searches something to choose from,
        // best fit more than one candidate, and the largest sizes nothing.
        #expect(found > 50 && misses > 0)
        #expect(policy != .bestFit || widest > 1)
    }

    /// Everything a carve can change, in list and segment order, with tag numbers.
    func snapshot(_ a: Arena) -> [UInt64] {
        let c = a.core.pointee
        var out: [UInt64] = [c.freemap, UInt64(c.freeTagHead), UInt64(c.freeTagCount), UInt64(c.tagHighWater),
                             c.stats.memInUse, c.stats.allocatedSegments, c.stats.allocCount]
        var t = c.tags[Int(ReservedTag.seg0)].segNext
        while t != ReservedTag.seg0 {
            out += [UInt64(t), c.tags[Int(t)].start, c.tags[Int(t)].end, UInt64(c.tags[Int(t)].kind)]
            t = c.tags[Int(t)].segNext
        }
        for i in 0..<64 {
            let l = c.lists[i]
            out += [UInt64(l.count), UInt64(l.live)]
            for j in 0..<l.count { out += [UInt64(l.entries![j].quanta), UInt64(l.entries![j].tag)] }
        }
        return out
    }

    /// Instant fit's own carve of a list head must be the general carve's
    /// result tag for tag: the same segment, the same tag numbers taken from
    /// the free-tag list, the same free lists (order and tombstones).
    @Test func instantFitHeadCarveIsTheGeneralCarve() throws {
        let fast = try fragmentedArena(seed: 11), general = try fragmentedArena(seed: 11)
        defer { fast.destroy(); general.destroy() }
        #expect(snapshot(fast) == snapshot(general))
        var shrunkInPlace = 0, popped = 0
        for pages in UInt64(1)...160 {
            let size = pages * fast.quantum
            fast.core.pointee.reserveTags(Arena.tagReserve)
            general.core.pointee.reserveTags(Arena.tagReserve)
            let list = general.core.pointee.definitelyFitsList(size)
            guard list >= 0 else { continue }
            let head = general.core.pointee.freelistHead(list)
            let headSize = general.core.pointee.tags[Int(head)].size
            let viaHead = fast.core.pointee.allocInstant(size, fromEnd: false)
            let viaCarve = general.core.pointee.carve(head, at: general.core.pointee.tags[Int(head)].start, size: size)
            #expect(viaHead == viaCarve, "\(pages) pages")
            if p2samehighbit(headSize, headSize - size) { shrunkInPlace += 1 } else { popped += 1 }
            #expect(snapshot(fast) == snapshot(general), "\(pages) pages")
            try fast.verify()
        }
        // Both ways out of the carve were taken.
        #expect(shrunkInPlace > 5 && popped > 5)
    }

    /// Best fit's two walks of a narrow list, the AVX2 one in C and the
    /// SSE2 one in Swift, against a plain loop: the same choice (smallest
    /// fit, nearest the head among equals), the same stopping slot (the
    /// first exact fit from the head) and the same count of too-small
    /// entries passed, on lists of every length up to 70 with tombstones,
    /// exact fits anywhere or nowhere, and runs of equal sizes.
    @Test func bestFitWalksAgreeWithAPlainLoop() {
        struct Walk: Equatable { var stop: Int; var best: TagIndex; var tooSmall: UInt64 }
        func reference(_ e: [FreeEntry], _ quanta: UInt32) -> Walk {
            var best: TagIndex = 0, bestSize = UInt32.max, tooSmall: UInt64 = 0
            for pos in stride(from: e.count - 1, through: 0, by: -1) {
                if e[pos].quanta < quanta { tooSmall += 1; continue }
                if e[pos].quanta < bestSize { best = e[pos].tag; bestSize = e[pos].quanta }
                if e[pos].quanta == quanta { return Walk(stop: pos, best: best, tooSmall: tooSmall) }
            }
            return Walk(stop: -1, best: best, tooSmall: tooSmall)
        }
        var rng = SplitMix64(seed: 2026)
        var checked = 0, exact = 0, none = 0
        for _ in 0..<20_000 {
            let count = Int(rng.next() % 71)
            let j = UInt32(rng.next() % 12)                       // list of sizes [2^j, 2^(j+1))
            let span = UInt32(1) << j
            // Few distinct sizes now and then, so that ties and exact fits are common.
            let distinct = rng.next() % 3 == 0 ? UInt32(1 + rng.next() % 3) : span
            var entries: [FreeEntry] = []
            for i in 0..<count {
                if rng.next() % 5 == 0 {
                    entries.append(FreeEntry(quanta: 0, tag: 0))
                } else {
                    let q = span + UInt32(rng.next() % UInt64(distinct)) % span
                    entries.append(FreeEntry(quanta: q, tag: TagIndex(100 + i)))
                }
            }
            let quanta = span + UInt32(rng.next() % UInt64(span))
            let want = reference(entries, quanta)
            let sizes = entries.map(\.quanta)
            entries.withUnsafeMutableBufferPointer { buffer in
                let e = buffer.baseAddress ?? UnsafeMutablePointer<FreeEntry>.allocate(capacity: 1)
                defer { if buffer.baseAddress == nil { e.deallocate() } }
                var best: TagIndex = 0, tooSmall: UInt64 = 0
                let stop = ArenaCore.walkBestNarrow(e, count: count, quanta: quanta, best: &best, tooSmall: &tooSmall)
                // The Swift walk may report slot 0 for a whole list; the caller reads max(stop, 0).
                #expect(Walk(stop: max(stop, 0), best: best, tooSmall: tooSmall)
                        == Walk(stop: max(want.stop, 0), best: want.best, tooSmall: want.tooSmall),
                        "Swift walk, count \(count), request \(quanta), entries \(sizes)")
                if cvmem_has_avx2() != 0 {
                    let r = e.withMemoryRebound(to: UInt64.self, capacity: max(count, 1)) {
                        cvmem_best_fit_walk_avx2($0, Int64(count), quanta)
                    }
                    #expect(Walk(stop: Int(r.stop), best: r.best, tooSmall: UInt64(r.too_small)) == want,
                            "AVX2 walk, count \(count), request \(quanta), entries \(sizes)")
                }
            }
            checked += 1
            if want.stop >= 0 { exact += 1 } else if want.best == 0 { none += 1 }
        }
        // Every kind of outcome came up often.
        #expect(exact > 2_000 && none > 1_000 && checked - exact - none > 2_000)
    }
}
