import Testing
@testable import Vmem

/// Issue 17 item 2: the quantum caches take their slabs from the arena as
/// ordinary allocations, but a slab is the cache's, not the caller's: a
/// caller's free of one is refused with a typed error, and a wrong-size free
/// of a cached object names the object's size, not the slab's.
@Suite struct CacheSlabOwnershipTests {
    static let q: UInt64 = 0x1000

    func arena(checked: Bool = true) throws -> Arena {
        try Arena(name: "qc", base: 0x100_0000, size: 0x100_0000, quantum: Self.q, quantumCacheMax: 4 * Self.q,
                  debugging: .init(checkCachedFrees: checked))
    }

    /// The one allocated segment of the arena that is a slab.
    func slab(of a: Arena) throws -> Segment {
        let slabs = a.segments(.allocated).filter { $0.size == a.quantumCacheSlabSize }
        #expect(slabs.count == 1)
        return try #require(slabs.first)
    }

    @Test func aCallersFreeOfASlabIsRefused() throws {
        let a = try arena()
        let x = try a.alloc(Self.q)
        let s = try slab(of: a)
        #expect(a.quantumCacheSlabSize == 0x10000)
        let before = a.statistics
        let refused = VmemError.slabOwnedByCache(address: s.start, size: s.size)
        #expect(throws: refused) { try a.free(s.start, size: s.size) }
        #expect(throws: refused) { try a.xfree(s.start, size: s.size) }
        #expect(refused.kind == "cacheslab")
        #expect(refused.description.contains(hex(s.start)))
        // Nothing moved: the slab is still allocated, the counters are as they were.
        let after = a.statistics
        #expect(after.allocCount == before.allocCount && after.freeCount == before.freeCount)
        #expect(after.memInUse == before.memInUse && after.allocatedSegments == before.allocatedSegments)
        #expect(try slab(of: a).start == s.start)
        try a.verify()
        // The object is still the caller's, and the cache still serves.
        try a.free(x, size: Self.q)
        let y = try a.alloc(Self.q)
        try a.free(y, size: Self.q)
        try a.verify()
        // The cache gives its slab back itself: nothing leaks.
        #expect(a.destroy().isClean)
    }

    @Test func aWrongSizeFreeOfACachedObjectNamesTheObjectSize() throws {
        let a = try arena()
        // The first object sits at the slab's base, where the arena's hash
        // holds the slab: the error must still be about the object.
        var objects: [UInt64] = []
        for _ in 0..<8 { objects.append(try a.alloc(2 * Self.q)) }   // a whole slab of them
        let base = try slab(of: a).start
        let first = try #require(objects.first { $0 == base })
        let second = try #require(objects.first { $0 != base })
        for x in [first, second] {
            for wrong in [Self.q, 3 * Self.q, 4 * Self.q, 8 * Self.q, 0x10000] where x != base || wrong != 0x10000 {
                #expect(throws: VmemError.wrongSize(address: x, size: wrong, allocatedSize: 2 * Self.q)) {
                    try a.free(x, size: wrong)
                }
            }
            // At the base with the slab's size, the free names the slab.
            if x == base {
                #expect(throws: VmemError.slabOwnedByCache(address: x, size: 0x10000)) { try a.free(x, size: 0x10000) }
            }
            // xfree is not how a cached object goes back.
            #expect(throws: VmemError.self) { try a.xfree(x, size: 2 * Self.q) }
        }
        try a.verify()
        for x in objects { try a.free(x, size: 2 * Self.q) }
        // Freed twice: a bad free, whatever the slab behind it.
        #expect(throws: VmemError.badFree(address: first, size: 2 * Self.q)) { try a.free(first, size: 2 * Self.q) }
        #expect(throws: VmemError.badFree(address: second, size: 2 * Self.q)) { try a.free(second, size: 2 * Self.q) }
        try a.verify()
    }

    @Test func uncheckedCachesRefuseSlabFreesToo() throws {
        let a = try arena(checked: false)
        let x = try a.alloc(Self.q)
        let s = try slab(of: a)
        #expect(throws: VmemError.slabOwnedByCache(address: s.start, size: s.size)) { try a.free(s.start, size: s.size) }
        #expect(throws: VmemError.wrongSize(address: x, size: 8 * Self.q, allocatedSize: Self.q)) {
            try a.free(x, size: 8 * Self.q)
        }
        try a.free(x, size: Self.q)
        try a.verify()
    }

    @Test func plainSegmentsOfTheSlabSizeFreeAsBefore() throws {
        let a = try arena()
        _ = try a.alloc(Self.q)
        let p = try a.alloc(0x10000)           // the slab size, but the caller's
        try a.free(p, size: 0x10000)
        let x = try a.xalloc(0x10000, align: 0x10000)
        try a.xfree(x, size: 0x10000)
        #expect(a.segments(.allocated).count == 1)
        try a.verify()
    }

    /// A segment's walk reports `imported` only for spans (the bit marks
    /// slabs on allocated segments).
    @Test func slabMarkIsNotReportedAsImported() throws {
        let a = try arena()
        _ = try a.alloc(Self.q)
        #expect(a.segments(.allocated).allSatisfy { !$0.imported })
    }
}
