import HostWorkloads

/// A figure of `vmkit bench guest`: a `HostFigure` (name, nsPerOp, ratio
/// only against a C baseline, spread, target) and, for the reserve-and-map
/// figure, the resident memory it costs.
public struct GuestFigure: Hashable, Sendable {
    public var figure: HostFigure
    /// Resident growth of one guest made, untouched, and after ``pagesTouched`` pages written.
    public var residentGrowthMapped: Int64?
    public var residentGrowthTouched: Int64?
    public var pagesTouched: Int?

    public init(_ figure: HostFigure) { self.figure = figure }

    /// One JSON object: HostFigure's fields, then the resident growth where measured.
    public var jsonLine: String {
        var line = figure.jsonLine
        guard let mapped = residentGrowthMapped, let touched = residentGrowthTouched, let pages = pagesTouched else { return line }
        line.removeLast()
        return line + ", \"residentGrowthMappedBytes\": \(mapped), \"residentGrowthTouchedBytes\": \(touched), \"pagesTouched\": \(pages)}"
    }
}

/// The workloads of `vmkit bench guest`, each with the target.
///
/// | figure | one operation | target |
/// |---|---|---|
/// | `translate.N` / `.c` | `GuestMemory.translate` of a random GPA, N = 1, 4, 32 mappings | ours <= 1.2x C |
/// | `hold-release` | a read-write hold of one page and its release | <= 30 ns |
/// | `nested-fault` | a write fault on a clean leaf resolved by A/D emulation (`NestedPageTable.guestAccess`) | <= 100 ns |
/// | `nested-fault.guest` | the same through `GuestMemory.touch` (the VMM's locks and checks) | <= 100 ns |
/// | `dirty-harvest` | a harvest of a 64 GiB guest, 1 % dirty, counted, committed and released | <= 0.3 ms |
/// | `reserve-map` | a 64 GiB standard guest reserved and mapped, not populated | <= 1 ms |
public struct GuestBenchmarkSuite {
    public struct Options: Hashable, Sendable {
        public var repeats: Int = 9
        public var warmup: Int = 1
        /// Translations per repeat, and the map sizes.
        public var lookups: Int = 200_000
        public var mappingCounts: [Int] = [1, 4, 32]
        /// Hold + release pairs per repeat.
        public var holds: Int = 200_000
        /// A/D emulation faults per repeat (distinct pages, at most 4096).
        public var faults: Int = 4096
        /// The guest harvested, and the guest reserved and mapped.
        public var harvestSize: UInt64 = 64 << 30
        public var guestSize: UInt64 = 64 << 30
        /// Guests made per repeat, and pages touched for the resident report.
        public var guests: Int = 10
        public var pagesTouched: Int = 256

        public init() {}

        /// Tiny sizes for tests and CI.
        public static var small: Options {
            var o = Options()
            o.repeats = 1
            o.lookups = 1000
            o.holds = 1000
            o.faults = 64
            o.harvestSize = 64 << 20
            o.guestSize = 64 << 20
            o.guests = 2
            o.pagesTouched = 4
            return o
        }

        public func validate() throws(GuestWorkloadError) {
            try GuestWorkloadError.checkCount("repeats", repeats, maximum: 10_000)
            try GuestWorkloadError.checkCount("warm-up rounds", warmup, minimum: 0, maximum: 100)
            try GuestWorkloadError.checkCount("lookups", lookups, maximum: 1_000_000_000)
            guard !mappingCounts.isEmpty else { throw .invalidArgument(name: "mapping counts", value: 0, reason: "none given") }
            for n in mappingCounts { try GuestWorkloadError.checkCount("mappings", n, maximum: 32) }
            try GuestWorkloadError.checkCount("holds", holds, maximum: 1_000_000_000)
            try GuestWorkloadError.checkCount("faults", faults, maximum: 4096)
            try GuestWorkloadError.checkSize("harvest size", harvestSize, minimum: 100 * 4096, maximum: 1 << 40)
            try GuestWorkloadError.checkSize("guest size", guestSize, minimum: 4096, maximum: 1 << 40)
            try GuestWorkloadError.checkCount("guests", guests, maximum: 1_000_000)
            try GuestWorkloadError.checkCount("pages touched", pagesTouched,
                                              maximum: Int(min(guestSize / 4096, 1 << 20)))
        }
    }

    public enum Workload: String, CaseIterable, Hashable, Sendable {
        case translate
        case holdRelease = "hold-release"
        case nestedFault = "nested-fault"
        case dirtyHarvest = "dirty-harvest"
        case reserveMap = "reserve-map"
    }

    public let options: Options

    public init(options: Options = Options()) throws(GuestWorkloadError) {
        try options.validate()
        self.options = options
    }

    /// One workload's figures; `progress` hears (round done, rounds in all).
    public func run(_ workload: Workload, progress: (Int, Int) -> Void = { _, _ in }) throws(GuestWorkloadError) -> [GuestFigure] {
        let o = options
        switch workload {
        case .translate:
            var figures: [GuestFigure] = []
            for n in o.mappingCounts {
                let w = try TranslateWorkload(mappings: n, lookups: o.lookups)
                let c = try w.run(repeats: o.repeats, warmup: o.warmup, progress: progress)
                let name = "translate.\(n)"
                figures.append(GuestFigure(HostFigure(name: name, operation: "lookup", samples: c.ours, ratio: c.ratio,
                                                      baseline: name + ".c", target: .ratioAtMost(1.2))))
                figures.append(GuestFigure(HostFigure(name: name + ".c", operation: "lookup", samples: c.baseline)))
            }
            return figures
        case .holdRelease:
            let s = try HoldReleaseWorkload(holds: o.holds).run(repeats: o.repeats, warmup: o.warmup, progress: progress)
            return [GuestFigure(HostFigure(name: "hold-release", operation: "pair", samples: s, target: .nsPerOpAtMost(30)))]
        case .nestedFault:
            let s = try NestedFaultWorkload(faults: o.faults).run(repeats: o.repeats, warmup: o.warmup, progress: progress)
            return [GuestFigure(HostFigure(name: "nested-fault", operation: "fault", samples: s.table, target: .nsPerOpAtMost(100))),
                    GuestFigure(HostFigure(name: "nested-fault.guest", operation: "fault", samples: s.guest,
                                           target: .nsPerOpAtMost(100)))]
        case .dirtyHarvest:
            let s = try DirtyHarvestWorkload(guestSize: o.harvestSize).run(repeats: o.repeats, warmup: o.warmup, progress: progress)
            return [GuestFigure(HostFigure(name: "dirty-harvest", operation: "harvest", samples: s,
                                           target: .nsPerOpAtMost(300_000)))]
        case .reserveMap:
            let w = try ReserveMapWorkload(guestSize: o.guestSize, guests: o.guests)
            let s = try w.run(repeats: o.repeats, warmup: o.warmup, progress: progress)
            let r = try w.residentGrowth(touching: o.pagesTouched)
            var f = GuestFigure(HostFigure(name: "reserve-map", operation: "guest", samples: s, target: .nsPerOpAtMost(1_000_000)))
            f.residentGrowthMapped = r.mapped
            f.residentGrowthTouched = r.touched
            f.pagesTouched = o.pagesTouched
            return [f]
        }
    }
}
