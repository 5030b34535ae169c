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
/// every step. `VMKIT_SOAK=1` adds a long soak with fresh seeds.
@Suite struct ModelBasedTests {
    struct Totals {
        var operations = 0, succeeded = 0, failed = 0, argumentErrors = 0
        var imports: UInt64 = 0
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

    static func configs(base: UInt64, count: Int, steps: Int, checkEvery: Int,
                        nextFit: Bool = false, exactNextFit: Bool = true) -> [ModelRun.Config] {
        var g = ModelRNG(seed: base)
        return (0..<count).map { _ in
            ModelRun.Config(seed: g.next(), steps: steps, checkEvery: checkEvery,
                            nextFit: nextFit, exactNextFit: exactNextFit)
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

    /// Long runs: every address compared, structures checked every 2,000 steps.
    @Test(arguments: 0..<4)
    func largeRunsCompareEveryAddress(_ batch: Int) {
        let t = Self.runAll(Self.configs(base: 0xB16_0000 + UInt64(batch), count: 5, steps: 50_000,
                                         checkEvery: 2_000, nextFit: batch == 3))
        // With the small runs, well over 1,000,000 operations per `swift test`.
        #expect(t.operations >= 5 * 50_000)
        Self.expectMeaningful(t)
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
        var g = ModelRNG(seed: UInt64(Date().timeIntervalSince1970 * 1e6))
        let deadline = Date().addingTimeInterval(seconds)
        var runs = 0, ops = 0
        print("model soak: first seed \(hex(g.state &+ 0x9E37_79B9_7F4A_7C15))")
        while Date() < deadline {
            let small = g.next() % 2 == 0
            let c = ModelRun.Config(seed: g.next(), steps: small ? 500 : 50_000, checkEvery: small ? 1 : 1_000,
                                    nextFit: g.next() % 4 == 0)
            ops += Self.runAll([c]).operations
            runs += 1
        }
        print("model soak: \(runs) runs, \(ops) operations")
    }
}
