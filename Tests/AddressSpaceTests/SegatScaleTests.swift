import Testing
import AddressSpace
import Foundation
import Synchronization
import VmemWorkloads

/// The segment tree past the sizes the other tests reach (a top array of
/// more than 512 leaves, searched out of line), its edges at the top of the
/// address space, and `segat`'s reader slots against a writer.
@Suite("as_segat at scale and under a writer")
struct SegatScaleTests {
    /// The base of the `i`th page-sized slot of the test range.
    static func page(_ i: UInt64) -> UInt64 { 0xFFFF_FE00_0000_0000 + i << 12 }

    /// The model's answer: the base of the segment containing `address`.
    static func covering(_ bases: [UInt64], _ sizes: [UInt64: UInt64], _ address: UInt64) -> UInt64? {
        var lo = 0, hi = bases.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if bases[mid] <= address { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return nil }
        let b = bases[lo - 1]
        return address - b < sizes[b]! ? b : nil
    }

    @Test func manySegmentsInRandomOrderThenMostUnmapped() throws {
        let a = try makeKAS()
        var rng = SplitMix64(seed: 2024)
        // 40,000 one- to three-page segments with gaps, attached in a
        // scrambled order: leaves fill unevenly, the top array grows past
        // 512 leaves (8^3 keys, then 8^4).
        var slots = Array(UInt64(0)..<40_000)
        slots.shuffle(using: &rng)
        var sizes: [UInt64: UInt64] = [:]
        for s in slots {
            let size = (1 + rng.next() % 3) << 12
            let base = Self.page(s * 4)
            _ = try a.attach(base: base, size: size, driver: SegHole(name: "s"))
            sizes[base] = size
        }
        try a.verify()
        #expect(a.segmentCount == sizes.count)
        func probe(_ n: Int) {
            let bases = sizes.keys.sorted()
            var misses = 0
            for _ in 0..<n {
                let address = Self.page(0) &+ rng.next() % (160_010 << 12)
                if a.segat(address)?.base != Self.covering(bases, sizes, address) { misses += 1 }
            }
            #expect(misses == 0)
            // Both ends of every tenth segment, and just past them.
            for (i, b) in bases.enumerated() where i % 10 == 0 {
                let last = b + sizes[b]! - 1
                if a.segat(b)?.base != b || a.segat(last)?.base != b || a.segat(b - 1)?.base == b
                    || a.segat(last + 1)?.base == b { misses += 1 }
            }
            #expect(misses == 0)
        }
        probe(50_000)
        // Unmap three quarters at random: leaves empty and merge, the top
        // array shrinks.
        slots.shuffle(using: &rng)
        for s in slots.prefix(30_000) {
            let base = Self.page(s * 4)
            try a.unmap(address: base, size: sizes[base]!)
            sizes[base] = nil
        }
        try a.verify()
        #expect(a.segmentCount == sizes.count)
        probe(50_000)
        try a.unmapAll()
        #expect(a.segmentCount == 0)
        #expect(a.segat(Self.page(4)) == nil)
        try a.verify()
    }

    @Test func theTopPageIsFoundAtEverySize() throws {
        // A segment ending at 2^64 - 1, alone and above ever more others,
        // so that the search reads sentinels (UInt64.max) at each size.
        let a = try makeKAS()
        let top = try a.attach(base: 0xFFFF_FFFF_FFFF_F000, size: 0x1000, driver: SegHole(name: "top"))
        var n: UInt64 = 0
        for target in [1, 100, 3_000, 20_000, 40_000] as [UInt64] {
            while n < target {
                _ = try a.attach(base: Self.page(n * 2), size: 0x1000, driver: SegHole(name: "s"))
                n += 1
            }
            #expect(a.segat(UInt64.max) === top)
            #expect(a.segat(0xFFFF_FFFF_FFFF_F000) === top)
            #expect(a.segat(0xFFFF_FFFF_FFFF_EFFF) == nil)
            #expect(a.segat(Self.page((n - 1) * 2) + 0xFFF)?.base == Self.page((n - 1) * 2))
            #expect(a.segat(Self.page((n - 1) * 2) + 0x1000) == nil)
            #expect(a.segat(Self.page(0) - 1) == nil)
            #expect(a.segat(0) == nil)
            try a.verify()
        }
    }

