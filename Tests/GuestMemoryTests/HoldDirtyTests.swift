import Testing
import GuestMemory

/// Page holds (vmc_hold, VPF_DEFER_DIRTY) and the VMM's dirty bitmap (get,
/// reset, get-and-reset; exactly what is returned is cleared).
@Suite("Page holds and the dirty bitmap")
struct HoldDirtyTests {
    static let page = GuestKit.page

    /// sysmem 0 (32 pages) at 0 rw; its pages 0-1 aliased at 64 pages rw;
    /// pages 8-9 of it at 100 pages read-only.
    static func makeGuest() throws -> GuestMemory {
        let g = try GuestMemory(limit: 128 * page)
        try g.allocateSegment(id: 0, length: 32 * page)
        try g.map(gpa: 0, segment: 0, offset: 0, length: 16 * page, protection: .readWrite)
        try g.map(gpa: 64 * page, segment: 0, offset: 0, length: 2 * page, protection: .readWrite)
        try g.map(gpa: 100 * page, segment: 0, offset: 8 * page, length: 2 * page, protection: .read)
        return g
    }

    /// A hypervisor's bitmap handed over word by word (`markDirty(firstGuestPage:words:)`)
    /// marks exactly the segment pages behind its set bits, through mappings
    /// whose segment offset is not a multiple of 64 pages, that start or end
    /// inside a word, that alias one segment, and across gaps — against a
    /// page-by-page model.
    @Test func markDirtyWordsMatchesPageByPage() throws {
        try GuestKit.gated {
            let p = Self.page
            let g = try GuestMemory(limit: 1024 * p)
            try g.allocateSegment(id: 0, length: 512 * p)
            try g.allocateSegment(id: 1, length: 256 * p)
            // segment page = guest page + delta, per mapping
            let maps: [(gpa: UInt64, seg: Int, off: UInt64, pages: UInt64)] = [
                (0, 0, 0, 128),          // aligned, whole words
                (128, 0, 200, 100),      // offset 200: every word split in two
                (300, 1, 5, 90),         // starts and ends inside words
                (448, 0, 0, 64),         // alias of segment 0's first word
                (640, 1, 100, 150),      // after a gap
            ]
            for m in maps { try g.map(gpa: m.gpa * p, segment: m.seg, offset: m.off * p, length: m.pages * p, protection: .readWrite) }
            var rng = GuestRNG(seed: 99)
            for round in 0 ..< 20 {
                let words = (0 ..< 16).map { _ in rng.next() & rng.next() }    // about a quarter of the bits
                let first: UInt64 = round % 2 == 0 ? 0 : 3                // the bitmap's first page need not be word-aligned
                var dirtySegmentPages: [Set<UInt64>] = [[], []]
                var expectedMarked = 0
                for (w, word) in words.enumerated() {
                    for b in 0 ..< 64 where word & (1 << UInt64(b)) != 0 {
                        let page = first + UInt64(w) * 64 + UInt64(b)
                        guard let m = maps.first(where: { page >= $0.gpa && page < $0.gpa + $0.pages }) else { continue }
                        dirtySegmentPages[m.seg].insert(page - m.gpa + m.off)
                        expectedMarked += 1
                    }
                }
                let marked = words.withUnsafeBufferPointer { g.markDirty(firstGuestPage: first, words: $0) }
                #expect(marked == expectedMarked, "round \(round)")
                // Every guest page whose segment page is dirty, through every mapping.
                var expected: [UInt64] = []
                for page in UInt64(0) ..< 1024 {
                    if let m = maps.first(where: { page >= $0.gpa && page < $0.gpa + $0.pages }),
                       dirtySegmentPages[m.seg].contains(page - m.gpa + m.off) { expected.append(page) }
                }
                #expect(try g.harvestDirty(0, 1024 * p) == expected, "round \(round)")
            }
            try g.destroy()
        }
    }

