import Testing
@testable import Vmem
import VmemWorkloads

/// Free-list entries carry sizes in quanta, in 32 bits; lists whose sizes
/// reach 2^31 quanta are *wide* and read sizes from the tags instead. An
/// arena of quantum 1 over 2^40 bytes keeps segments on both kinds of list;
/// every policy must still choose what the reference model chooses, the
/// searches must count what the general search counts, and verify() must hold.
@Suite struct WideFreeListTests {
    @Test func wideListsAreWhereSizesReach2To31Quanta() throws {
        let a = try Arena(name: "ids", base: 1, size: (1 << 40) - 1, quantum: 1)
        defer { a.destroy() }
        #expect(!a.core.pointee.isWideList(30) && a.core.pointee.isWideList(31))
        let pages = try Arena(name: "pages", base: 0x1000, size: 1 << 50, quantum: 0x1000)
        defer { pages.destroy() }
        #expect(!pages.core.pointee.isWideList(42) && pages.core.pointee.isWideList(43))
        // The span's one free segment is on list 39: wide, saturated entry.
        #expect(a.core.pointee.lists[39].entries![0].quanta == UInt32.max)
        try a.verify()
    }

    @Test(arguments: [AllocationPolicy.instantFit, .bestFit, .firstFit])
    func quantumOneArenaMatchesTheReference(_ policy: AllocationPolicy) throws {
        let real = try Arena(name: "ids", base: 1, size: (1 << 40) - 1, quantum: 1)
        let ref = try ReferenceArena(name: "ids", base: 1, size: (1 << 40) - 1, quantum: 1)
        defer { real.destroy() }
        var rng = SplitMix64(seed: 5)
        var live: [(UInt64, UInt64)] = []
        var wideChoices = 0
        for step in 0..<3_000 {
            if live.isEmpty || rng.next() % 3 != 0 {
                // Sizes from a few bytes to 2^36, so that frees leave free
                // segments on narrow and wide lists alike.
                let size = 1 + rng.next() % (1 << (rng.next() % 37))
                let fromEnd = rng.next() % 4 == 0
                let x = Result { () throws(VmemError) in try real.alloc(size, policy: policy, fromEnd: fromEnd) }
                let y = Result { () throws(VmemError) in try ref.alloc(size, policy: policy, fromEnd: fromEnd) }
                switch (x, y) {
                case (.success(let p), .success(let q)):
                    #expect(p == q, "step \(step): \(size) bytes")
                    if p != q { return }
                    live.append((p, size))
                    if size >= 1 << 31 { wideChoices += 1 }
                case (.failure(let e), .failure(let f)):
                    #expect(e == f, "step \(step)")
                default:
                    Issue.record("step \(step): \(x) vs \(y)")
                    return
                }
            } else {
                let i = Int(rng.next() % UInt64(live.count))
                try real.free(live[i].0, size: live[i].1)
                try ref.free(live[i].0, size: live[i].1)
                live.swapAt(i, live.count - 1)
                live.removeLast()
            }
            if step % 100 == 0 { try real.verify() }
        }
        try real.verify()
        #expect(wideChoices > 50)
    }

    /// The unconstrained walk of a wide list and the general search agree.
    @Test(arguments: [AllocationPolicy.instantFit, .bestFit, .firstFit])
    func wideWalkMatchesTheGeneralSearch(_ policy: AllocationPolicy) throws {
        let a = try Arena(name: "ids", base: 1, size: (1 << 40) - 1, quantum: 1)
        defer { a.destroy() }
        // Free segments of 2^31 bytes and more, separated by small allocations.
        var cursor: UInt64 = 1
        var keep: [(UInt64, UInt64)] = []
        for i in UInt64(0)..<40 {
            let big = (1 << 31) + i * 0x1234_5679
            _ = try a.allocExact(at: cursor, size: big)
            keep.append((cursor, big))
            cursor += big
            _ = try a.allocExact(at: cursor, size: 1)
            cursor += 1
        }
        for (p, s) in keep { try a.free(p, size: s) }
        try a.verify()
        for i in UInt64(0)..<60 {
            let size = (1 << 31) + i * 0x0777_7777
            let plain = Constraints(size: size, align: 1, phase: 0, nocross: 0, minaddr: 0, maxaddr: 0, fromEnd: false)
            var general = plain
            general.minaddr = 1
            let before = a.core.pointee.stats.searchCount
            let fast = a.core.pointee.search(plain, policy: policy)
            let fastCount = a.core.pointee.stats.searchCount &- before
            let slow = a.core.pointee.search(general, policy: policy)
            let slowCount = a.core.pointee.stats.searchCount &- before &- fastCount
            #expect(fast == slow && fastCount == slowCount, "\(size) bytes")
            #expect(fast.0 != 0)
        }
    }
}
