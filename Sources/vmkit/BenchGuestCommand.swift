import GuestKVM
import ArgumentParser
import Foundation
import GuestWorkloads
import HostWorkloads
import Vmem

struct BenchGuestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "guest",
        abstract: "Time guest memory: GPA translation against C, page holds, the dirty harvest, a guest reserved and mapped.",
        discussion: """
        Figures (ns per operation, the median of --repeats timed repeats after one untimed round; \
        ours and its C baseline taken turn about, the order flipped every round):
          translate.N      GuestMemory.translate(gpa, 8, .read) of random GPAs inside N mappings (1, 4, 32) \
        of 2 MiB with gaps between
          translate.N.c    the C baseline over the same map (read lock, linear scan up to 8, binary search \
        above); ratio = ours / C
          hold-release     a read-write hold of one page and its release (which marks the page dirty)
          nested-fault     a guest write to a clean page of an EPT table with A/D emulation: the fault, the \
        handler setting D and granting W by compare-and-swap, the walk again (NestedPageTable.guestAccess), \
        over --faults distinct pages re-armed (D cleared) untimed before each round
          nested-fault.guest  the same through GuestMemory.touch (map lock, mapping check, table lock shared)
          dirty-harvest    a harvest of a --size guest (default 64 GiB) with 1 % of its pages \
        dirty (marked untimed by released holds, nothing populated), counted, committed and released \
        (listing the pages, the consumer's walk, is untimed), ns per harvest
          reserve-map      GuestMemory.standard(size:) of a --size guest, not populated, ns per guest; with \
        the resident growth (/proc/self/statm) untouched and after --touch pages written
        Targets: translate <= 1.2x C, hold-release <= 30 ns, nested-fault <= 100 ns, dirty-harvest <= 0.3 ms, \
        reserve-map <= 1 ms. \
        Build with -c release for meaningful numbers.
        """)

    @Flag(name: .customLong("json"), help: "Print one JSON object per figure, one per line (name, nsPerOp; ratio only where there is a C baseline).")
    var jsonFlag = false

    @Option(help: ResultFormat.help)
    var format: ResultFormat?

    /// JSON output, asked for with --json or --format json.
    var json: Bool { jsonFlag || format == .json }

    @Option(help: "Timed repeats of each workload (1 to 10000).", transform: CountArgument.parse)
    var repeats: Int = GuestBenchmarkSuite.Options().repeats

    @Option(help: "Translations per repeat.", transform: CountArgument.parse)
    var lookups: Int = GuestBenchmarkSuite.Options().lookups

    @Option(help: "Hold + release pairs per repeat.", transform: CountArgument.parse)
    var holds: Int = GuestBenchmarkSuite.Options().holds

    @Option(help: "A/D emulation faults per repeat of nested-fault (1 to 4096).", transform: CountArgument.parse)
    var faults: Int = GuestBenchmarkSuite.Options().faults

    @Option(help: "Guest size of the dirty harvest and of reserve-map, a SIZE such as 64M or 64G (a multiple of 4096).")
    var size: String = "64G"

    @Option(help: "Guests made per repeat of reserve-map.", transform: CountArgument.parse)
    var guests: Int = GuestBenchmarkSuite.Options().guests

    @Option(help: "Pages written for the resident-memory report of reserve-map.", transform: CountArgument.parse)
    var touch: Int = GuestBenchmarkSuite.Options().pagesTouched

    @Option(help: "Run only this workload: \(BenchWorkloadChoice.names(GuestBenchmarkSuite.Workload.self)).")
    var workload: String?

    @Option(help: "Run on this CPU (the calling thread is pinned before any workload exists). Unpinned when omitted.")
    var cpu: Int?

    @Option(name: .customLong("kvm-runs"), help: "Runs of the KVM and snapshot figures (VM creation with 4 GiB registered, KVM's dirty log over 4 GiB, diff and full snapshot writes, lazy restore of 1 and 8 GiB, a 16 MiB working set prefetched against touched on demand: each already interleaved with its baseline), after the workloads when no --workload is given; 0 leaves them out.", transform: CountArgument.parse)
    var kvmRuns: Int = 3

    @Option(name: .customLong("snapshot-dir"), help: ArgumentHelp("Where the snapshot figures write their files (a tmpfs keeps the disk out of it).", valueName: "directory"))
    var snapshotDirectory: String = "/dev/shm"

    func options() throws -> GuestBenchmarkSuite.Options {
        var o = GuestBenchmarkSuite.Options()
        o.repeats = repeats
        o.lookups = lookups
        o.holds = holds
        o.faults = faults
        do {
            o.harvestSize = try SizeParser.parse(size)
        } catch {
            throw ValidationError("--size: \(error)")
        }
        o.guestSize = o.harvestSize
        o.guests = guests
        o.pagesTouched = touch
        do throws(GuestWorkloadError) {
            try o.validate()
        } catch {
            throw ValidationError(error.description)
        }
        return o
    }

    func validate() throws {
        _ = try options()
        try BenchCPU.validate(cpu)
        let _: [GuestBenchmarkSuite.Workload] = try BenchWorkloadChoice.chosen(workload)
    }

    func run() throws {
        let o = try options()
        let suite = try GuestBenchmarkSuite(options: o)
        let chosen: [GuestBenchmarkSuite.Workload] = try BenchWorkloadChoice.chosen(workload)
        let showProgress = isatty(STDERR_FILENO) == 1
        try BenchCPU.pin(cpu, command: "vmkit bench guest")
        if !json {
            print("vmkit bench guest: median of \(o.repeats) repeats after \(o.warmup) untimed round, turn about with the C baselines; "
                  + (cpu.map { "on CPU \($0)" } ?? "unpinned (\(CPUAffinity.onlineCPUs) CPUs)"))
            print("  translate: \(o.lookups) lookups per repeat at \(o.mappingCounts.map(String.init).joined(separator: ", ")) mappings; "
                  + "hold-release: \(o.holds) pairs; nested-fault: \(o.faults) faults; dirty-harvest: \(BenchAsCommand.size(o.harvestSize)) guest, 1% dirty; "
                  + "reserve-map: \(BenchAsCommand.size(o.guestSize)) x \(o.guests) guests")
            print(BenchAsCommand.header)
            fflush(nil)
        }
        try BenchSuiteLoop.run(chosen, command: "vmkit bench guest", { (w, progress) throws(GuestWorkloadError) in
            try suite.run(w, progress: progress)
        }, emit: { figures in
            for f in figures {
                if json { print(f.jsonLine); continue }
                print(BenchAsCommand.row(f.figure))
                if let m = f.residentGrowthMapped, let t = f.residentGrowthTouched, let p = f.pagesTouched {
                    print("  resident growth of one guest: \(m) bytes mapped, \(t) bytes after \(p) pages (\(p * 4096) bytes) written")
                }
            }
        })
        guard workload == nil, kvmRuns > 0 else { return }
        let kvm: (figures: [GuestFigure], notes: [String])
        do throws(KVMError) {
            kvm = try BenchKVMFigures.run(directory: snapshotDirectory, runs: kvmRuns) { text in
                if showProgress { BenchAsCommand.progress(text) }
            }
        } catch {
            if showProgress { BenchAsCommand.progress(nil) }
            BenchAsCommand.stderr("vmkit bench guest: KVM and snapshot figures: \(error)\n")
            throw ExitCode.failure
        }
        if showProgress { BenchAsCommand.progress(nil) }
        for f in kvm.figures { print(json ? f.jsonLine : BenchAsCommand.row(f.figure)) }
        for n in kvm.notes { BenchAsCommand.stderr("vmkit bench guest: \(n)\n") }
        fflush(nil)
    }
}
