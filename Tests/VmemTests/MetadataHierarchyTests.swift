import Testing
import Synchronization
@testable import Vmem
import VmemWorkloads

/// Seed 002's recursion problem: the arena that records allocations needs
/// allocations. illumos builds heap → vmem_metadata → vmem_seg over real
/// memory and lets every arena, vmem_seg included, take its boundary tags
/// from vmem_seg. Here the same hierarchy runs over a reserved range of this
/// process's address space whose pages vmem_metadata's source commits, and
/// each arena's tag table really lives in a block vmem_seg handed out.
@Suite struct MetadataHierarchyTests {
    struct Hierarchy {
        let range: ReservedAddressRange
        let heap: Arena, metadata: Arena, seg: Arena
        var all: [Arena] { [heap, metadata, seg] }
    }

    /// The illumos hierarchy over real memory, on a private populator so
    /// that tests running meanwhile do not share its lock.
    func hierarchy(reserve: UInt64 = 1 << 32) throws -> Hierarchy {
        let range = try ReservedAddressRange(size: reserve)
        let heap = try Arena(name: "heap", base: range.base, size: range.size, quantum: 0x1000)
        let metadata = try Arena(name: "vmem_metadata", quantum: 0x1000,
                                 source: range.committingSource(from: heap), minimumImport: 0x10000)
        let seg = try Arena(name: "vmem_seg", quantum: 0x1000, source: .arena(metadata))
        let population = TagPopulation()
        for a in [heap, metadata, seg] { a.population = population }
        try seg.useTags(from: seg, backing: .memory)
        try metadata.useTags(from: seg, backing: .memory)
        try heap.useTags(from: seg, backing: .memory)
        return Hierarchy(range: range, heap: heap, metadata: metadata, seg: seg)
    }

    /// Every arena's table lies in a segment vmem_seg has allocated, of the
    /// block's exact size, inside the committed range.
    func expectTablesInSeg(_ h: Hierarchy, _ arenas: [Arena]) {
        let blocks = Set(h.seg.segments(.allocated).map { "\($0.start):\($0.size)" })
        for a in arenas {
            guard let t = a.tagTableBlock else {
                Issue.record("\(a.name)'s tag table is still in the heap")
                continue
            }
            #expect(blocks.contains("\(t.address):\(t.bytes)"), "\(a.name)'s table at 0x\(String(t.address, radix: 16))")
            #expect(t.address >= h.range.base && t.address + t.bytes <= h.range.base + h.range.size)
        }
    }

    @Test func recursiveRefillCompletes() throws {
        let h = try hierarchy()
        // Enough allocations to need many refills, each of which goes
        // heap → vmem_seg → vmem_metadata → heap again.
        var live: [UInt64] = []
        for _ in 0..<5_000 { live.append(try h.heap.alloc(0x1000)) }
        #expect(h.seg.size(.allocated) > 0)
        #expect(h.metadata.statistics.importCount > 0)
        // The tag memory lives in heap itself: its spans were imported from heap.
        #expect(h.heap.size(.allocated) == 5_000 * 0x1000 + h.metadata.statistics.memImported)
        expectTablesInSeg(h, h.all)
        #expect(h.heap.population.nestedRequests.load(ordering: .relaxed) > 0, "no refill came back to an arena being refilled")
        for a in h.all {
            try a.verify()
            #expect(a.statistics.populateFail == 0, "\(a.name) fell back on the heap")
        }
        for a in live { try h.heap.free(a, size: 0x1000) }
        try h.heap.verify()
    }

    @Test func hundredThousandRandomOperations() throws {
        let h = try hierarchy()
        var rng = SplitMix64(seed: 2)
        var live: [(UInt64, UInt64)] = []
        for _ in 0..<100_000 {
            let r = rng.next()
            if r % 3 == 0 && !live.isEmpty {
                let i = Int(rng.next() % UInt64(live.count))
                live.swapAt(i, live.count - 1)
                let (a, s) = live.removeLast()
                try h.heap.free(a, size: s)
            } else {
                let s = (1 + (r >> 8) % 32) * 0x1000
                let a = (r >> 20) & 1 == 0 ? try h.heap.alloc(s) : try h.heap.xalloc(s, align: 0x4000)
                live.append((a, s))
            }
        }
        for a in h.all { try a.verify() }
        #expect(h.heap.statistics.populateFail == 0)
        #expect(h.seg.statistics.allocCount > 10)
        expectTablesInSeg(h, h.all)
    }

