/// The workloads of `vmkit bench as`, run one after another, each a figure
/// (or several) with the target.
///
/// | figure | what one operation is | target |
/// |---|---|---|
/// | `fault.zero-fill` / `.c` | a 4 KiB write fault filled with zeros through userfaultfd | ours <= 1.2x C |
/// | `fault.kernel-anonymous` | the kernel's own anonymous write fault | (scale) |
/// | `fault.copy-file` / `.c` | a 4 KiB write fault filled from a cached file | ours <= 1.2x C |
/// | `map-unmap` / `.c` | a map and an unmap of a 2 MiB anonymous segment | <= 10 us |
/// | `segat` | `AddressSpace.segat` among 10,000 segments, hint missing | <= 50 ns |
/// | `segat.lock-held` | the same lookup with the lock held around the repeat | |
/// | `lazy-fill` / `.c` | a page of a lazily filled region, read-ahead 64 KiB | >= 2 GB/s |
public struct HostBenchmarkSuite {
    /// Sizes and counts of one run.
    public struct Options: Hashable, Sendable {
        /// Timed repeats of every workload (after one untimed warm-up round).
        public var repeats: Int = 9
        /// Untimed rounds before the timed ones.
        public var warmup: Int = 1
        /// Pages faulted per repeat by the two fault workloads.
        public var pages: Int = 16_384
        /// Bytes of the lazy fill.
        public var lazySize: UInt64 = 1 << 30
        /// Read-ahead of the lazy fill.
        public var lazyReadAhead: UInt64 = 64 << 10
        /// Map and unmap pairs per repeat, and the segment's size.
        public var mapPairs: Int = 1000
        public var mapSize: UInt64 = 2 << 20
        /// Segments, and lookups per repeat, of the segat workload.
        public var segments: Int = 10_000
        public var lookups: Int = 200_000
        /// Where the page-cache files are made.
        public var directory: String = "/tmp"

        public init() {}

        /// Small sizes for tests and CI.
        public static var small: Options {
            var o = Options()
            o.repeats = 3
            o.pages = 64
            o.lazySize = 1 << 20
            o.mapPairs = 20
            o.segments = 200
            o.lookups = 2000
            return o
        }

        /// Refuses counts and sizes the workloads would refuse, before any runs.
        public func validate() throws(HostWorkloadError) {
            try HostWorkloadError.checkCount("repeats", repeats, maximum: 10_000)
            try HostWorkloadError.checkCount("warm-up rounds", warmup, minimum: 0, maximum: 100)
            try HostWorkloadError.checkCount("pages", pages, maximum: ZeroFillFaultWorkload.maximumPages)
            guard lazySize > 0, lazySize % 4096 == 0, lazySize <= 64 << 30 else {
                throw .invalidArgument(name: "lazy-fill size", value: lazySize,
                                       reason: "must be a non-zero multiple of 4096, at most 64 GiB")
            }
            try HostWorkloadError.checkCount("map pairs", mapPairs, maximum: 10_000_000)
            try HostWorkloadError.checkCount("segments", segments, minimum: 2, maximum: 200_000)
            try HostWorkloadError.checkCount("lookups", lookups, maximum: 1_000_000_000)
        }
    }

    /// The workloads, in the order they run. The lazy fill goes last: when
    /// it ends, a gigabyte of page cache and of anonymous memory goes back
    /// to the kernel (and, on a guest that reports free pages, to the
    /// host), which keeps a CPU busy for a while and would slow whatever
    /// ran next (map and unmap pairs were seen at twice their time).
    public enum Workload: String, CaseIterable, Hashable, Sendable {
        case zeroFill = "fault.zero-fill"
        case copyFile = "fault.copy-file"
        case mapUnmap = "map-unmap"
        case segat = "segat"
        case lazyFill = "lazy-fill"
    }

    public let options: Options

    public init(options: Options = Options()) throws(HostWorkloadError) {
        try options.validate()
        self.options = options
    }

    /// Runs `workloads` and returns their figures in order. `progress` hears
    /// the workload running, and the round done and rounds in all.
    public func run(_ workloads: [Workload] = Workload.allCases,
                    progress: (Workload, Int, Int) -> Void = { _, _, _ in }) throws(HostWorkloadError) -> [HostFigure] {
        var figures: [HostFigure] = []
        for w in workloads {
            figures += try run(w) { progress(w, $0, $1) }
        }
        return figures
    }

    /// One workload's figures.
    public func run(_ workload: Workload, progress: (Int, Int) -> Void = { _, _ in }) throws(HostWorkloadError) -> [HostFigure] {
        let o = options
        switch workload {
        case .zeroFill:
            let w = try ZeroFillFaultWorkload(pages: o.pages)
            let r = try w.run(repeats: o.repeats, warmup: o.warmup, progress: progress)
            return Self.compared("fault.zero-fill", "fault", r.comparison, target: .ratioAtMost(1.2))
                + [HostFigure(name: "fault.kernel-anonymous", operation: "fault", samples: r.kernel)]
        case .copyFile:
            let w = try FileCopyFaultWorkload(pages: o.pages, directory: o.directory)
            let c = try w.run(repeats: o.repeats, warmup: o.warmup, progress: progress)
            return Self.compared("fault.copy-file", "fault", c, target: .ratioAtMost(1.2))
        case .lazyFill:
            let w = try LazyFillWorkload(size: o.lazySize, readAhead: o.lazyReadAhead, directory: o.directory)
            let c = try w.run(repeats: o.repeats, warmup: o.warmup, progress: progress)
            var figures = Self.compared("lazy-fill", "page", c, target: .gbPerSecondAtLeast(2))
            for i in figures.indices {
                figures[i].gbPerSecond = LazyFillWorkload.gigabytesPerSecond(nsPerPage: figures[i].nsPerOp)
            }
            return figures
        case .mapUnmap:
            let w = try MapUnmapWorkload(pairs: o.mapPairs, size: o.mapSize)
            let c = try w.run(repeats: o.repeats, warmup: o.warmup, progress: progress)
            return Self.compared("map-unmap", "pair", c, target: .nsPerOpAtMost(10_000))
        case .segat:
            let w = try SegatWorkload(segments: o.segments, lookups: o.lookups)
            let r = try w.run(repeats: o.repeats, warmup: o.warmup, progress: progress)
            return [HostFigure(name: "segat", operation: "lookup", samples: r.segat, target: .nsPerOpAtMost(50)),
                    HostFigure(name: "segat.lock-held", operation: "lookup", samples: r.segatLockHeld),
                    HostFigure(name: "segat.borrowed", operation: "lookup", samples: r.segatBorrowed, target: .nsPerOpAtMost(50))]
        }
    }

    /// Ours with its ratio and target, then the C baseline (`NAME.c`).
    static func compared(_ name: String, _ operation: String, _ c: Comparison,
                         target: HostFigure.Target) -> [HostFigure] {
        [HostFigure(name: name, operation: operation, samples: c.ours, ratio: c.ratio, baseline: name + ".c",
                    target: target),
         HostFigure(name: name + ".c", operation: operation, samples: c.baseline)]
    }
}
