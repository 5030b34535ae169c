import Foundation
import Testing
import Vmem

/// The real ``Arena`` and the ``ReferenceArena`` run the same random
/// sequences side by side (vmem.md §2: the same calls must give the same
/// addresses). Small runs check everything after every step; large runs
/// compare every result and check the structures now and then.
///
/// A failure prints the seed and step; `VMKIT_MODEL_SEED=0x... swift test
/// --filter ModelBasedTests/reproduce` replays one seed with a check after
/// every step. `VMKIT_SOAK=1` adds a long soak with fresh seeds
/// (`VMKIT_SOAK_SECONDS`, default 600; `VMKIT_SOAK_SEED` to replay one).
@Suite struct ModelBasedTests {
    struct Totals {
        var operations = 0, succeeded = 0, failed = 0, argumentErrors = 0
        var imports: UInt64 = 0
        var tagRefills: UInt64 = 0
    }

    /// Runs `configs`, recording the first failure of each.
    @discardableResult
    static func runAll(_ configs: [ModelRun.Config]) -> Totals {
        var t = Totals()
        for c in configs {
            var run = ModelRun(c)
            if let failure = run.run() {
                Issue.record(Comment(rawValue: failure))
            }
            t.operations += run.operations
            t.succeeded += run.allocationsSucceeded
            t.failed += run.allocationsFailed
            t.argumentErrors += run.argumentErrors
            t.imports += run.imports
            t.tagRefills += run.tagRefills
        }
        if ProcessInfo.processInfo.environment["VMKIT_MODEL_VERBOSE"] == "1" { print(t) }
        return t
    }

    /// A run where nearly everything fails, or nothing is ever imported,
    /// would compare little: the mix must stay meaningful.
    static func expectMeaningful(_ t: Totals) {
        #expect(t.succeeded > 2 * t.failed, "\(t)")
        #expect(t.failed > 0 && t.argumentErrors > 0 && t.imports > 0, "\(t)")
    }

    static func configs(base: UInt64, count: Int, steps: Int, checkEvery: Int, nextFit: Bool = false,
                        exactNextFit: Bool = true, quantumCache: Bool = false) -> [ModelRun.Config] {
        var g = ModelRNG(seed: base)
        return (0..<count).map { _ in
            ModelRun.Config(seed: g.next(), steps: steps, checkEvery: checkEvery,
                            nextFit: nextFit, exactNextFit: exactNextFit, quantumCache: quantumCache)
        }
    }

    /// Many short runs, everything checked after every step.
    @Test(arguments: 0..<4)
    func smallRunsCheckedEveryStep(_ batch: Int) {
        let t = Self.runAll(Self.configs(base: 0x5EED_0000 + UInt64(batch), count: 80, steps: 300, checkEvery: 1))
        Self.expectMeaningful(t)
    }

    /// Next fit in short runs, everything checked after every step.
    @Test func smallNextFitRunsCheckedEveryStep() {
        let t = Self.runAll(Self.configs(base: 0x0E47_F177, count: 100, steps: 300, checkEvery: 1, nextFit: true))
        Self.expectMeaningful(t)
    }

    /// Quantum caches in front of the arena: not exact, so checked for
    /// overlap, by `verify()`, and for a clean destroy after draining.
    @Test func quantumCacheRunsCheckedLoosely() {
        let t = Self.runAll(Self.configs(base: 0x0CAC_4E00, count: 40, steps: 400, checkEvery: 1, quantumCache: true))
        #expect(t.succeeded > 2 * t.failed, "\(t)")
    }

    /// Long runs: every address compared, structures checked every 2,000 steps.
    @Test(arguments: 0..<4)
    func largeRunsCompareEveryAddress(_ batch: Int) {
        let t = Self.runAll(Self.configs(base: 0xB16_0000 + UInt64(batch), count: 5, steps: 50_000,
                                         checkEvery: 2_000, nextFit: batch == 3))
        // With the small runs, well over 1,000,000 operations per `swift test`.
        #expect(t.operations >= 5 * 50_000)
        Self.expectMeaningful(t)
        // Arenas outgrow their first tags only in long runs.
        #expect(t.tagRefills > 0, "some runs must refill boundary tags from a tag arena: \(t)")
    }

