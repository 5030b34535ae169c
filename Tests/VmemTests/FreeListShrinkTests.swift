import Testing
@testable import Vmem
import VmemWorkloads

/// A free-list array that a sweep finds less than half used gives its slack
/// back, and the list keeps its order (so every address stays the same as
/// the reference model's).
@Suite struct FreeListShrinkTests {
    /// 4,000 one-page holes make list 12 long; freeing the pages between
    /// them in a random order (each joins its two free neighbours, deleting
    /// them from the middle of the list) makes it short again.
    @Test func aListThatWasLongShrinks() throws {
        let q: UInt64 = 0x1000
        let real = try Arena(name: "shrink", base: 0x1000, size: 1 << 36, quantum: q)
        let ref = try ReferenceArena(name: "shrink", base: 0x1000, size: 1 << 36, quantum: q)
        defer { real.destroy() }
        func both(_ size: UInt64) throws -> UInt64 {
            let a = try real.alloc(size), b = try ref.alloc(size)
            #expect(a == b, "instant fit of \(size) bytes: \(a) here, \(b) in the reference")
            return a
        }
        func free(_ a: UInt64, _ size: UInt64) throws {
            try real.free(a, size: size)
            try ref.free(a, size: size)
        }
        var blocks: [UInt64] = []
        for _ in 0..<8_000 { blocks.append(try both(q)) }
        // Every other page back: 4,000 free pages that cannot coalesce.
        for i in stride(from: 0, to: blocks.count, by: 2) { try free(blocks[i], q) }
        let list = 12
        let longCapacity = real.core.pointee.lists[list].capacity
        #expect(real.core.pointee.lists[list].live == 4_000)
        #expect(longCapacity >= 4_000)
        var rng = SplitMix64(seed: 7)
        var odd = stride(from: 1, to: blocks.count, by: 2).map { blocks[$0] }
        for i in stride(from: odd.count - 1, to: 0, by: -1) { odd.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        for a in odd.prefix(1_500) { try free(a, q) }
        let l = real.core.pointee.lists[list]
        #expect(l.capacity < longCapacity / 2, "capacity \(l.capacity), was \(longCapacity); \(l.live) live, count \(l.count)")
        #expect(l.capacity >= l.count)
        try real.verify()
        // And the arena goes on choosing what the reference chooses.
        for a in odd.dropFirst(1_500) { try free(a, q) }
        for _ in 0..<500 { _ = try both(q * (1 + rng.next() % 8)) }
        try real.verify()
    }
}
