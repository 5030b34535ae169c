import Testing
import GuestMemory

/// The guest's nested page table (touch, in every format and A/D mode) and
/// the combined dirty harvest: the union of the VMM's bitmap and the nested
/// D bits, cleared only when the consumer commits.
@Suite("Nested table and combined dirty harvest")
struct NestedDirtyTests {
    static let page = GuestKit.page

    static let modes: [NestedTableMode] = [
        NestedTableMode(format: .ept, accessedDirty: .hardware),
        NestedTableMode(format: .ept, accessedDirty: .emulated),
        NestedTableMode(format: .rvi, accessedDirty: .hardware),
        NestedTableMode(format: .rvi, accessedDirty: .emulated),
    ]

    /// sysmem 0 (32 pages) at 0 rw; its pages 0-1 aliased at 64 pages rw;
    /// pages 8-9 of it at 100 pages read-only.
    static func makeGuest(_ mode: NestedTableMode) throws -> GuestMemory {
        let g = try GuestMemory(limit: 128 * page, nested: mode)
        try g.allocateSegment(id: 0, length: 32 * page)
        try g.map(gpa: 0, segment: 0, offset: 0, length: 16 * page, protection: .readWrite)
        try g.map(gpa: 64 * page, segment: 0, offset: 0, length: 2 * page, protection: .readWrite)
        try g.map(gpa: 100 * page, segment: 0, offset: 8 * page, length: 2 * page, protection: .read)
        return g
    }

    /// The refusal's kind of a touch, nil when it went through.
    static func touchKind(_ g: GuestMemory, _ gpa: UInt64, _ access: GuestProtection) -> GuestMemoryError.Kind? {
        do { try g.touch(gpa, access); return nil } catch { return error.kind }
    }

    static func harvest(_ g: GuestMemory, _ first: UInt64, _ count: UInt64) throws -> [UInt64] {
        let h = try g.harvestDirty(first * page ..< (first + count) * page)
        h.commit()
        return h.pages
    }

    @Test(arguments: modes) func unionOfVMMAndGuestWrites(mode: NestedTableMode) throws {
        try GuestKit.gated {
            let g = try Self.makeGuest(mode)
            defer { try? g.destroy() }
            #expect(g.nestedMode == mode)
            try g.write(1 * Self.page + 5, [1])            // the VMM: page 1
            try g.touch(3 * Self.page + 9, write: true)     // the guest: page 3
            try g.touch(4 * Self.page, write: false)        // a read dirties nothing
            try g.touch(5 * Self.page, .read)
            let h = try g.harvestDirty(0 ..< 16 * Self.page)
            #expect(h.pages == [1, 3])
            #expect(h.state == .open)
            #expect(h.commit())
            #expect(!h.commit(), "a second commit does nothing")
            #expect(!h.abort(), "an abort after a commit does nothing")
            #expect(h.state == .committed)
            #expect(try Self.harvest(g, 0, 128) == [], "committed: clean at every address")
        }
    }

    @Test(arguments: modes) func abortAndDropLeaveEveryPageDirty(mode: NestedTableMode) throws {
        try GuestKit.gated {
            let g = try Self.makeGuest(mode)
            defer { try? g.destroy() }
            try g.write(2 * Self.page, [1, 2, 3])
            try g.touch(7 * Self.page, write: true)
            let h = try g.harvestDirty(0 ..< 16 * Self.page)
            #expect(h.pages == [2, 7])
            #expect(h.abort())
            #expect(h.state == .aborted)
            #expect(!h.commit(), "a commit after an abort does nothing")
            do {
                let dropped = try g.harvestDirty(0 ..< 16 * Self.page)
                #expect(dropped.pages == [2, 7])
            }
            // Dropped without commit: still dirty. get reports without clearing.
            #expect(try g.harvestDirty(0, 16 * Self.page, .get) == [2, 7])
            #expect(try Self.harvest(g, 0, 16) == [2, 7])
            #expect(try Self.harvest(g, 0, 16) == [])
        }
    }

    @Test(arguments: modes) func pageDirtiedAgainAfterTheHarvestStaysDirty(mode: NestedTableMode) throws {
        try GuestKit.gated {
            let g = try Self.makeGuest(mode)
            defer { try? g.destroy() }
            try g.write(1 * Self.page, [1])
            try g.touch(3 * Self.page, write: true)
            try g.touch(6 * Self.page, write: true)
            let h = try g.harvestDirty(0 ..< 16 * Self.page)
            #expect(h.pages == [1, 3, 6])
            // Between the harvest and the commit: the VMM rewrites 1, the
            // guest rewrites 3 (its D bit was cleared: the write sets it again)
            // and writes 9 for the first time.
            try g.write(1 * Self.page + 100, [2])
            try g.touch(3 * Self.page + 8, write: true)
            try g.touch(9 * Self.page, write: true)
            h.commit()
            #expect(try Self.harvest(g, 0, 16) == [1, 3, 9])
            // The same with an abort: the union of both.
            try g.write(1 * Self.page, [1])
            try g.touch(6 * Self.page, write: true)
            let h2 = try g.harvestDirty(0 ..< 16 * Self.page)
            #expect(h2.pages == [1, 6])
            try g.touch(10 * Self.page, write: true)
            h2.abort()
            #expect(try Self.harvest(g, 0, 16) == [1, 6, 10])
        }
    }