    /// Requests of 2^62 bytes and more in a span covering almost all of
    /// [0, 2^64): highbit 64 (no list is certain, so instant fit falls back
    /// to the might-fit list 63), list 63, and placements whose arithmetic
    /// would wrap. Every result and the segment list after each step must
    /// match the model.
    @Test func hugeRequestsMatchTheModel() throws {
        let q: UInt64 = 0x1000
        let end = UInt64.max / q * q            // 2^64 - q
        let real = try Arena(name: "huge", base: q, size: end - q, quantum: q)
        let ref = try ReferenceArena(name: "huge", base: q, size: end - q, quantum: q)
        var live: [(UInt64, UInt64)] = []
        func both(_ what: String, _ size: UInt64, _ r: () throws(VmemError) -> UInt64,
                  _ m: () throws(VmemError) -> UInt64) throws {
            let a = Result { () throws(VmemError) in try r() }, b = Result { () throws(VmemError) in try m() }
            #expect(a == b, "\(what)")
            if case .success(let x) = a, case .success = b { live.append((x, size)) }
            try real.verify()
            #expect(ModelRun.walkOf(real) == ref.walk(), "\(what)")
        }
        let half: UInt64 = 1 << 63
        try both("alloc half+q", half + q, { () throws(VmemError) in try real.alloc(half + q) },
                 { () throws(VmemError) in try ref.alloc(half + q) })
        try both("alloc half", half, { () throws(VmemError) in try real.alloc(half) },
                 { () throws(VmemError) in try ref.alloc(half) })
        try both("alloc 3<<61 end", 3 << 61, { () throws(VmemError) in try real.alloc(3 << 61, fromEnd: true) },
                 { () throws(VmemError) in try ref.alloc(3 << 61, fromEnd: true) })
        try both("alloc 1<<62 best end", 1 << 62, { () throws(VmemError) in try real.alloc(1 << 62, policy: .bestFit, fromEnd: true) },
                 { () throws(VmemError) in try ref.alloc(1 << 62, policy: .bestFit, fromEnd: true) })
        for (a, size) in live { try real.free(a, size: size); try ref.free(a, size: size) }
        live = []
        try both("xalloc 1<<62 align=2^62 phase=q end", 1 << 62,
                 { () throws(VmemError) in try real.xalloc(1 << 62, align: 1 << 62, phase: q, fromEnd: true) },
                 { () throws(VmemError) in try ref.xalloc(1 << 62, align: 1 << 62, phase: q, fromEnd: true) })
        try both("xalloc 1<<61 nocross=2^63 first", 1 << 61,
                 { () throws(VmemError) in try real.xalloc(1 << 61, nocross: half, minaddr: half - q, policy: .firstFit) },
                 { () throws(VmemError) in try ref.xalloc(1 << 61, nocross: half, minaddr: half - q, policy: .firstFit) })
        try both("xalloc half+q best", half + q,
                 { () throws(VmemError) in try real.xalloc(half + q, policy: .bestFit) },
                 { () throws(VmemError) in try ref.xalloc(half + q, policy: .bestFit) })
        try both("alloc q next", q, { () throws(VmemError) in try real.alloc(q, policy: .nextFit) },
                 { () throws(VmemError) in try ref.alloc(q, policy: .nextFit) })
        #expect(live.count >= 3)
        for (a, size) in live { try real.free(a, size: size); try ref.free(a, size: size) }
        try real.verify()
        #expect(ModelRun.walkOf(real) == ref.walk())
        #expect(real.size(.allocated) == 0)
    }

    /// One seed, checked after every step (set VMKIT_MODEL_SEED, optionally
    /// VMKIT_MODEL_STEPS and VMKIT_MODEL_NEXTFIT=1).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["VMKIT_MODEL_SEED"] != nil))
    func reproduce() {
        let env = ProcessInfo.processInfo.environment
        let seedText = env["VMKIT_MODEL_SEED"] ?? "0"
        let seed = seedText.hasPrefix("0x") ? UInt64(seedText.dropFirst(2), radix: 16) : UInt64(seedText)
        let steps = Int(env["VMKIT_MODEL_STEPS"] ?? "") ?? 45_000
        Self.runAll([ModelRun.Config(seed: seed ?? 0, steps: steps, checkEvery: 1,
                                     nextFit: env["VMKIT_MODEL_NEXTFIT"] == "1")])
    }

    /// Fresh seeds for as long as VMKIT_SOAK_SECONDS says (default 600).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["VMKIT_SOAK"] == "1"))
    func soak() {
        let env = ProcessInfo.processInfo.environment
        let seconds = Double(env["VMKIT_SOAK_SECONDS"] ?? "") ?? 600
        let soakSeed = env["VMKIT_SOAK_SEED"].flatMap { UInt64($0.replacingOccurrences(of: "0x", with: ""), radix: 16) }
            ?? UInt64(Date().timeIntervalSince1970 * 1e6)
        var g = ModelRNG(seed: soakSeed)
        let deadline = Date().addingTimeInterval(seconds)
        var runs = 0, ops = 0
        // Each failing run names its own seed; this one replays the whole soak.
        print("model soak: VMKIT_SOAK_SEED=\(hex(soakSeed))")
        while Date() < deadline {
            let small = g.next() % 2 == 0
            let mode = g.next() % 8
            let c = ModelRun.Config(seed: g.next(), steps: small ? 500 : 50_000, checkEvery: small ? 1 : 1_000,
                                    nextFit: mode < 2, quantumCache: mode == 7)
            ops += Self.runAll([c]).operations
            runs += 1
        }
        print("model soak: \(runs) runs, \(ops) operations")
    }
}
