import Testing
import Synchronization
@testable import Vmem

@Suite struct ArenaFeatureTests {
    @Test func importFailureIsReportedAndCounted() throws {
        let source = ArenaSource(name: "broken", quantum: 0x1000,
                                 import: { (size, _) throws(VmemError) in throw .exhausted(arena: "broken", size: size) },
                                 release: { _, _ in })
        let a = try Arena(name: "child", quantum: 0x1000, source: source)
        #expect(throws: VmemError.importFailed(arena: "child", size: 0x1000)) { try a.alloc(0x1000) }
        #expect(a.statistics.failCount == 1)
        try a.verify()
    }

    @Test func enlargingImportIsUsedWhole() throws {
        // vmem_xcreate: the source may hand back more than asked.
        let released = Atomic<UInt64>(0)
        let source = ArenaSource(name: "big", quantum: 0x1000,
                                 import: { (size, _) throws(VmemError) in (0x4000_0000, size * 4) },
                                 release: { _, size in released.store(size, ordering: .relaxed) })
        let a = try Arena(name: "x", quantum: 0x1000, source: source)
        let p = try a.alloc(0x2000)
        #expect(p == 0x4000_0000)
        #expect(a.size(.total) == 0x8000)
        #expect(try a.alloc(0x2000) == 0x4000_2000)   // no second import
        #expect(a.statistics.importCount == 1)
        try a.free(p, size: 0x2000)
        try a.free(0x4000_2000, size: 0x2000)
        #expect(released.load(ordering: .relaxed) == 0x8000)
        try a.verify()
    }

    @Test func misbehavingSourceIsRefused() throws {
        let source = ArenaSource(name: "liar", quantum: 0x1000,
                                 import: { (size, _) throws(VmemError) in (0x123, size) },   // misaligned
                                 release: { _, _ in })
        let a = try Arena(name: "x", quantum: 0x1000, source: source)
        #expect(throws: VmemError.importFailed(arena: "x", size: 0x1000)) { try a.alloc(0x1000) }
        try a.verify()
    }

    @Test func importHonoursAlignmentAndPhase() throws {
        let parent = try Arena(name: "p", base: 0x1000, size: 1 << 30, quantum: 0x1000)
        let child = try Arena(name: "c", quantum: 0x1000, source: .arena(parent))
        let x = try child.xalloc(0x3000, align: 0x10000, phase: 0x2000)
        #expect(x % 0x10000 == 0x2000)
        // aphase = align - quantum (phase not a multiple of aq = 4K? it is: align - aq).
        #expect(child.statistics.memImported == p2roundup(0x3000 + 0x10000 - 0x1000, 0x1000))
        try child.verify(); try parent.verify()
    }

    @Test func auditRecordsThreadAndStack() throws {
        let a = try Arena(name: "aud", base: 0x1000, size: 0x100000, quantum: 0x1000, debugging: .init(audit: true))
        let p = try a.alloc(0x2000)
        let seg = a.segments(.allocated).first
        #expect(seg?.start == p)
        let audit = try #require(seg?.audit)
        #expect(audit.thread != 0)
        #expect(audit.timestamp > 0)
        #expect(!audit.stack.isEmpty && audit.stack.count <= AuditRecord.maximumDepth)
        try a.free(p, size: 0x2000)
        #expect(a.segments(.allocated).isEmpty)
    }

    @Test func failureInjectionHitsAboutTheMeanRate() throws {
        let a = try Arena(name: "mtbf", base: 0x1000, size: 1 << 40, quantum: 0x1000,
                          debugging: .init(meanTimeBetweenFailures: 10, failureSeed: 7))
        var fails = 0
        for _ in 0..<10_000 {
            do { let p = try a.alloc(0x1000); try a.free(p, size: 0x1000) }
            catch VmemError.injectedFailure { fails += 1 }
        }
        #expect(fails > 800 && fails < 1200)
        #expect(a.statistics.failCount == UInt64(fails))
        // Sleeping allocations are never failed on purpose.
        for _ in 0..<200 { let p = try a.alloc(0x1000, wait: .sleep); try a.free(p, size: 0x1000) }
        try a.verify()
    }

    @Test func hashGrowsAndShrinks() throws {
        let a = try Arena(name: "h", base: 0x1000, size: 1 << 40, quantum: 0x1000)
        #expect(a.statistics.hashSize == 16)
        var live: [UInt64] = []
        for _ in 0..<10_000 { live.append(try a.alloc(0x1000)) }
        let grown = a.statistics.hashSize
        #expect(grown >= 8192 && grown <= 32768)
        for p in live { try a.free(p, size: 0x1000) }
        #expect(a.statistics.hashSize < grown / 4)
        try a.verify()
    }

