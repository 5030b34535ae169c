import Testing
import PageTables

/// `scanDirty` (the unlimited get / get-and-reset GuestMemory's harvest
/// uses) against `dirtyOperation` on random traces, with and without
/// superpages, in hardware and emulated A/D modes.
@Suite("Nested page tables: scanDirty agrees with dirtyOperation")
struct NestedScanDirtyTests {
    static func run<F: NestedPTEFormat>(_ format: F.Type, superpages: Bool, seed: UInt64) throws {
        let a = try NestedPageTable<F, HostTableAllocator>(frames: try HostTableAllocator(), superpages: superpages)
        let b = try NestedPageTable<F, HostTableAllocator>(frames: try HostTableAllocator(), superpages: superpages)
        let span: UInt64 = 8 << 20
        for t in [a, b] {
            try t.map(0, length: span, to: 0x4000_0000, access: .readWrite, populate: false)
        }
        var state = seed
        func next(_ n: UInt64) -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return (state >> 33) % n
        }
        for step in 0..<300 {
            let page = next(span / 0x1000) * 0x1000
            if next(3) != 0 {
                let access: MemoryAccess = next(2) == 0 ? .read : .write
                for t in [a, b] { _ = try t.guestAccess(page, access) }
            } else {
                let first = next(span / 0x1000) * 0x1000
                let length = (1 + next((span - first) / 0x1000)) * 0x1000
                let clear = next(2) == 0
                var got: [UInt64] = []
                try a.scanDirty(first, length: length, clear: clear) { got.append($0) }
                let want = try b.dirtyOperation(clear ? .getAndReset : .get, first, length: length)
                #expect(got.sorted() == want, "step \(step) [\(first), +\(length)) clear \(clear)")
            }
        }
        var all: [UInt64] = []
        try a.scanDirty(0, length: span, clear: false) { all.append($0) }
        #expect(all == (try b.dirtyOperation(.get, 0, length: span)))
    }

    /// 4 KiB leaves only: page for page the same answers. (With superpages
    /// the two differ by design in one thing: `dirtyOperation` demotes a
    /// clean superpage that sticks out of a range it resets, `scanDirty`
    /// leaves it whole, so later writes dirty different granules.)
    @Test func agreesWithDirtyOperation() throws {
        for seed in 1...4 as ClosedRange<UInt64> {
            try Self.run(EPTFormat.self, superpages: false, seed: seed)
            try Self.run(EPTEmulatedADFormat.self, superpages: false, seed: seed)
            try Self.run(RVIFormat.self, superpages: false, seed: seed)
        }
    }

    /// A dirty superpage cleared in part: demoted, the part reported and
    /// cleared, the rest still dirty — as `dirtyOperation` does.
    @Test func dirtySuperpageClearedInPart() throws {
        let a = try NestedPageTable<EPTEmulatedADFormat, HostTableAllocator>(frames: try HostTableAllocator())
        let b = try NestedPageTable<EPTEmulatedADFormat, HostTableAllocator>(frames: try HostTableAllocator())
        for t in [a, b] {
            try t.map(0, length: 4 << 20, to: 0x4000_0000, access: .readWrite)
            _ = try t.guestAccess(0x1000, .write)
        }
        var got: [UInt64] = []
        try a.scanDirty(0x10_0000, length: 0x2000, clear: true) { got.append($0) }
        #expect(got == (try b.dirtyOperation(.getAndReset, 0x10_0000, length: 0x2000)))
        #expect(got == [0x10_0000, 0x10_1000])
        var rest: [UInt64] = []
        try a.scanDirty(0, length: 4 << 20, clear: false) { rest.append($0) }
        #expect(rest == (try b.dirtyOperation(.get, 0, length: 4 << 20)))
        #expect(rest.count == 510)
    }

    @Test func withoutSuperpagesEveryLeafIs4K() throws {
        let t = try NestedPageTable<EPTFormat, HostTableAllocator>(frames: try HostTableAllocator(), superpages: false)
        try t.map(0, length: 4 << 20, to: 0x4000_0000, access: .readWrite)
        #expect(t.largestLeaf == .size4K)
        #expect(try t.lookup(0x1000)?.size == .size4K)
        try t.map(0x100_0000, length: 2 << 20, to: 0x8000_0000, access: .readWrite, populate: false)
        #expect(try t.handleFault(0x100_0000, .write) == .installed(.size4K))
        var dirty: [UInt64] = []
        _ = try t.touch(0x100_0000, .write)
        try t.scanDirty(0, length: 32 << 20, clear: true) { dirty.append($0) }
        #expect(dirty == [0x100_0000], "one 4 KiB page, not a superpage's 512")
    }
}
