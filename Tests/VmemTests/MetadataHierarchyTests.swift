import Testing
@testable import Vmem
import VmemWorkloads

/// Seed 002's recursion problem: the arena that records allocations needs
/// allocations. illumos builds heap → vmem_metadata → vmem_seg and then lets
/// heap take its boundary tags from vmem_seg.
@Suite struct MetadataHierarchyTests {
    func hierarchy() throws -> (heap: Arena, metadata: Arena, seg: Arena) {
        let heap = try Arena(name: "heap", base: 0xFFFF_FE00_0000_0000, size: 1 << 36, quantum: 0x1000)
        let metadata = try Arena(name: "vmem_metadata", quantum: 0x1000, source: .arena(heap), minimumImport: 0x10000)
        let seg = try Arena(name: "vmem_seg", quantum: 0x1000, source: .arena(metadata))
        try heap.useTags(from: seg)
        return (heap, metadata, seg)
    }

    @Test func recursiveRefillCompletes() throws {
        let (heap, metadata, seg) = try hierarchy()
        // Enough allocations to need many refills, each of which goes
        // heap → vmem_seg → vmem_metadata → heap again.
        var live: [UInt64] = []
        for _ in 0..<5_000 { live.append(try heap.alloc(0x1000)) }
        #expect(seg.size(.allocated) > 0)
        #expect(metadata.statistics.importCount > 0)
        // The tag memory lives in heap itself: its spans were imported from heap.
        #expect(heap.size(.allocated) == 5_000 * 0x1000 + metadata.statistics.memImported)
        try heap.verify(); try metadata.verify(); try seg.verify()
        for a in live { try heap.free(a, size: 0x1000) }
        try heap.verify()
    }

    @Test func hundredThousandRandomOperations() throws {
        let (heap, metadata, seg) = try hierarchy()
        var rng = SplitMix64(seed: 2)
        var live: [(UInt64, UInt64)] = []
        for _ in 0..<100_000 {
            let r = rng.next()
            if r % 3 == 0 && !live.isEmpty {
                let i = Int(rng.next() % UInt64(live.count))
                live.swapAt(i, live.count - 1)
                let (a, s) = live.removeLast()
                try heap.free(a, size: s)
            } else {
                let s = (1 + (r >> 8) % 32) * 0x1000
                let a = (r >> 20) & 1 == 0 ? try heap.alloc(s) : try heap.xalloc(s, align: 0x4000)
                live.append((a, s))
            }
        }
        try heap.verify(); try metadata.verify(); try seg.verify()
        #expect(heap.statistics.populateFail == 0)
        #expect(seg.statistics.allocCount > 10)
    }

    @Test func arenaCannotTakeTagsFromItself() throws {
        let a = try Arena(name: "self", base: 0x1000, size: 0x10000, quantum: 0x1000)
        #expect(throws: VmemError.self) { try a.useTags(from: a) }
    }
}
