import Testing
import VmemWorkloads
@testable import KernelLayout

/// Layouts computed from configurations drawn to hurt: every tunable at 0,
/// 1, just off a page, near 2^52 and 2^64, physmax below and far above
/// physmem, memory DR beyond the machine, an eeprom kernelbase anywhere. Each
/// either computes (and then renders as a table, JSON and SVG, and builds its
/// arena tree or refuses it with an `ArenaTreeError`) or throws a
/// `LayoutError`; nothing traps.
@Suite struct HostileConfigurationTests {
    struct Draw {
        var rng: SplitMix64
        init(state: UInt64) { rng = SplitMix64(seed: state) }
        mutating func next() -> UInt64 { rng.next() }
        mutating func size() -> UInt64 {
            switch next() % 6 {
            case 0: return [0, 1, 4095, 4096, 4097, .max, .max - 4095, 1 << 52, (1 << 52) + 4096, 1 << 63][Int(next() % 10)]
            case 1: return next()
            case 2: return (next() % (1 << 20)) << 12
            default: return (1 + next() % 4096) << 30
            }
        }
        mutating func maybe() -> UInt64? { next() % 10 < 7 ? nil : size() }
    }

    @Test func hostileConfigurationsNeverTrap() {
        var d = Draw(state: 12_608)
        var computed = 0, refused = 0, trees = 0
        for _ in 0..<1_500 {
            let c = LayoutConfiguration(model: LayoutModel.allCases[Int(d.next() % 3)], physmem: d.next() % 2 == 0 ? (1 + d.next() % 8192) << 30 : d.size(),
                                        physmax: d.maybe(), segkpSize: d.maybe(), segkvmmSize: d.maybe(),
                                        segzioSize: d.maybe(), segmapSize: d.maybe(),
                                        toxicSize: d.next() % 2 == 0 ? AMD64.toxicSizeDefault : d.size(),
                                        vallocOther: d.next() % 2 == 0 ? 1 << 20 : d.size(),
                                        drPhysmax: d.next() % 3 == 0 ? d.size() : 0,
                                        eepromKernelbase: d.maybe(), capI386Physmem: d.next() % 2 == 0)
            do {
                let layout = try Layout(c)
                computed += 1
                _ = layout.checkResults()
                _ = layout.noteMessages
                #expect(!layout.table().isEmpty && layout.json().hasPrefix("{") && layout.svg().contains("<svg"))
                if (try? ArenaTree.build(from: layout)) != nil { trees += 1 }
            } catch {
                refused += 1
            }
        }
        #expect(computed > 250 && refused > 250 && trees > 50, "computed \(computed), refused \(refused), trees \(trees)")
    }
}