    /// The issue's load: 8 threads × 100,000 operations over heap and two
    /// arenas importing from it (one with quantum caches), every one of them
    /// taking its tags from vmem_seg, which takes its own from itself. Each
    /// refill allocates a table block from vmem_seg, whose allocation may
    /// import from vmem_metadata, whose import commits pages from heap — an
    /// arena that may itself be refilling. The run must finish (no
    /// recursion, no deadlock), with no arena falling back on the heap.
    @Test(.timeLimit(.minutes(3)))
    func eightThreadsOfAHundredThousandOperations() throws {
        let h = try hierarchy()
        let kmemVA = try Arena(name: "kmem_va", quantum: 0x1000, source: .arena(h.heap),
                               quantumCacheMax: 4 * 0x1000, minimumImport: 1 << 20)
        let segkp = try Arena(name: "segkp", quantum: 0x1000, source: .arena(h.heap))
        for a in [kmemVA, segkp] {
            a.population = h.heap.population
            try a.useTags(from: h.seg, backing: .memory)
        }
        let arenas = [h.heap, kmemVA, segkp]
        let failures = Atomic<Int>(0)
        let threads = 8, operations = 100_000
        let rc = OSThreads.run(threads) { index in
            var rng = SplitMix64(seed: 1000 + UInt64(index))
            var live: [(arena: Int, address: UInt64, size: UInt64)] = []
            for _ in 0..<operations {
                let r = rng.next()
                do {
                    if r % 2 == 0 && !live.isEmpty {
                        let i = Int(rng.next() % UInt64(live.count))
                        live.swapAt(i, live.count - 1)
                        let (a, address, size) = live.removeLast()
                        try arenas[a].free(address, size: size)
                    } else {
                        let a = Int((r >> 8) % 3)
                        let size = (1 + (r >> 16) % 16) * 0x1000
                        live.append((a, try arenas[a].alloc(size), size))
                    }
                } catch {
                    failures.add(1, ordering: .relaxed)
                }
            }
            for (a, address, size) in live { try? arenas[a].free(address, size: size) }
        }
        #expect(rc == 0)
        #expect(failures.load(ordering: .relaxed) == 0)
        for a in arenas + [h.metadata, h.seg] {
            try a.verify()
            #expect(a.statistics.populateFail == 0, "\(a.name) fell back on the heap")
        }
        #expect(h.heap.size(.allocated) >= h.metadata.statistics.memImported)
        expectTablesInSeg(h, arenas + [h.metadata, h.seg])
        // The recursion happened, and the reserve answered it.
        #expect(h.heap.population.nestedRequests.load(ordering: .relaxed) > 0)
        #expect(h.seg.statistics.allocCount > 10, "tables moved into vmem_seg blocks \(h.seg.statistics.allocCount) times")
    }

    @Test func destroyingATagArenaKeepsItsClientsTables() throws {
        let h = try hierarchy(reserve: 1 << 28)
        var live: [UInt64] = []
        for _ in 0..<2_000 { live.append(try h.heap.alloc(0x1000)) }
        let table = try #require(h.heap.tagTableBlock)
        _ = h.seg.destroy()
        // heap still works on its table, whose pages stayed committed.
        for a in live { try h.heap.free(a, size: 0x1000) }
        try h.heap.verify()
        #expect(h.heap.tagTableBlock?.address == table.address)
    }

    @Test func aTagArenaWithoutMemoryOrTwiceIsRefused() throws {
        let a = try Arena(name: "self", base: 0x1000, size: 0x10000, quantum: 0x1000)
        #expect(throws: VmemError.self) { try a.useTags(from: a) }
        let ids = try Arena(name: "ids", base: 1, size: 1000, quantum: 1, flags: .identifier)
        #expect(throws: VmemError.self) { try a.useTags(from: ids, backing: .memory) }
        let b = try Arena(name: "b", base: 0x10_0000, size: 0x10000, quantum: 0x1000)
        try a.useTags(from: b)
        #expect(throws: VmemError.self) { try a.useTags(from: b) }
    }

    @Test func reservedRangesRefuseBadInput() throws {
        #expect(throws: VmemError.zeroSize) { _ = try ReservedAddressRange(size: 0) }
        #expect(throws: VmemError.self) { _ = try ReservedAddressRange(size: ReservedAddressRange.pageSize + 1) }
        let r = try ReservedAddressRange(size: 16 * ReservedAddressRange.pageSize)
        #expect(throws: VmemError.self) { try r.commit(r.base + r.size, ReservedAddressRange.pageSize) }
        #expect(throws: VmemError.self) { try r.commit(r.base + 1, ReservedAddressRange.pageSize) }
        try r.commit(r.base, ReservedAddressRange.pageSize)
        let p = try #require(UnsafeMutablePointer<UInt64>(bitPattern: UInt(r.base)))
        #expect(p.pointee == 0)
        p.pointee = 42
        #expect(p.pointee == 42)
        r.decommit(r.base, ReservedAddressRange.pageSize)
        try r.commit(r.base, ReservedAddressRange.pageSize)
        #expect(p.pointee == 0, "decommitted pages come back zero")
    }
}