    /// The borrowed lookup finds what `segat` finds, hint or tree, and nil
    /// where nothing is mapped; its result is the closure's.
    @Test func withSegmentAgreesWithSegat() throws {
        let a = try makeKAS()
        var rng = SplitMix64(seed: 5)
        var bases: [UInt64] = []
        for i in UInt64(0)..<3000 where rng.next() % 3 != 0 {
            _ = try a.attach(base: Self.page(4 * i), size: 0x1000 * (1 + i % 3), driver: SegHole(name: "w"))
            bases.append(Self.page(4 * i))
        }
        _ = a.findseg(bases[7])               // the hint, for the lookups that land in it
        for _ in 0..<20_000 {
            let address = Self.page(rng.next() % 12_000) + rng.next() % 0x1000
            let want = a.segat(address).map { ($0.base, $0.size) }
            let got = a.withSegment(at: address) { $0.map { ($0.base, $0.size) } }
            #expect(got?.0 == want?.0 && got?.1 == want?.1, "at \(address)")
        }
        #expect(a.withSegment(at: bases[7] + 1) { $0?.base } == bases[7])
        #expect(a.withSegment(at: 0x1000) { $0 == nil })
        #expect(!a.isLockHeld)
    }

    @Test func segatReadersAgainstAWriterThatMapsAndUnmapsTheSegmentsTheyFind() throws {
        // Readers look up segments the writer is mapping and unmapping, and
        // use what they get after the lookup returned: a segment must still
        // be a live object covering the address it was found for (the
        // retain happens inside the lock). Under the thread sanitizer this
        // also checks that the reader slots order the tree's memory.
        let a = try makeKAS()
        let k: UInt64 = 0xFFFF_FF00_0000_0000
        for i in UInt64(0)..<256 where i % 2 == 0 {
            _ = try a.attach(base: k + i << 16, size: 0x1000, driver: SegHole(name: "fixed"))
        }
        let done = Atomic(false)
        let failures = Atomic(0)
        let found = Atomic(0)
        let group = DispatchGroup()
        for r in 0..<3 {
            group.enter()
            Thread {
                var rng = SplitMix64(seed: UInt64(r + 11))
                var held: [Segment] = []
                while !done.load(ordering: .relaxed) {
                    let i = rng.next() % 256
                    let address = k + i << 16 + rng.next() % 0x1000
                    // Every other lookup borrowed: what it sees must be whole while it looks.
                    if rng.next() % 2 == 0 {
                        let outcome = a.withSegment(at: address) { s -> Int in
                            guard let s else { return i % 2 == 0 ? 1 : 0 }
                            found.add(1, ordering: .relaxed)
                            return s.base != k + i << 16 || s.size != 0x1000 || !s.contains(address) ? 1 : 0
                        }
                        failures.add(outcome, ordering: .relaxed)
                    } else if let s = a.segat(address) {
                        found.add(1, ordering: .relaxed)
                        if s.base != k + i << 16 || s.size != 0x1000 || !s.contains(address) {
                            failures.add(1, ordering: .relaxed)
                        }
                        // Keep some: they must stay valid after an unmap.
                        if rng.next() % 64 == 0 { held.append(s) }
                        if held.count > 32 { held.removeFirst(16) }
                    } else if i % 2 == 0 {
                        failures.add(1, ordering: .relaxed)                    // a fixed one is always there
                    }
                    _ = a.isLockHeld
                }
                for s in held where s.size != 0x1000 { failures.add(1, ordering: .relaxed) }
                group.leave()
            }.start()
        }
        var rng = SplitMix64(seed: 77)
        for _ in 0..<4000 {
            let i = (rng.next() % 128) * 2 + 1
            let base = k + i << 16
            if a.segat(base) == nil {
                _ = try a.attach(base: base, size: 0x1000, driver: SegHole(name: "churn"))
            } else {
                try a.unmap(address: base, size: 0x1000)
            }
        }
        done.store(true, ordering: .relaxed)
        group.wait()
        #expect(failures.load(ordering: .relaxed) == 0)
        #expect(found.load(ordering: .relaxed) > 0)
        #expect(!a.isLockHeld)
        try a.verify()
    }
}
