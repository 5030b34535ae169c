import Testing
import Vmem
@testable import KernelLayout

private let GiB: UInt64 = 1 << 30

@Suite("arena tree on a layout (real Vmem arenas)")
struct ArenaTreeTests {
    @Test("post-12608 512 GiB: every arena, its source, span, quantum and quantum caches")
    func post() throws {
        let layout = try Layout.compute(model: .post12608, physmem: 512 * GiB)
        let tree = try ArenaTree.build(from: layout)
        #expect(tree.arenas.map(\.name) == layout.arenaSpecs.map(\.name))
        for spec in tree.specs {
            let arena = try #require(tree[spec.name])
            #expect(arena.parent?.name == spec.source, "\(spec.name)")
            #expect(arena.quantum == spec.quantum, "\(spec.name)")
            #expect(arena.quantumCacheMax == spec.qcacheMax, "\(spec.name)")
            #expect(arena.statistics.memTotal == spec.size, "\(spec.name)")
        }
        let heap = try #require(tree["heap"])
        #expect(heap.statistics.memInUse == 4096)
        #expect(!heap.contains(layout.kernelheap) || heap.segments(.allocated).first?.start == layout.kernelheap)
        let first = try heap.alloc(4096)
        #expect(first != layout.kernelheap)
        #expect(first >= layout.kernelheap + 4096 && first < AMD64.coreHeapBase)

        // bhyve's guest memory: vmm_alloc_arena imports 1 MiB spans from kvmm_arena.
        let vmm = try #require(tree["vmm_alloc_arena"])
        let kvmm = try #require(tree["kvmm_arena"])
        let guest = try vmm.alloc(3 << 20)
        #expect(guest >= layout.segkvmmBase && guest + (3 << 20) <= layout.segkvmmBase + layout.segkvmmSize)
        #expect(kvmm.statistics.memInUse >= 3 << 20)
        #expect(throws: VmemError.self) { try vmm.alloc(4096) }  // not a multiple of the 1 MiB quantum

        // A kernel stack from segkp lands in segkp's own range.
        let segkp = try #require(tree["segkp"])
        let stack = try segkp.alloc(5 * 4096)
        #expect(stack >= layout.segkpBase && stack < layout.segkpBase + layout.segkpSize)

        // ZFS buffers come from segzio.
        let buf = try #require(tree["zfs_file_data_buf"]).alloc(128 << 10)
        #expect(buf >= layout.segzioBase && buf < layout.segzioBase + layout.segzioSize)

        // kmem_default -> kmem_va -> heap.
        let object = try #require(tree["kmem_default"]).alloc(8192)
        #expect(object > layout.kernelheap && object < AMD64.coreHeapBase)

        let depths = tree.preorder.map { "\($0.depth):\($0.arena.name)" }
        #expect(depths.prefix(4) == ["0:heap", "1:static", "2:static_alloc", "1:kmem_metadata"])
        #expect(depths.contains("1:vmm_alloc_arena") && depths.contains("0:kvmm_arena"))
        for arena in tree.arenas { try arena.verify() }
    }

    @Test("pre-12608 has no kvmm_arena")
    func pre() throws {
        let tree = try ArenaTree.build(from: try Layout.compute(model: .pre12608, physmem: 4 * GiB))
        #expect(tree["kvmm_arena"] == nil && tree["vmm_alloc_arena"] == nil)
        #expect(tree["zfs_file_data"] != nil)
    }

    @Test("i386: segkp imports from heap, stacks compete with kmem for heap VA")
    func i386() throws {
        let layout = try Layout.compute(model: .i386, physmem: 4 * GiB)
        let tree = try ArenaTree.build(from: layout)
        let heap = try #require(tree["heap"])
        let segkp = try #require(tree["segkp"])
        #expect(segkp.parent === heap)
        #expect(segkp.statistics.memTotal == 0)
        let before = heap.statistics.memInUse
        let stack = try segkp.alloc(3 * 4096)
        #expect(stack >= layout.kernelheap && stack < layout.heapEnd)
        #expect(heap.statistics.memInUse > before)
        #expect(tree["heap_core"] == nil && tree["device"] == nil && tree["zfs_file_data"] == nil)
    }

    @Test("a layout that wraps cannot get arenas: a typed error, not a trap")
    func wrapped() throws {
        let layout = try Layout.compute(model: .post12608, physmem: LayoutConfiguration.maximumSize)
        #expect(layout.wrapped)
        #expect(throws: ArenaTreeError.unusableLayout(failedChecks: [.regionsOrderedNoOverlap, .noWrap])) {
            try ArenaTree.build(from: layout)
        }
        let noHeap = try Layout(LayoutConfiguration(model: .i386, physmem: 16 * GiB, segmapSize: 256 << 20,
                                                    eepromKernelbase: 0xE000_0000))
        #expect(throws: ArenaTreeError.unusableLayout(failedChecks: [.regionsOrderedNoOverlap, .heapNonempty])) {
            try ArenaTree.build(from: noHeap)
        }
        // A layout with a small heap still gets its arenas.
        _ = try ArenaTree.build(from: try Layout.compute(model: .pre12608, physmem: 512 * GiB))
    }
}
