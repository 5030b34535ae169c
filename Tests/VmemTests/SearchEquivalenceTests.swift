import Testing
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
}
