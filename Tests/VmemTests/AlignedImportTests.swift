import Testing
@testable import Vmem

/// Issue 17 item 4: `.alignedImport` is honoured by the built-in sources, and
/// the statistics it names move.
@Suite struct AlignedImportTests {
    static let q: UInt64 = 0x1000

    /// The parent's instant fit hands out 0x1000 first: not 64 KiB aligned.
    func parent() throws -> Arena { try Arena(name: "parent", base: 0x1000, size: 0x100_0000, quantum: Self.q) }

    @Test func alignedImportAsksTheParentForAnAlignedSpan() throws {
        let p = try parent()
        let child = try Arena(name: "child", quantum: Self.q, source: .arena(p), flags: .alignedImport)
        let a = try child.xalloc(0x4000, align: 0x10000)
        #expect(a == 0x10000)
        // Exactly size + phase, rounded to the quantum: no slack to align within.
        #expect(p.size(.allocated) == 0x4000)
        #expect(child.statistics.memImported == 0x4000)
        let b = try child.xalloc(0x2000, align: 0x10000, phase: 0x1000)
        #expect(b % 0x10000 == 0x1000)
        #expect(p.size(.allocated) == 0x4000 + 0x3000)
        try child.xfree(a, size: 0x4000)
        try child.xfree(b, size: 0x2000)
        #expect(p.size(.allocated) == 0)
        try child.verify(); try p.verify()
    }

    @Test func withoutTheFlagTheImportCarriesTheSlack() throws {
        let p = try parent()
        let child = try Arena(name: "child", quantum: Self.q, source: .arena(p))
        let a = try child.xalloc(0x4000, align: 0x10000)
        #expect(a % 0x10000 == 0)
        // illumos's import: size + align - quantum, from the parent's instant fit.
        #expect(p.size(.allocated) == 0x4000 + 0x10000 - Self.q)
        try child.xfree(a, size: 0x4000)
        #expect(p.size(.allocated) == 0)
    }

    /// A child whose quantum is above its parent's asks for its own quantum
    /// as the alignment; the parent's instant fit alone would hand out a
    /// span the child cannot use.
    @Test func aCoarserChildGetsSpansAlignedToItsQuantum() throws {
        let p = try parent()
        let child = try Arena(name: "child", quantum: 0x4000, source: .arena(p))
        let a = try child.alloc(0x4000)
        #expect(a % 0x4000 == 0)
        try child.free(a, size: 0x4000)
        #expect(p.size(.allocated) == 0)
        try child.verify(); try p.verify()
    }

    /// Spans of a size the parent's quantum caches serve go back to the
    /// right place: an aligned span is a segment, a plain one a cached object.
    @Test func spansOfCachedSizesGoBackWhereTheyCameFrom() throws {
        let p = try Arena(name: "parent", base: 0x1000, size: 0x100_0000, quantum: Self.q, quantumCacheMax: 4 * Self.q)
        let aligned = try p.allocSpan(2 * Self.q, align: 0x8000)
        #expect(aligned % 0x8000 == 0)
        let plain = try p.allocSpan(2 * Self.q, align: Self.q)
        p.freeSpan(aligned, size: 2 * Self.q)
        p.freeSpan(plain, size: 2 * Self.q)
        #expect(p.statistics.memInUse == p.quantumCacheSlabSize)   // the one slab, its object back in the cache
        try p.verify()
        #expect(p.destroy().isClean)
    }
}
