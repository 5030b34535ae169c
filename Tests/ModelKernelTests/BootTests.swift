import Testing
import AddressSpace
import KernelLayout
import PhysicalMemory
@testable import ModelKernel

let GiB: UInt64 = 1 << 30
let MiB: UInt64 = 1 << 20

/// The segment names in ascending address order that each model's kas holds.
func expectedSegments(_ model: LayoutModel) -> [String] {
    switch model {
    case .post12608:
        return ["kpmseg", "kvalloc", "kpseg", "kvmmseg", "kzioseg", "kmapseg", "kvseg", "kvseg_core",
                "ktextseg", "kdebugseg"]
    case .pre12608:
        return ["kpmseg", "kvalloc", "kpseg", "kzioseg", "kmapseg", "kvseg", "kvseg_core", "ktextseg",
                "kdebugseg"]
    case .i386:
        return ["kmapseg", "kvseg", "kvalloc", "ktextseg", "kdebugseg"]
    }
}

@Suite("booting the model kernel")
struct BootTests {
    static let cases: [(LayoutModel, UInt64)] = [
        (.post12608, 256 * MiB), (.post12608, 16 * GiB), (.post12608, 300 * GiB), (.post12608, 2048 * GiB),
        (.pre12608, 512 * MiB), (.pre12608, 16 * GiB), (.pre12608, 320 * GiB), (.pre12608, 2048 * GiB),
        (.i386, 256 * MiB), (.i386, 4 * GiB), (.i386, 16 * GiB),
    ]

    @Test("each model at several sizes boots with every arena and accounting invariant intact", arguments: cases)
    func boots(model: LayoutModel, physmem: UInt64) throws {
        let k = try ModelKernel(model: model, physmem: physmem)
        try k.verify()
        // Segments: startup order in `segments`, address order in kas.
        let names = k.kas.segments.map { s in k.segments.first { $0.address == s.address }?.name ?? "?" }
        #expect(names == expectedSegments(model))
        let attachOrder = k.segments.map(\.name)
        let startup = ["ktextseg", "kvalloc", "kvseg", "kvseg_core", "kvmmseg", "kzioseg", "kdebugseg", "kpseg",
                       "kpmseg", "kmapseg"].filter { attachOrder.contains($0) }
        #expect(attachOrder == startup)
        // Segment bases and sizes come straight from the layout.
        let L = k.layout
        let kvseg = try #require(k.segment(named: "kvseg"))
        #expect(kvseg.base == L.kernelheap)
        let kmap = try #require(k.segment(named: "kmapseg"))
        #expect(kmap.base == L.segmapStart && kmap.size == L.segmapSize && kmap.opsName == "segmap_ops")
        let ktext = try #require(k.segment(named: "ktextseg"))
        #expect(ktext.size == 0x55_0000)
        if model.isAMD64 {
            #expect(kvseg.size == AMD64.coreHeapBase - L.kernelheap)
            let kp = try #require(k.segment(named: "kpseg"))
            #expect(kp.base == L.segkpBase && kp.size == L.segkpSize && kp.opsName == "segkp_ops")
            let kpm = try #require(k.segment(named: "kpmseg"))
            #expect(kpm.base == L.segkpmBase && kpm.size == L.kpmSize && kpm.opsName == "segkpm_ops")
            let zio = try #require(k.segment(named: "kzioseg"))
            #expect(zio.base == L.segzioBase && zio.size == L.segzioSize)
            // The red zone: no segment anywhere in it, and 512 GiB below segkpm.
            #expect(k.redZone == L.kernelbase ..< L.segkpmBase && k.redZone.count == Int(AMD64.kernelRedzoneSize))
            #expect(k.kas.segments.allSatisfy { $0.base >= k.redZone.upperBound || $0.base + $0.size <= k.redZone.lowerBound })
            // kpm: VA = kpm_vbase + pfn × 4096, through the HAT.
            let pfn = L.physmax / 4096 - 1
            #expect(k.segkpm?.address(of: pfn) == L.segkpmBase + pfn * 4096)
            #expect(k.hat.translation(of: L.segkpmBase + pfn * 4096 + 123)?.pfn == pfn)
            #expect(k.hat.translation(of: L.segkpmBase + L.physmax) == nil)
        } else {
            #expect(k.segment(named: "kpseg") == nil)
            #expect(k.arenas["segkp"]?.parent?.name == "heap")
        }
        if model == .post12608 {
            let vmm = try #require(k.segment(named: "kvmmseg"))
            #expect(vmm.base == L.segkvmmBase && vmm.size == L.segkvmmSize)
        }
        // segkmem's segments add to a_size (holes and the others do not).
        let segkmemBytes = k.segments.filter { $0.opsName == "segkmem_ops" }.reduce(UInt64(0)) { $0 + $1.size }
        #expect(k.kas.size == segkmemBytes)
        // The arena tree is the one KernelLayout specifies.
        #expect(k.arenas.arenas.map(\.name) == L.arenaSpecs.map(\.name))
        // Nothing allocated yet but the nucleus, the boot structures and page tables.
        let m = k.memstat()
        #expect(m.kernel == 0x55_0000 / 4096 + 1 + UInt64(k.hat.tablePages))
        #expect(m.vmmMemory == 0 && m.zfsFileData == 0 && m.anon == 0)
        #expect(m.total + m.freelist == m.physmem)
    }

