import ArgumentParser
import Foundation
import Vmem
import VmemWorkloads

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run the standard benchmark workloads.",
        subcommands: [BenchVmemCommand.self, BenchAsCommand.self, BenchGuestCommand.self])
}

struct BenchVmemCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vmem",
        abstract: "Time the vmem workloads of vmem.md §6 (ns per free+alloc pair, high-water ratio).",
        discussion: """
        Arena base 0x1000, size 2^40, quantum 4096; 10,000 live allocations of (1 + r % K) pages \
        from splitmix64 seeded with 42; each operation frees a random slot and allocates a new \
        size into it. 'threads' runs one loop per thread with 1 and with 2 threads, timed turn about \
        in --rounds rounds (1 and 2 threads alternate every few milliseconds; --rounds 1 times \
        them one after the other). --repeat N times N blocks of --ops pairs one after another in \
        one run of a single-thread workload and reports the median block (nsPerPair, \
        opsPerSecond), with the fastest and slowest (nsPerPairMin, nsPerPairMax). Build with \
        -c release for meaningful numbers. mallocsPerOp is null here; the Benchmarks/ package \
        measures it with a malloc interposer.
        """)

    @Option(help: "instant, best, small, small-nocache or threads; all when omitted.")
    var workload: String?

    @Option(help: "Timed free+alloc pairs per thread.", transform: CountArgument.parse)
    var ops: Int = StandardWorkload.timedOps

    @Option(help: "Untimed warm-up pairs per thread.", transform: CountArgument.parse)
    var warmup: Int = StandardWorkload.warmupOps

    @Flag(help: "Run the quantum caches without their double-free check (ArenaDebugging.checkCachedFrees = false).")
    var uncheckedCacheFrees = false

    @Flag(help: "Control for the threads workload: give each thread an arena of its own, so that nothing is shared and the scaling measured is the machine's.")
    var arenaPerThread = false

    @Option(help: "threads workload: time 1 and 2 threads turn about in this many rounds of one run, so that the machine's slow and fast seconds fall on both alike; 1 times each in one piece, one after the other.", transform: CountArgument.parse)
    var rounds: Int = 20

    @Option(name: .customLong("repeat"), help: "Single-thread workloads: time this many blocks of --ops pairs in one run and report the median block, with the fastest and slowest (the threads workload interleaves with --rounds instead).", transform: CountArgument.parse)
    var repeats: Int = 1

    @Flag(name: .customLong("json"), help: "Print one JSON object per run.")
    var jsonFlag = false

    @Option(help: ResultFormat.help)
    var format: ResultFormat?

    /// JSON output, asked for with --json or --format json.
    var json: Bool { jsonFlag || format == .json }

    func validate() throws {
        let _: [StandardWorkload] = try BenchWorkloadChoice.chosen(workload)
        if ops <= 0 { throw ValidationError("--ops must be positive, got \(ops)") }
        if warmup < 0 { throw ValidationError("--warmup must not be negative, got \(warmup)") }
        if rounds <= 0 { throw ValidationError("--rounds must be positive, got \(rounds)") }
        if repeats <= 0 || repeats > 1000 { throw ValidationError("--repeat must be between 1 and 1000, got \(repeats)") }
        if repeats > 1 && workload == StandardWorkload.threads.rawValue {
            throw ValidationError("--repeat \(repeats) applies to the single-thread workloads; the threads workload interleaves its runs with --rounds")
        }
    }

    func run() throws {
        let chosen: [StandardWorkload] = try BenchWorkloadChoice.chosen(workload)
        let debugging = ArenaDebugging(checkCachedFrees: !uncheckedCacheFrees)
        for w in chosen {
            if w == .threads && rounds > 1 {
                for r in try WorkloadRunner.runInterleaved(w, ops: ops, warmup: warmup, rounds: rounds,
                                                           debugging: debugging, arenaPerThread: arenaPerThread) {
                    report(w, r)
                }
                continue
            }
            for t in w.threadCounts {
                report(w, try WorkloadRunner.run(w, threads: t, ops: ops, warmup: warmup, debugging: debugging,
                                                 arenaPerThread: arenaPerThread, repeats: t == 1 && w != .threads ? repeats : 1))
            }
        }
    }

    func report(_ w: StandardWorkload, _ r: WorkloadResult) {
        if json {
            print(r.json)
        } else {
            let name = w.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0)
            print(name + String(format: "threads=%d  %8.1f ns/pair  %12.0f ops/s  high-water %.2fx  %5.1f B metadata/segment (arena %.1f + caches %.1f)  (%d pairs)",
                                r.threads, r.nsPerPair, r.opsPerSecond, r.highWaterRatio, r.metadataBytesPerSegment,
                                r.arenaMetadataBytesPerSegment, r.cacheMetadataBytesPerSegment, r.opsTimed)
                  + (r.sharedSlabFraction.map { String(format: "  %.1f%% of slabs shared", $0 * 100) } ?? "")
                  + (r.rounds > 1 ? "  (\(r.rounds) rounds turn about)" : "")
                  + (r.repeats > 1 ? String(format: "  (median of %d blocks, %.1f-%.1f)", r.repeats, r.nsPerPairMin, r.nsPerPairMax) : ""))
        }
        fflush(nil)
    }
}
