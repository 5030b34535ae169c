import Testing
import VmemWorkloads
import PageTables
import PhysicalMemory

/// The page-table calls with numbers drawn to hurt (non-canonical and
/// out-of-range addresses, misaligned frames, lengths that wrap past 2^64,
/// every page size, empty and contradictory attributes), on all three entry
/// formats: each call succeeds or throws a `PageTableError`, nothing traps,
/// and what a lookup reports afterwards agrees with what the calls did.
@Suite struct HostileInputTests {
    struct Draw {
        var rng: SplitMix64
        init(state: UInt64) { rng = SplitMix64(seed: state) }
        mutating func next() -> UInt64 { rng.next() }
        mutating func address() -> UInt64 {
            switch next() % 6 {
            case 0: return [0, 1, 0xFFF, 0x1000, .max, 1 << 47, (1 << 47) - 0x1000, 0xFFFF_8000_0000_0000, 1 << 52, 1 << 63][Int(next() % 10)]
            case 1: return next()
            case 2: return (next() % 64) << [12, 21, 30][Int(next() % 3)]
            default: return (next() % 4096) << 12
            }
        }
        mutating func length() -> UInt64 {
            switch next() % 5 {
            case 0: return [0, 1, .max, 1 << 47, 0xFFF][Int(next() % 5)]
            case 1: return next()
            default: return (1 + next() % 16) << [12, 21][Int(next() % 2)]
            }
        }
        mutating func size() -> PageSize { [.size4K, .size2M, .size1G][Int(next() % 3)] }
        mutating func attributes() -> PageAttributes {
            PageAttributes(access: PageAttributes.Access(rawValue: UInt8(truncatingIfNeeded: next() % 8)),
                           user: next() % 2 == 0, global: next() % 4 == 0)
        }
    }

    func run<F: PTEFormat>(_ format: F.Type, seed: UInt64) throws -> (ok: Int, refused: Int) {
        let pt = try PageTable<F, HostTableAllocator>(frames: try HostTableAllocator())
        var d = Draw(state: seed), ok = 0, refused = 0
        for _ in 0..<1_500 {
            do {
                switch d.next() % 7 {
                case 0, 1:
                    let va = d.address(), pa = d.address(), size = d.size()
                    try pt.map(va, to: pa, size: size, attributes: d.attributes())
                    // What was just mapped is what a lookup finds.
                    let t = try #require(try pt.lookup(va))
                    #expect(t.size == size && t.frameAddress == pa & ~size.offsetMask)
                case 2:
                    // Bounded lengths for 4 KiB pages: a hostile length is refused
                    // or small, not a request for 2^28 leaves.
                    _ = try pt.mapRange(d.address(), to: d.address() & ~0xFFF, length: d.length() & 0x3FF_FFFF,
                                        attributes: d.attributes(), largestPage: d.size())
                case 3: _ = try pt.unmap(d.address(), length: d.length())
                case 4: _ = try pt.protect(d.address(), length: d.length(), access: d.attributes().access)
                case 5: _ = try pt.access(d.address(), [.read, .write, .execute][Int(d.next() % 3)], user: d.next() % 2 == 0)
                default: _ = try pt.harvestDirty(d.address(), length: d.length() & 0xFFF_FFFF)
                }
                ok += 1
            } catch is PageTableError {
                refused += 1
            }
        }
        // Every leaf still translates to itself.
        var leaves = 0
        pt.forEachMapping { m in
            leaves += 1
            #expect((try? pt.lookup(m.pageBase))??.frameAddress == m.frameAddress)
        }
        // And the walk agrees with the table's own leaf counts (an unmap of a
        // huge range may have left none at all).
        #expect(leaves == pt.leafCount(.size4K) + pt.leafCount(.size2M) + pt.leafCount(.size1G))
        return (ok, refused)
    }

    @Test func hostileCallsOnEveryFormat() throws {
        for seed: UInt64 in [1, 2] {
            let x = try run(X86PTEFormat.self, seed: seed)
            let r = try run(RVIFormat.self, seed: seed &+ 10)
            let e = try run(EPTFormat.self, seed: seed &+ 20)
            for (ok, refused) in [x, r, e] { #expect(ok > 150 && refused > 150, "ok \(ok) refused \(refused)") }
        }
    }
}
