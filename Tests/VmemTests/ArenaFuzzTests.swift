import Testing
@testable import Vmem
import VmemWorkloads

/// Every public entry point of `Arena` and `IdentifierAllocator` called with
/// numbers drawn to hurt: zero, one, powers of two and their neighbours, the
/// ends of the 64-bit range, values whose sums overflow. Each call either
/// succeeds or throws a `VmemError`; nothing may trap (a trap ends the test
/// run), and `verify()` must hold after every step. Writing the first test
/// of this kind (the cache dispatch) found a trap in arena creation with a
/// quantum of 2^60.
@Suite struct ArenaFuzzTests {
    struct Hostile {
        var rng: SplitMix64
        mutating func number() -> UInt64 {
            switch rng.next() % 8 {
            case 0: return [0, 1, 2, 3, .max, .max - 1, 1 << 63, (1 << 63) - 1][Int(rng.next() % 8)]
            case 1: let p = UInt64(1) << (rng.next() % 64); return [p, p &- 1, p &+ 1][Int(rng.next() % 3)]
            case 2: return .max &- (rng.next() % 0x10_0000)
            case 3: return rng.next()
            default: return (rng.next() % 64) << [0, 12, 16, 20][Int(rng.next() % 4)]
            }
        }
        mutating func chance(_ percent: UInt64) -> Bool { rng.next() % 100 < percent }
        mutating func policy() -> AllocationPolicy {
            [.instantFit, .bestFit, .firstFit, .nextFit][Int(rng.next() % 4)]
        }
    }

    /// A source whose import returns whatever the generator draws: spans
    /// smaller than asked, unaligned, overlapping earlier ones, running past
    /// 2^64, or empty; sometimes a sane one.
    final class HostileSource: @unchecked Sendable {
        var h: Hostile
        var released = 0
        init(seed: UInt64) { h = Hostile(rng: SplitMix64(seed: seed)) }
        var source: ArenaSource {
            ArenaSource(name: "hostile", quantum: 4096, import: { [self] (size, _) throws(VmemError) in
                if h.chance(20) { throw .exhausted(arena: "hostile", size: size) }
                if h.chance(40) { return (0x1000_0000 &+ (h.rng.next() % 64) << 20, size) }
                return (h.number(), h.chance(50) ? size : h.number())
            }, release: { [self] _, _ in released += 1 })
        }
    }

    @Test func hostileArgumentsNeverTrap() throws {
        var h = Hostile(rng: SplitMix64(seed: 0xBAD))
        var created = 0, succeeded = 0, refused = 0
        for _ in 0..<400 {
            // A parent with a sane span, so that children can import.
            let parent = try Arena(name: "fuzz-parent", base: 0x10_0000, size: 1 << 30, quantum: 4096)
            defer { _ = parent.destroy() }
            let quantum = h.chance(60) ? 4096 : h.number()
            let arena: Arena
            do {
                arena = try Arena(name: "fuzz", base: h.chance(50) ? 0x1000 : h.number(),
                                  size: h.chance(50) ? 1 << 24 : h.number(), quantum: quantum,
                                  source: h.chance(30) ? .arena(parent) : h.chance(15) ? HostileSource(seed: h.rng.next()).source : nil,
                                  quantumCacheMax: h.chance(50) ? 0 : (h.chance(50) ? quantum &* (h.number() % 17) : h.number()),
                                  minimumImport: h.chance(70) ? 0 : h.number(),
                                  flags: h.chance(10) ? .identifier : [],
                                  debugging: ArenaDebugging(audit: h.chance(10),
                                                            meanTimeBetweenFailures: h.chance(10) ? 7 : 0,
                                                            checkCachedFrees: h.chance(80)))
            } catch {
                refused += 1
                continue
            }
            created += 1
            var live: [(UInt64, UInt64, Bool)] = []
            for _ in 0..<60 {
                do {
                    switch h.rng.next() % 9 {
                    case 0, 1:
                        let size = h.chance(50) ? (1 + h.rng.next() % 8) &* arena.quantum : h.number()
                        live.append((try arena.alloc(size, policy: h.policy(), fromEnd: h.chance(20)), size, false))
                    case 2:
                        let size = h.chance(50) ? (1 + h.rng.next() % 8) &* arena.quantum : h.number()
                        live.append((try arena.xalloc(size, align: h.number(), phase: h.number(), nocross: h.number(),
                                                      minaddr: h.chance(50) ? 0 : h.number(),
                                                      maxaddr: h.chance(50) ? 0 : h.number(),
                                                      policy: h.policy(), fromEnd: h.chance(20)), size, true))
                    case 3:
                        let size = h.number()
                        live.append((try arena.allocExact(at: h.number(), size: size), size, true))
                    case 4:
                        if !live.isEmpty && h.chance(80) {
                            let (a, s, x) = live.remove(at: Int(h.rng.next() % UInt64(live.count)))
                            if x { try arena.xfree(a, size: s) } else { try arena.free(a, size: s) }
                        } else if arena.debugging.checkCachedFrees || arena.quantumCacheMax == 0 {
                            try arena.free(h.number(), size: h.number())
                        }
                    case 5:
                        // Double frees and wrong sizes; not on caches built without the
                        // check, which take a double free on trust (documented).
                        if arena.debugging.checkCachedFrees || arena.quantumCacheMax == 0,
                           let (a, s, _) = live.randomElement(using: &h.rng) {
                            try arena.free(a, size: h.chance(50) ? s : h.number())   // wrong sizes, double frees
                        }
                    case 6: try arena.add(base: h.number(), size: h.number())
                    case 7:
                        _ = arena.contains(h.number(), size: h.number())
                        _ = arena.size(.allocated); _ = arena.statistics
                        _ = arena.segments(.all).count
                    default:
                        let size = (1 + h.rng.next() % 4) &* arena.quantum
                        live.append((try arena.alloc(size, wait: .timeout(.microseconds(50))), size, false))
                    }
                    succeeded += 1
                } catch {
                    refused += 1
                }
                try arena.verify()
            }
            _ = arena.destroy()
        }
        #expect(created > 60 && succeeded > 2_000 && refused > 2_000, "created \(created), succeeded \(succeeded), refused \(refused)")

        // Identifier allocators with hostile ranges and calls.
        for _ in 0..<200 {
            guard let ids = try? IdentifierAllocator(name: "fuzz-ids", first: h.number(), count: h.number()) else { continue }
            for _ in 0..<20 {
                switch h.rng.next() % 4 {
                case 0: _ = try? ids.allocate()
                case 1: _ = try? ids.allocate(count: h.number())
                case 2: try? ids.claim(h.number())
                default: try? ids.free(h.number(), count: h.number())
                }
            }
        }
    }
}
