import Testing
import VmemWorkloads
import AddressSpace
import PageTables
import PhysicalMemory

/// The address-space calls with numbers drawn to hurt: addresses and sizes
/// that are zero, unaligned, inside the VA hole, past the user limit, or
/// that wrap past 2^64; faults and protection changes over holes and segment
/// boundaries; gaps asked for with impossible bounds. Each call succeeds or
/// throws its typed `AddressSpaceError`; nothing traps, and `verify()` holds after
/// every step, for a kernel and a user address space.
@Suite struct HostileInputTests {
    struct Draw {
        var rng: SplitMix64
        init(state: UInt64) { rng = SplitMix64(seed: state) }
        mutating func next() -> UInt64 { rng.next() }
        mutating func address() -> UInt64 {
            switch next() % 6 {
            case 0: return [0, 1, 0xFFF, 0x1000, .max, .max - 0xFFF, 1 << 47, (1 << 47) - 0x1000, 1 << 63][Int(next() % 9)]
            case 1: return next()
            case 2: return 0xFFFF_FF00_0000_0000 &+ (next() % 256) << 12
            default: return 0x10_0000 &+ (next() % 256) << 12
            }
        }
        mutating func size() -> UInt64 {
            switch next() % 5 {
            case 0: return [0, 1, 0xFFF, .max, 1 << 47, 1 << 63][Int(next() % 6)]
            case 1: return next()
            default: return (1 + next() % 16) << 12
            }
        }
        mutating func protection() -> Protection { Protection(rawValue: UInt32(truncatingIfNeeded: next() % 16)) }
    }

    @Test(arguments: [false, true])
    func hostileCallsNeverTrap(_ user: Bool) throws {
        let a = AddressSpace(name: user ? "proc" : "kas", kind: user ? .user(limit: 1 << 47) : .kernel,
                             hat: try PageTableHAT(), virtualHole: user ? nil : (1 << 47)..<0xFFFF_8000_0000_0000)
        var d = Draw(state: user ? 47 : 64)
        var ok = 0, refused = 0
        for _ in 0..<3_000 {
            do {
                switch d.next() % 10 {
                case 0, 1:
                    try a.map(address: d.address(), size: d.size(), isHole: d.next() % 4 == 0) { _ in .created(ScriptedDriver()) }
                case 2: try a.attach(base: d.address(), size: d.size(), driver: SegHole(name: "hole"))
                case 3: _ = try a.mapHole(address: d.address(), size: d.size(), name: "h")
                case 4: try a.unmap(address: d.address(), size: d.size())
                case 5: try a.setProtection(address: d.address(), size: d.size(), protection: d.protection())
                case 6: try a.checkProtection(address: d.address(), size: d.size(), protection: d.protection())
                case 7:
                    try a.fault(address: d.address(), size: d.size(), type: FaultType.allCases[Int(d.next() % 4)],
                                access: SegmentAccess.allCases[Int(d.next() % 6)])
                case 8:
                    _ = try a.gap(minimumLength: d.size(), base: d.address(), length: d.size(),
                                  direction: d.next() % 2 == 0 ? .low : .high,
                                  containing: d.next() % 2 == 0 ? nil : d.address())
                default:
                    _ = a.segat(d.address()); _ = a.findseg(d.address(), tail: d.next() % 2 == 0)
                    _ = a.segment(overlapping: d.address(), size: d.size())
                }
                ok += 1
            } catch {
                refused += 1
            }
            try a.verify()
        }
        #expect(ok > 300 && refused > 300, "ok \(ok) refused \(refused)")
        try? a.unmapAll()
        try a.verify()
    }
}
