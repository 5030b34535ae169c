import Testing
import GuestMemory
import GuestWorkloads
import HostWorkloads

/// The workloads of `vmkit bench guest` at tiny sizes: every figure a
/// positive finite number, the ratio ours / C, bad arguments typed errors.
@Suite("Guest-memory benchmark workloads")
struct GuestWorkloadsTests {
    static func positive(_ f: HostFigure) -> Bool {
        f.nsPerOp.isFinite && f.nsPerOp > 0 && f.nsPerOpMin > 0 && f.nsPerOpMax >= f.nsPerOp
    }

    @Test func everyFigureIsPositiveAndRatiosAreOursOverC() throws {
        try GuestKit.gated {
            let suite = try GuestBenchmarkSuite(options: .small)
            var figures: [GuestFigure] = []
            for w in GuestBenchmarkSuite.Workload.allCases { figures += try suite.run(w) }
            #expect(figures.map(\.figure.name) == ["translate.1", "translate.1.c", "translate.4", "translate.4.c",
                                                   "translate.32", "translate.32.c", "hold-release", "nested-fault",
                                                   "nested-fault.guest", "dirty-harvest", "reserve-map"])
            for f in figures { #expect(Self.positive(f.figure), "\(f.figure.name)") }
            for (i, f) in figures.enumerated() where f.figure.name.hasPrefix("translate.") && !f.figure.name.hasSuffix(".c") {
                let c = figures[i + 1].figure
                #expect(f.figure.baseline == c.name)
                let ratio = try #require(f.figure.ratio)
                #expect(abs(ratio - f.figure.nsPerOp / c.nsPerOp) < 1e-9)
                #expect(f.jsonLine.hasPrefix("{\"name\": \"\(f.figure.name)\", \"nsPerOp\": "))
                #expect(f.jsonLine.contains("\"ratio\": "))
            }
            for f in figures where f.figure.baseline == nil { #expect(!f.jsonLine.contains("\"ratio\"")) }
            let reserve = try #require(figures.last)
            #expect(reserve.residentGrowthMapped != nil && reserve.pagesTouched == 4)
            #expect(reserve.jsonLine.hasSuffix(", \"pagesTouched\": 4}"))
        }
    }

    @Test func translationBaselineAgreesWithGuestMemory() throws {
        try GuestKit.gated {
            for n in [1, 4, 9, 32] {
                let w = try TranslateWorkload(mappings: n, lookups: 500)
                #expect(w.translateOurs().misses == 0)
                let ours = w.sink
                #expect(w.translateBaseline().misses == 0)
                #expect(w.sink == ours &* 2, "the C map gives the same pointers (n = \(n))")
            }
        }
    }

    @Test func harvestFindsExactlyThePagesMarked() throws {
        try GuestKit.gated {
            let w = try DirtyHarvestWorkload(guestSize: 8 << 20)
            #expect(w.dirtyPages.count == Int((8 << 20) / GuestMemory.pageSize / 100))
            #expect(try w.measure() > 0)
            #expect(try w.harvest().pages == [])
        }
    }

    /// Every timed write of the A/D emulation figure faults once and lands
    /// on its frame, in both arms, round after round (the workload checks
    /// the frame and the D set itself, and throws otherwise).
    @Test func nestedFaultsResolveEveryWrite() throws {
        try GuestKit.gated {
            let w = try NestedFaultWorkload(faults: 256)
            for _ in 0..<3 {
                #expect(try w.faultTable() > 0)
                #expect(try w.faultGuest() > 0)
            }
            #expect(try w.memory.harvestDirty(0, NestedFaultWorkload.mappingLength, .get).count == 256,
                    "the guest arm's writes are dirty")
        }
    }

    @Test func badArgumentsAreTypedErrors() throws {
        func argument(_ body: () throws(GuestWorkloadError) -> Void) -> String? {
            do { try body(); return nil } catch {
                if case let .invalidArgument(name, _, _) = error { return name }
                return "other: \(error)"
            }
        }
        #expect(argument { () throws(GuestWorkloadError) in _ = try TranslateWorkload(mappings: 0, lookups: 10) } == "mappings")
        #expect(argument { () throws(GuestWorkloadError) in _ = try TranslateWorkload(mappings: 33, lookups: 10) } == "mappings")
        #expect(argument { () throws(GuestWorkloadError) in _ = try TranslateWorkload(mappings: 1, lookups: -1) } == "lookups")
        #expect(argument { () throws(GuestWorkloadError) in _ = try HoldReleaseWorkload(holds: 0) } == "holds")
        #expect(argument { () throws(GuestWorkloadError) in _ = try NestedFaultWorkload(faults: 4097) } == "faults")
        #expect(argument { () throws(GuestWorkloadError) in _ = try DirtyHarvestWorkload(guestSize: 4097) } == "harvest guest size")
        #expect(argument { () throws(GuestWorkloadError) in _ = try ReserveMapWorkload(guestSize: 0, guests: 1) } == "guest size")
        #expect(argument { () throws(GuestWorkloadError) in _ = try ReserveMapWorkload(guestSize: 1 << 20, guests: 0) } == "guests")
        var o = GuestBenchmarkSuite.Options.small
        o.repeats = 0
        #expect(argument { () throws(GuestWorkloadError) in _ = try GuestBenchmarkSuite(options: o) } == "repeats")
        o = .small
        o.mappingCounts = [1, 40]
        #expect(argument { () throws(GuestWorkloadError) in _ = try GuestBenchmarkSuite(options: o) } == "mappings")
        o = .small
        o.pagesTouched = 1 << 30
        #expect(argument { () throws(GuestWorkloadError) in _ = try GuestBenchmarkSuite(options: o) } == "pages touched")
    }
}