    @Test func everyVMMWriteMarksItsSegmentPage() throws {
        try GuestKit.gated {
            let g = try Self.makeGuest()
            defer { try? g.destroy() }
            #expect(try g.harvestDirty(0, 128 * Self.page) == [])
            try g.write(Self.page - 1, [1, 2])                        // pages 0 and 1
            try g.store(UInt16(7), at: 5 * Self.page)                  // page 5
            _ = try g.compareExchange(at: 6 * Self.page, expected: UInt32(1), desired: 2)  // fails: not dirty
            _ = try g.compareExchange(at: 7 * Self.page, expected: UInt32(0), desired: 2)  // page 7
            _ = try g.load(UInt64.self, at: 9 * Self.page)             // a load dirties nothing
            _ = try g.read(10 * Self.page, count: 10)
            #expect(try g.harvestDirty(0, 16 * Self.page, .get) == [0, 1, 5, 7])
            #expect(try g.harvestDirty(0, 16 * Self.page, .get) == [0, 1, 5, 7], "get clears nothing")
            // The alias shows segment pages 0 and 1 at guest pages 64 and 65 too.
            #expect(try g.harvestDirty(0, 128 * Self.page, .get) == [0, 1, 5, 7, 64, 65])
            // Segment page 8 dirtied through gpa 8 pages shows at 100 pages (read-only view).
            try g.write(8 * Self.page, [1])
            #expect(try g.harvestDirty(100 * Self.page, 2 * Self.page, .get) == [100])
            // get-and-reset over part of the range: returns and clears only that part.
            #expect(try g.harvestDirty(Self.page, 5 * Self.page) == [1, 5])
            #expect(try g.harvestDirty(0, 128 * Self.page, .get) == [0, 7, 8, 64, 100])
            // reset clears and reports nothing.
            #expect(try g.harvestDirty(0, Self.page, .reset) == [])
            #expect(try g.harvestDirty(0, 128 * Self.page) == [7, 8, 100])
            #expect(try g.harvestDirty(0, 128 * Self.page) == [])
            // An unaligned range covers the pages it touches.
            try g.write(3 * Self.page, [1])
            #expect(try g.harvestDirty(3 * Self.page + 4000, 200, .get) == [3, 4].filter { $0 == 3 })
            #expect(try g.harvestDirty(2 * Self.page + 1, Self.page) == [3])
            // Bad ranges are typed.
            #expect(GuestKit.error { () throws(GuestMemoryError) in try g.harvestDirty(0, 0) } == .zeroLength(gpa: 0))
            #expect(GuestKit.error { () throws(GuestMemoryError) in try g.harvestDirty(~UInt64(0), 2) }
                    == .rangeWraps(gpa: ~UInt64(0), length: 2))
        }
    }

    @Test func writableHoldsDirtyOnReleaseUnlessDeferred() throws {
        try GuestKit.gated {
            let g = try Self.makeGuest()
            defer { try? g.destroy() }
            let r = try g.hold(2 * Self.page + 8, length: 8, .read)
            let (pageGPA, host) = (r.pageGPA, r.hostAddress)
            #expect(pageGPA == 2 * Self.page && host == g.hostBase + 2 * Self.page + 8)
            r.release()
            let w = try g.hold(3 * Self.page, .readWrite)
            w.pointer.storeBytes(of: 0x42, as: UInt8.self)
            #expect(try g.read(3 * Self.page, count: 1) == [0x42])
            #expect(try g.harvestDirty(0, 16 * Self.page, .get) == [], "dirty only on release")
            w.release()   // consumed: a second release does not compile
            #expect(try g.harvestDirty(0, 16 * Self.page) == [3], "released once, dirtied once")
            let d = try g.hold(4 * Self.page, .write, deferDirty: true)
            d.release()
            #expect(try g.harvestDirty(0, 16 * Self.page) == [], "deferred: not dirty")
            var d2 = try g.hold(4 * Self.page, .write, deferDirty: true)
            let opted = d2.markDirty()
            #expect(opted)
            d2.release()
            #expect(try g.harvestDirty(0, 16 * Self.page) == [4], "vmp_mark_dirty opts in")
            var readHold = try g.hold(0, .read)
            let readOpted = readHold.markDirty()
            #expect(!readOpted, "a read hold cannot be dirty")
            readHold.release()
            // A writable hold dropped at the end of a scope is released (and dirties).
            do { let scoped = try g.hold(5 * Self.page, .readWrite); _ = scoped.pageGPA }
            #expect(try g.harvestDirty(0, 16 * Self.page) == [5], "a hold going out of scope is released")
            #expect(try g.hold(6 * Self.page, .read).pageGPA == 6 * Self.page, "a temporary hold is released at once")
            try g.unmap(gpa: 100 * Self.page, length: 2 * Self.page)
            try g.map(gpa: 100 * Self.page, segment: 0, offset: 8 * Self.page, length: 2 * Self.page, protection: .read)
            // Dropping a hold without release releases it: the mapping can go.
            do { _ = try g.hold(64 * Self.page, .readWrite) }
            try g.unmap(gpa: 64 * Self.page, length: 2 * Self.page)
            #expect(try g.harvestDirty(0, 16 * Self.page) == [0], "the dropped writable hold dirtied segment page 0")
        }
    }

    /// A harvest of most of a segment swaps its bitmap buffer out: pages
    /// outside the range (here, segment pages mapped nowhere in it) are
    /// given back, an abort puts the rest back, a second harvest while the
    /// first is open reports only new writes, and the count on the bits
    /// agrees with the list.
    @Test func swappedHarvestsAreExact() throws {
        try GuestKit.gated {
            let g = try GuestMemory(limit: 256 * Self.page)
            defer { try? g.destroy() }
            try g.allocateSegment(id: 0, length: 200 * Self.page)
            try g.map(gpa: 0, segment: 0, offset: 0, length: 150 * Self.page, protection: .readWrite)
            try g.map(gpa: 160 * Self.page, segment: 0, offset: 150 * Self.page, length: 50 * Self.page, protection: .readWrite)
            for p: UInt64 in [0, 63, 64, 149, 160, 199] { try g.write(p * Self.page, [1]) }
            // Covers segment pages 0..<150 (75 %): swapped; 150..<200 go back.
            let h = try g.harvestDirty(0 ..< 150 * Self.page)
            #expect(h.pages == [0, 63, 64, 149])
            #expect(h.pageCount == 4)
            var walked: [UInt64] = []
            h.forEachPage { walked.append($0) }
            #expect(walked == h.pages)
            #expect(try g.harvestDirty(160 * Self.page, 50 * Self.page, .get) == [160, 199], "given back")
            // Written again while the first is open: only that is new.
            try g.write(63 * Self.page, [2])
            let h2 = try g.harvestDirty(0 ..< 150 * Self.page)
            #expect(h2.pages == [63])
            h2.commit()
            #expect(h.abort())
            #expect(try g.harvestDirty(0, 256 * Self.page, .get) == [0, 63, 64, 149, 160, 199], "the abort put them back")
            #expect(!h.commit() && h.state == .aborted)
        }
    }

    struct HoldCase: CustomTestStringConvertible, Sendable {
        let rule: String
        let gpa: UInt64, len: UInt64, prot: UInt8
        let expected: GuestMemoryError?
        var testDescription: String { rule }
    }

    static let holdCases: [HoldCase] = [
        .init(rule: "a whole page", gpa: 4096, len: 4096, prot: 3, expected: nil),
        .init(rule: "crossing a page", gpa: 4096 + 4000, len: 100, prot: 1, expected: .crossesPage(gpa: 4096 + 4000, length: 100)),
        .init(rule: "two pages", gpa: 0, len: 8192, prot: 1, expected: .crossesPage(gpa: 0, length: 8192)),
        .init(rule: "write of a read-only mapping", gpa: 100 * 4096, len: 1, prot: 2,
              expected: .protectionDenied(gpa: 100 * 4096, requested: .write, mapped: .read)),
        .init(rule: "an unmapped page", gpa: 50 * 4096, len: 1, prot: 1, expected: .unmapped(gpa: 50 * 4096)),
        .init(rule: "length 0", gpa: 0, len: 0, prot: 1, expected: .zeroLength(gpa: 0)),
        .init(rule: "wrapping", gpa: ~UInt64(0), len: 2, prot: 1, expected: .rangeWraps(gpa: ~UInt64(0), length: 2)),
        .init(rule: "no rights", gpa: 0, len: 1, prot: 0, expected: .invalidProtection(rawValue: 0)),
    ]

    @Test(arguments: holdCases)
    func holdRule(_ c: HoldCase) throws {
        try GuestKit.gated {
            let g = try Self.makeGuest()
            defer { try? g.destroy() }
            let e = GuestKit.error { () throws(GuestMemoryError) in
                try g.hold(c.gpa, length: c.len, GuestProtection(rawValue: c.prot)).release()
            }
            #expect(e == c.expected, "\(c.rule)")
            #expect(try g.harvestDirty(0, 16 * Self.page, .get) == (c.expected == nil && c.prot & 2 != 0 ? [c.gpa / 4096] : []))
        }
    }
}
