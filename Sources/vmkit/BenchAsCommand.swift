import ArgumentParser
import Foundation
import HostWorkloads
import Vmem

struct BenchAsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "as",
        abstract: "Time the host-memory workloads: userfaultfd faults against C, lazy fill, map+unmap, segat.",
        discussion: """
        Figures (ns per operation, the median of --repeats timed repeats after one untimed round; \
        ours and its C baseline taken turn about, the order flipped every round: A B, B A, ...):
          fault.zero-fill      a 4 KiB write fault on anonymous segvn, zero-filled by the driver through \
        userfaultfd (handler thread -> address space read lock + segat -> driver -> UFFDIO_COPY)
          fault.copy-file      the same on a lazy-fill segment with read-ahead 4096: each fault copies one \
        page of a file in the page cache
          *.c                  the C baseline timed turn about with the figure above it (one thread: read \
        the event, UFFDIO_COPY; for the file, from a fresh mapping of the same file); ratio = ours / C
          fault.kernel-anonymous  the kernel's own first-touch fault (MADV_NOHUGEPAGE), for scale
          map-unmap            HostAddressSpace.mapAnonymous + unmap of 2 MiB, per pair
          segat                AddressSpace.segat among 10,000 segments with the hint pointing elsewhere
          segat.lock-held      the same lookups with the reader lock taken once around the repeat
          segat.borrowed       AddressSpace.withSegment(at:): the lock per lookup, the segment borrowed (no retain)
          lazy-fill            a region of --lazy-size filled from a cached file (read-ahead 64 KiB), one \
        byte read per page; ns per page and GB/s (10^9 bytes)
        Targets: faults <= 1.2x C, lazy fill >= 2 GB/s, map+unmap <= 10 us, segat <= 50 ns. \
        On a virtual machine a round trip across CPUs costs what the hypervisor makes it cost at \
        the moment; --cpu N runs every thread on one CPU, which times the code on both sides. \
        The page-cache files are made under /tmp (written, flushed, read once; unlinked at once). \
        Needs userfaultfd (root, vm.unprivileged_userfaultfd=1 or /dev/userfaultfd). Build with \
        -c release for meaningful numbers.
        """)

    @Flag(name: .customLong("json"), help: "Print one JSON object per figure, one per line (name, nsPerOp; ratio only where there is a C baseline; gbPerSecond for the lazy fill).")
    var jsonFlag = false

    @Option(help: ResultFormat.help)
    var format: ResultFormat?

    /// JSON output, asked for with --json or --format json.
    var json: Bool { jsonFlag || format == .json }

    @Option(help: "Timed repeats of each workload, taken turn about with its C baseline, the order flipped every round (1 to 10000).", transform: CountArgument.parse)
    var repeats: Int = HostBenchmarkSuite.Options().repeats

    @Option(help: "Pages faulted per repeat by the two fault workloads (1 to 4194304).", transform: CountArgument.parse)
    var pages: Int = HostBenchmarkSuite.Options().pages

    @Option(help: "Bytes of the lazy fill, a SIZE such as 64M or 1G (a multiple of 4096, at most 64G).")
    var lazySize: String = "1G"

    @Option(help: "Map and unmap pairs per repeat of the map-unmap workload.", transform: CountArgument.parse)
    var mapPairs: Int = HostBenchmarkSuite.Options().mapPairs

    @Option(help: "Lookups per repeat of the segat workload.", transform: CountArgument.parse)
    var lookups: Int = HostBenchmarkSuite.Options().lookups

    @Option(help: "Run only this workload: \(BenchWorkloadChoice.names(HostBenchmarkSuite.Workload.self)).")
    var workload: String?

    @Option(help: "Run every thread (the workloads', the fault handlers', the C baselines') on this CPU: userfaultfd round trips become context switches on one CPU instead of wake-ups across CPUs, whose cost on a virtual machine follows the host's load. Unpinned when omitted.")
    var cpu: Int?

    @Option(help: "Directory for the page-cache files (a real file system, not tmpfs, to time the page cache of a file).")
    var directory: String = "/tmp"

    func options() throws -> HostBenchmarkSuite.Options {
        var o = HostBenchmarkSuite.Options()
        o.repeats = repeats
        o.pages = pages
        do {
            o.lazySize = try SizeParser.parse(lazySize)
        } catch {
            throw ValidationError("--lazy-size: \(error)")
        }
        o.mapPairs = mapPairs
        o.lookups = lookups
        o.directory = directory
        do throws(HostWorkloadError) {
            try o.validate()
        } catch {
            throw ValidationError(error.description)
        }
        return o
    }

    func validate() throws {
        _ = try options()
        try BenchCPU.validate(cpu)
        let _: [HostBenchmarkSuite.Workload] = try BenchWorkloadChoice.chosen(workload)
    }

    func run() throws {
        let o = try options()
        let suite = try HostBenchmarkSuite(options: o)
        let chosen: [HostBenchmarkSuite.Workload] = try BenchWorkloadChoice.chosen(workload)
        try BenchCPU.pin(cpu, command: "vmkit bench as")
        if !json {
            print("vmkit bench as: median of \(o.repeats) repeats after \(o.warmup) untimed round, turn about with the C baselines; "
                  + (cpu.map { "every thread on CPU \($0)" } ?? "threads unpinned (\(CPUAffinity.onlineCPUs) CPUs)"))
            print("  faults: \(o.pages) pages per repeat; lazy fill: \(Self.size(o.lazySize)), read-ahead \(Self.size(o.lazyReadAhead)); "
                  + "map-unmap: \(Self.size(o.mapSize)) x \(o.mapPairs) pairs; segat: \(o.segments) segments x \(o.lookups) lookups")
            print(Self.header)
            fflush(nil)
        }
        try BenchSuiteLoop.run(chosen, command: "vmkit bench as", { (w, progress) throws(HostWorkloadError) in
            try suite.run(w, progress: progress)
        }, emit: { figures in
            for f in figures { print(json ? f.jsonLine : Self.row(f)) }
        })
    }

    static let header = "figure                      ns/op        min        max  per      ours/C     GB/s  target"

    static func row(_ f: HostFigure) -> String {
        let name = f.name.padding(toLength: 22, withPad: " ", startingAt: 0)
        let ratio = f.ratio.map { String(format: "%7.3fx", $0) } ?? String(repeating: " ", count: 8)
        let gb = f.gbPerSecond.map { String(format: "%8.2f", $0) } ?? String(repeating: " ", count: 8)
        let op = f.operation.padding(toLength: 7, withPad: " ", startingAt: 0)
        var target = ""
        if let t = f.target {
            target = "\(t)" + (f.meetsTarget == true ? "  met" : f.meetsTarget == false ? "  MISSED" : "")
        }
        return name + String(format: "%11.1f%11.1f%11.1f", f.nsPerOp, f.nsPerOpMin, f.nsPerOpMax)
            + "  " + op + "  " + ratio + " " + gb + "  " + target
    }

    static func size(_ bytes: UInt64) -> String {
        if bytes >= 1 << 30, bytes % (1 << 30) == 0 { return "\(bytes >> 30) GiB" }
        if bytes >= 1 << 20, bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        if bytes >= 1 << 10, bytes % (1 << 10) == 0 { return "\(bytes >> 10) KiB" }
        return "\(bytes) B"
    }

    /// Redraws the progress line on stderr (nil clears it).
    static func progress(_ text: String?) {
        stderr("\r\u{1B}[K" + (text ?? ""))
    }

    static func stderr(_ text: String) {
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                if n <= 0 { return }
                offset += n
            }
        }
    }
}