    @Test(arguments: modes) func guestWritesAreSegmentPagesAndSurviveUnmap(mode: NestedTableMode) throws {
        try GuestKit.gated {
            let g = try Self.makeGuest(mode)
            defer { try? g.destroy() }
            // A guest write through the alias at 64 pages is segment page 0,
            // seen at guest page 0 too; a harvest of one address clears both.
            try g.touch(64 * Self.page, write: true)
            #expect(try g.harvestDirty(0, 128 * Self.page, .get) == [0, 64])
            #expect(try Self.harvest(g, 0, 1) == [0])
            #expect(try Self.harvest(g, 64, 2) == [])
            // A guest write survives the unmap of the mapping it came through.
            try g.touch(65 * Self.page, write: true)
            try g.unmap(gpa: 64 * Self.page, length: 2 * Self.page)
            #expect(try Self.harvest(g, 0, 128) == [1])
            // Read-only and unmapped: refused, nothing dirtied.
            #expect(Self.touchKind(g, 100 * Self.page, .write) == .fault)
            #expect(Self.touchKind(g, 50 * Self.page, .read) == .fault)
            #expect(Self.touchKind(g, 0, [.read, .write]) == .invalid)
            #expect(try Self.harvest(g, 0, 128) == [])
            // The legacy operations see the union too.
            try g.touch(2 * Self.page, write: true)
            #expect(try g.harvestDirty(0, 16 * Self.page, .reset) == [])
            #expect(try Self.harvest(g, 0, 16) == [])
        }
    }

    /// §7: with EPT exactly the mapping's rights; with RVI always readable,
    /// `w` needs w and `x` needs x.
    @Test(arguments: modes) func touchRights(mode: NestedTableMode) throws {
        try GuestKit.gated {
            let words = ["r", "w", "x", "rw", "rx", "wx", "rwx"]
            let g = try GuestMemory(limit: 16 * Self.page, nested: mode)
            defer { try? g.destroy() }
            try g.allocateSegment(id: 0, length: 8 * Self.page)
            for (i, w) in words.enumerated() {
                try g.map(gpa: UInt64(i) * Self.page, segment: 0, offset: UInt64(i) * Self.page, length: Self.page,
                          protection: GuestProtection(w)!)
            }
            for (i, w) in words.enumerated() {
                let prot = GuestProtection(w)!
                for access in [GuestProtection.read, .write, .execute] {
                    let allowed = mode.format == .ept ? prot.contains(access) : prot.union(.read).contains(access)
                    let ok = Self.touchKind(g, UInt64(i) * Self.page + 1, access) == nil
                    #expect(ok == allowed, "\(mode) prot \(w) access \(access)")
                }
                #expect(try Self.harvest(g, UInt64(i), 1) == (prot.contains(.write) ? [UInt64(i)] : []))
            }
            #expect(Self.touchKind(g, 7 * Self.page, .read) == .fault)
        }
    }

