import Testing
@testable import Vmem

/// Issue 17 item 12: `verify()` is the oracle of every fuzz and model test,
/// so each structure it checks is broken on purpose (through the test-only
/// `corruptForTesting`) and each break must be caught, by the message that
/// names it.
@Suite struct VerifyOracleTests {
    static let q: UInt64 = 0x1000

    /// An arena with allocated and free segments, two spans, and objects
    /// cached in a CPU magazine; verify passes on it.
    func arena() throws -> Arena {
        let a = try Arena(name: "oracle", base: 0x100_0000, size: 0x100_0000, quantum: Self.q, quantumCacheMax: 2 * Self.q)
        try a.add(base: 0x400_0000, size: 0x10_0000)
        var keep: [UInt64] = []
        for i in 0..<64 {
            let x = try a.alloc(UInt64(3 + i % 5) * Self.q)
            if i % 3 == 0 { try a.free(x, size: UInt64(3 + i % 5) * Self.q) } else { keep.append(x) }
        }
        // Cached objects: some held, some back in the CPU's magazine.
        let objects = try (0..<6).map { _ in try a.alloc(Self.q) }
        for o in objects.prefix(3) { try a.free(o, size: Self.q) }
        try a.verify()
        return a
    }

    @Test(arguments: [
        (Arena.Corruption.tag, "should start at"),
        (.freeList, "free list"),
        (.freemap, "freemap bit"),
        (.hash, "missing from the allocated hash"),
        (.span, "runs past its span end"),
        (.statistic, "memInUse"),
        (.magazine, "cached twice"),
    ])
    func eachCorruptionIsCaught(_ damage: Arena.Corruption, _ phrase: String) throws {
        let a = try arena()
        #expect(a.corruptForTesting(damage))
        var caught: VmemError? = nil
        do throws(VmemError) { try a.verify() } catch { caught = error }
        let error = try #require(caught, "verify() missed a corrupted \(damage)")
        guard case .invariantViolated(let message) = error else {
            Issue.record("verify() threw \(error), not invariantViolated")
            return
        }
        #expect(message.hasPrefix("arena oracle: "))
        #expect(message.contains(phrase), "\(damage): \(message)")
    }

    @Test func everyKindOfCorruptionIsTested() {
        // The argument list above covers every case of the hook.
        #expect(Arena.Corruption.allCases.count == 7)
    }
}