    @Test func containsAndSizes() throws {
        let a = try Arena(name: "c", base: 0x10000, size: 0x10000, quantum: 0x1000)
        try a.add(base: 0x40000, size: 0x4000)
        #expect(a.contains(0x10000))
        #expect(a.contains(0x1F000, size: 0x1000))
        #expect(!a.contains(0x1F000, size: 0x2000))
        #expect(!a.contains(0x30000))
        #expect(a.contains(0x43FFF))
        #expect(!a.contains(UInt64.max, size: 2))
        _ = try a.alloc(0x3000)
        #expect(a.size(.allocated) == 0x3000 && a.size(.total) == 0x14000 && a.size(.free) == 0x11000)
        #expect(a.segments(.spans).count == 2)
        #expect(a.segments(.markers).map(\.kind) == [.rotor])
    }

    @Test func endAllocationHonoursConstraints() throws {
        func fresh() throws -> Arena { try Arena(name: "e", base: 0x0, size: 0x100000, quantum: 0x1000) }
        // Highest 8K-aligned slot below maxaddr that does not cross 64K.
        #expect(try fresh().xalloc(0x3000, align: 0x2000, nocross: 0x10000, maxaddr: 0x2F000, fromEnd: true) == 0x2C000)
        // 0x4E000 would cross 0x50000 (illumos would return it).
        #expect(try fresh().xalloc(0x4000, align: 0x4000, nocross: 0x10000, maxaddr: 0x52000, fromEnd: true) == 0x4C000)
        // Phase is kept when moving up: highest a ≡ 0x1000 (mod 0x4000) with a + 0x2000 <= 0x40000.
        #expect(try fresh().xalloc(0x2000, align: 0x4000, phase: 0x1000, minaddr: 0x20000, maxaddr: 0x40000, fromEnd: true) == 0x3D000)
        #expect(try fresh().alloc(0x1000, fromEnd: true) == 0xFF000)
        // The chosen segment is the one the policy picks; the end applies within it.
        let a = try fresh()
        let x = try a.xalloc(0x3000, align: 0x2000, nocross: 0x10000, maxaddr: 0x2F000, fromEnd: true)
        #expect(x == 0x2C000)
        // Lowest certain list holds [0, 0x2C000) (list 17) before [0x2F000, 0x100000) (list 19).
        #expect(try a.alloc(0x4000, fromEnd: true) == 0x28000)
        try a.verify()
    }

    @Test func verifyDetectsCorruption() throws {
        let a = try Arena(name: "v", base: 0x1000, size: 0x10000, quantum: 0x1000)
        let p = try a.alloc(0x2000)
        try a.verify()
        // Break coverage: shrink the allocated segment behind the arena's back.
        let t = a.core.pointee.hashFind(p)
        a.core.pointee.tags[Int(t)].end -= 0x1000
        #expect(throws: VmemError.self) { try a.verify() }
        a.core.pointee.tags[Int(t)].end += 0x1000
        try a.verify()
        // Break the freemap.
        a.core.pointee.freemap ^= 1 << 40
        #expect(throws: VmemError.self) { try a.verify() }
        a.core.pointee.freemap ^= 1 << 40
        try a.verify()
    }

    @Test func spanAtTopOfAddressSpace() throws {
        let a = try Arena(name: "top", base: 0xFFFF_FFFF_FFFF_0000, size: 0xF000, quantum: 0x1000)
        let x = try a.xalloc(0x1000, fromEnd: true)
        #expect(x == 0xFFFF_FFFF_FFFF_E000)
        #expect(throws: VmemError.overflow(base: 0xFFFF_FFFF_FFFF_0000, size: 0x10000)) {
            try a.add(base: 0xFFFF_FFFF_FFFF_0000, size: 0x10000)
        }
        #expect(throws: VmemError.overflow(base: UInt64.max - 0xFFF, size: 0x2000)) {
            try a.free(UInt64.max - 0xFFF, size: 0x2000)
        }
        try a.verify()
    }
}

@Suite struct IdentifierArenaRulesTests {
    @Test func identifierAndMemoryArenasDoNotMix() throws {
        let ids = try Arena(name: "ids", base: 1, size: 100, quantum: 1, flags: .identifier)
        let mem = try Arena(name: "mem", base: 0x1000, size: 0x10000, quantum: 0x1000)
        #expect(throws: VmemError.notSupported("memory arena child cannot import from identifier arena ids")) {
            _ = try Arena(name: "child", quantum: 1, source: .arena(ids))
        }
        #expect(throws: VmemError.notSupported("identifier arena child cannot import from memory arena mem")) {
            _ = try Arena(name: "child", quantum: 0x1000, source: .arena(mem), flags: .identifier)
        }
        let sub = try Arena(name: "sub", quantum: 1, source: .arena(ids), flags: .identifier)
        _ = try sub.alloc(3)
        let report = sub.destroy()
        #expect(report.description == "vmem_destroy('sub'): leaked 3 identifiers in 1 segments")
        #expect(ids.size(.allocated) == 0)
    }
}