    /// Random traces of VMM writes, guest touches and harvests (committed,
    /// aborted or dropped) on every mode against a reference model of dirty
    /// segment pages: the same answers and the same dirty sets everywhere.
    @Test func randomTracesGiveTheSameDirtySetsInEveryMode() throws {
        try GuestKit.gated {
            for seed in 1...6 as ClosedRange<UInt64> {
                var outputs: [[String]] = []
                for mode in Self.modes {
                    var rng = GuestRNG(seed: seed)
                    let g = try GuestMemory(limit: 512 * Self.page, nested: mode)
                    defer { try? g.destroy() }
                    try g.allocateSegment(id: 0, length: 64 * Self.page)
                    // seg [0, 32) rw at 0; seg [16, 48) rw at 128; seg [48, 64) rx at 256.
                    let maps: [(gpa: UInt64, off: UInt64, n: UInt64, prot: GuestProtection)] = [
                        (0, 0, 32, .readWrite), (128, 16, 32, .readWrite), (256, 48, 16, [.read, .execute]),
                    ]
                    for m in maps {
                        try g.map(gpa: m.gpa * Self.page, segment: 0, offset: m.off * Self.page, length: m.n * Self.page,
                                  protection: m.prot)
                    }
                    func segmentPage(_ gp: UInt64) -> (UInt64, GuestProtection)? {
                        for m in maps where gp >= m.gpa && gp < m.gpa + m.n { return (m.off + gp - m.gpa, m.prot) }
                        return nil
                    }
                    var dirty = Set<UInt64>()
                    var out: [String] = []
                    for _ in 0..<400 {
                        let gp = rng.below(300)
                        switch rng.below(10) {
                        case 0...4:
                            let access: GuestProtection = [.read, .write, .execute][Int(rng.below(3))]
                            let ok = Self.touchKind(g, gp * Self.page + rng.below(Self.page), access) == nil
                            let expected: Bool
                            if let (s, prot) = segmentPage(gp) {
                                expected = mode.format == .ept ? prot.contains(access) : prot.union(.read).contains(access)
                                if expected && access == .write { dirty.insert(s) }
                            } else {
                                expected = false
                            }
                            #expect(ok == expected, "seed \(seed) \(mode) touch \(gp) \(access)")
                            out.append("touch \(gp) \(access) \(ok)")
                        case 5...6:
                            let ok = (try? g.write(gp * Self.page, [UInt8(truncatingIfNeeded: gp)])) != nil
                            if let (s, prot) = segmentPage(gp), prot.contains(.write) { dirty.insert(s) }
                            out.append("write \(gp) \(ok)")
                        default:
                            let first = rng.below(300), count = 1 + rng.below(300 - first)
                            let how = rng.below(3)
                            var pages: [UInt64] = []
                            do {
                                let h = try g.harvestDirty(first * Self.page ..< (first + count) * Self.page)
                                pages = h.pages
                                if how == 0 { h.commit() } else if how == 1 { h.abort() }
                            }
                            var expected: [UInt64] = []
                            var taken = Set<UInt64>()
                            for p in first..<(first + count) {
                                if let (s, _) = segmentPage(p), dirty.contains(s) { expected.append(p); taken.insert(s) }
                            }
                            #expect(pages == expected, "seed \(seed) \(mode) harvest \(first)+\(count)")
                            if how == 0 { dirty.subtract(taken) }
                            out.append("harvest \(first) \(count) \(pages)")
                        }
                    }
                    outputs.append(out)
                }
                for o in outputs.dropFirst() { #expect(o == outputs[0], "seed \(seed): every mode answers alike") }
            }
        }
    }

    /// map, unmap and reset keep the nested table in step: its mappings are
    /// the guest's, and for random GPAs a touch reaches exactly the host
    /// address GuestMemory.translation gives (and faults where it refuses).
    @Test(arguments: [NestedTableMode(format: .ept, accessedDirty: .emulated), NestedTableMode(format: .rvi)])
    func nestedTableStaysInStepWithTheMap(mode: NestedTableMode) throws {
        try GuestKit.gated {
            var rng = GuestRNG(seed: 0x5EED)
            let g = try GuestMemory(limit: 1024 * Self.page, nested: mode)
            defer { try? g.destroy() }
            try g.allocateSegment(id: 0, length: 256 * Self.page)
            try g.allocateSegment(id: 1, length: 64 * Self.page, name: "framebuffer")
            for step in 0..<150 {
                switch rng.below(8) {
                case 0:
                    try g.reset()
                case 1, 2:
                    let ms = g.mappings
                    if let m = ms.isEmpty ? nil : ms[Int(rng.below(UInt64(ms.count)))] {
                        try g.unmap(gpa: m.gpa, length: m.length)
                    }
                default:
                    let seg = Int(rng.below(2))
                    let segPages: UInt64 = seg == 0 ? 256 : 64
                    let n = 1 + rng.below(16), off = rng.below(segPages - n + 1)
                    let gpa = rng.below(1024 - n + 1)
                    let prot: GuestProtection = [.read, .readWrite, [.read, .execute], .all][Int(rng.below(4))]
                    _ = try? g.map(gpa: gpa * Self.page, segment: seg, offset: off * Self.page, length: n * Self.page,
                                   protection: prot)
                }
                #expect(g.nestedMappings.map { [$0.gpa, $0.length, $0.hostAddress] }
                        == g.mappings.map { [$0.gpa, $0.length, $0.hostAddress] }, "step \(step)")
                for _ in 0..<20 {
                    let gpa = rng.below(1024 * Self.page)
                    let expected = try? g.translation(gpa, 1, .read)
                    let reached = try? g.touch(gpa, .read)
                    #expect(reached == expected?.hostAddress, "step \(step) gpa \(gpa)")
                    #expect(try g.nestedTranslation(gpa) == expected?.hostAddress, "step \(step) gpa \(gpa)")
                    if let reached {
                        // The nested table's host frame is the VMM's view of the same page.
                        let b = UInt8(truncatingIfNeeded: gpa)
                        if expected!.mapping.protection.contains(.write) {
                            UnsafeMutablePointer<UInt8>(bitPattern: UInt(reached))!.pointee = b
                            #expect(try g.read(gpa, count: 1) == [b])
                        }
                    }
                }
            }
        }
    }
}
