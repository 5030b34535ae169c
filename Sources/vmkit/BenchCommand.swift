import ArgumentParser
import Foundation
import Vmem
import VmemWorkloads

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run the standard benchmark workloads.",
        subcommands: [BenchVmemCommand.self])
}

struct BenchVmemCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vmem",
        abstract: "Time the vmem workloads of vmem.md §6 (ns per free+alloc pair, high-water ratio).",
        discussion: """
        Arena base 0x1000, size 2^40, quantum 4096; 10,000 live allocations of (1 + r % K) pages \
        from splitmix64 seeded with 42; each operation frees a random slot and allocates a new \
        size into it. 'threads' runs one loop per thread with 1 and then 2 threads. Build with \
        -c release for meaningful numbers. mallocsPerOp is null here; the Benchmarks/ package \
        measures it with a malloc interposer.
        """)

    @Option(help: "instant, best, small, small-nocache or threads; all when omitted.")
    var workload: String?

    @Option(help: "Timed free+alloc pairs per thread.")
    var ops: Int = StandardWorkload.timedOps

    @Option(help: "Untimed warm-up pairs per thread.")
    var warmup: Int = StandardWorkload.warmupOps

    @Flag(help: "Run the quantum caches without their double-free check (ArenaDebugging.checkCachedFrees = false).")
    var uncheckedCacheFrees = false

    @Flag(help: "Control for the threads workload: give each thread an arena of its own, so that nothing is shared and the scaling measured is the machine's.")
    var arenaPerThread = false

    @Flag(help: "Print one JSON object per run.")
    var json = false

    func validate() throws {
        if let workload, StandardWorkload(rawValue: workload) == nil {
            throw ValidationError("unknown workload '\(workload)'; expected one of \(StandardWorkload.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if ops <= 0 { throw ValidationError("--ops must be positive, got \(ops)") }
        if warmup < 0 { throw ValidationError("--warmup must not be negative, got \(warmup)") }
    }

    func run() throws {
        let chosen = workload.map { [StandardWorkload(rawValue: $0)!] } ?? StandardWorkload.allCases
        for w in chosen {
            for t in w.threadCounts {
                let r = try WorkloadRunner.run(w, threads: t, ops: ops, warmup: warmup,
                                               debugging: ArenaDebugging(checkCachedFrees: !uncheckedCacheFrees),
                                               arenaPerThread: arenaPerThread)
                if json {
                    print(r.json)
                } else {
                    let name = w.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0)
                    print(name + String(format: "threads=%d  %8.1f ns/pair  %12.0f ops/s  high-water %.2fx  %5.1f B metadata/segment  (%d pairs)",
                                        t, r.nsPerPair, r.opsPerSecond, r.highWaterRatio, r.metadataBytesPerSegment, r.opsTimed)
                          + (r.sharedSlabFraction.map { String(format: "  %.1f%% of slabs shared", $0 * 100) } ?? ""))
                }
                fflush(nil)
            }
        }
    }
}