    @Test("a default workload's guests have no bhyve process: destroyGuest needs nothing first")
    func defaultWorkloadHasNoProcesses() throws {
        let k = try ModelKernel(model: .post12608, physmem: 2 * GiB)
        let r = try k.run(KernelWorkload(kmemAllocations: 0, threads: 0, lwps: 0, zfsBuffers: 0, fileBytes: 0,
                                         guests: 1, guestSize: 4 * MiB))
        #expect(r.processes.isEmpty && k.processAddressSpaces.isEmpty)
        try k.destroyGuest(try #require(r.guests.first))
        try k.verify()
    }

    @Test("the consumers run on each model and leave the invariants intact", arguments: [LayoutModel.post12608, .pre12608, .i386])
    func consumers(model: LayoutModel) throws {
        let k = try ModelKernel(model: model, physmem: 8 * GiB)
        var w = KernelWorkload(kmemAllocations: 64, threads: 16, lwps: 4, zfsBuffers: 16, fileBytes: 64 << 10)
        if model == .post12608 { w.guests = 2; w.guestSize = 4 * MiB; w.guestProcesses = true }
        let r = try k.run(w)
        try k.verify()
        let m = k.memstat()
        #expect(m.anon == 4 * k.stackSize / 4096, "LWP stacks are anon-backed")
        #expect(m.pageCache == 16, "64 KiB of file pages read through segmap")
        if model.isAMD64 {
            #expect(m.zfsFileData == 16 * 32)
        } else {
            #expect(m.zfsFileData == 0 && r.zfsBuffers.isEmpty)
        }
        #expect(m.vmmMemory == (model == .post12608 ? 2 * 1024 : 0))
        // Everything given back: only the nucleus, caches and structures remain.
        for (a, s) in r.kmem { try k.kmemFree(a, size: s) }
        for s in r.stacks { try k.freeStack(s) }
        for b in r.zfsBuffers { try k.zioBufFree(b, size: 128 << 10) }
        // Each guest's bhyve process maps it through segvmm: the processes go first.
        #expect(r.processes.count == r.guests.count)
        for p in r.processes { try k.destroyProcessAddressSpace(p) }
        for g in r.guests { try k.destroyGuest(g) }
        try k.verify()
        #expect(k.memstat().vmmMemory == 0 && k.memstat().zfsFileData == 0)
        #expect(k.arenas["kmem_default"]?.statistics.memInUse == 4096, "only the boot structures' page")
    }

    @Test("a 2 TiB machine boots with page metadata only for the pages in use")
    func twoTerabytes() throws {
        let k = try ModelKernel(model: .post12608, physmem: 2048 * GiB)
        #expect(k.physicalMemory.totalPages == 1 << 29)
        #expect(k.physicalMemory.recordedPages < 2000)
        #expect(k.physicalMemory.metadataFootprint < 4 << 20)
        // kpm maps all 2 TiB with large pages: a handful of tables.
        #expect(k.hat.tablePages < 16)
        #expect(k.hat.mappedBytes >= 2048 * GiB)
        try k.verify()
    }

    @Test("bad configurations are typed errors")
    func badConfigurations() throws {
        #expect(throws: ModelKernelError.self) { try ModelKernel(model: .post12608, physmem: 0) }
        #expect(throws: ModelKernelError.layout(.zeroSize(name: "physmem", value: 100))) {
            try ModelKernel(model: .post12608, physmem: 100)
        }
        #expect(throws: ModelKernelError.self) { try ModelKernel(model: .post12608, physmem: 1 << 60) }
        // A layout that wraps past 2^64 cannot hold arenas.
        do {
            _ = try ModelKernel(model: .pre12608, physmem: 1 << 52)
            Issue.record("a 4 PiB pre-12608 layout booted")
        } catch {
            guard case .unusableLayout = error else { Issue.record("unexpected \(error)"); return }
        }
    }
}
