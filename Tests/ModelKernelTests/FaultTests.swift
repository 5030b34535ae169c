import Testing
import AddressSpace
import KernelLayout
import PhysicalMemory
@testable import ModelKernel

@Suite("faults and maps in kas")
struct FaultTests {
    @Test("a fault outside every segment reports no mapping; the red zone is a no-access hole")
    func noMapping() throws {
        let k = try ModelKernel(model: .post12608, physmem: 2 * GiB)
        let L = k.layout
        #expect(throws: ModelKernelError.noMapping(address: 0x1000)) { try k.touch(0x1000) }
        // Between kdebugseg's end... and in the device range, which is an arena, not a segment.
        #expect(throws: ModelKernelError.noMapping(address: L.toxicAddr)) { try k.touch(L.toxicAddr) }
        do {
            try k.touch(L.kernelbase + 0x1234, access: .write)
            Issue.record("the red zone was accessible")
        } catch {
            #expect(error == .fault(code: .noMapping, address: L.kernelbase + 0x1234, segment: "redzone"))
        }
        // as_fault itself: FC_NOMAP.
        do {
            try k.kas.fault(address: 0x4000, size: 4096, type: .invalid, access: .read)
            Issue.record("as_fault resolved an unmapped address")
        } catch {
            #expect(error.faultCode == .noMapping)
        }
    }

    @Test("an overlapping attach is refused")
    func overlap() throws {
        let k = try ModelKernel(model: .post12608, physmem: 2 * GiB)
        let kvseg = try #require(k.segment(named: "kvseg"))
        #expect(throws: AddressSpaceError.overlap(base: kvseg.base + 4096, size: 8192, existingBase: kvseg.base,
                                                  existingSize: kvseg.size)) {
            try k.kas.attach(base: kvseg.base + 4096, size: 8192, driver: SegHole(name: "x"))
        }
        #expect(throws: AddressSpaceError.self) {
            try k.kas.map(address: k.layout.segkpBase, size: 4096) { _ in .created(SegHole(name: "y")) }
        }
        #expect(k.kas.segments.count == k.segments.count)
    }

    @Test("segkmem pages never fault in; soft locks hold them against a free")
    func segkmemFaults() throws {
        let k = try ModelKernel(model: .post12608, physmem: 2 * GiB)
        let a = try k.kmemAlloc(2 * 4096)
        // F_INVAL on a heap address: FC_NOSUPPORT.
        do {
            try k.kas.fault(address: a, size: 4096, type: .invalid, access: .read)
            Issue.record("segkmem resolved F_INVAL")
        } catch {
            #expect(error.faultCode == .notSupported)
        }
        try k.kas.fault(address: a, size: 8192, type: .softLock, access: .read)
        #expect(try k.physicalMemory.page(k.touch(a)).lock == .shared(count: 2))
        do {
            try k.kmemFree(a, size: 8192)
            Issue.record("a soft-locked page was freed")
        } catch {
            guard case .physicalMemory(.lockConflict, _) = error else { Issue.record("unexpected \(error)"); return }
        }
        // A soft lock on a heap address nobody allocated: FC_NOMAP.
        let unused = a + 64 * 4096
        do {
            try k.kas.fault(address: unused, size: 4096, type: .softLock, access: .read)
        } catch {
            #expect(error.faultCode == .noMapping)
        }
        try k.kas.fault(address: a, size: 8192, type: .softUnlock, access: .read)
        try k.kmemFree(a, size: 8192)
        try k.verify()
    }

    @Test("segkmem's and segkpm's ops tables name only what illumos fills in")
    func opsTables() throws {
        let k = try ModelKernel(model: .post12608, physmem: 2 * GiB)
        let kvseg = try #require(k.kas.segat(k.layout.kernelheap))
        #expect(kvseg.driver.opsName == "segkmem_ops")
        #expect(kvseg.driver.supportedOperations.operations == [.fault, .setprot, .checkprot, .kluster, .dump, .pagelock,
                                                              .getmemid, .getpolicy, .capable])
        #expect(k.segkpm?.supportedOperations.operations == [.fault, .dump, .pagelock, .capable])
        #expect(throws: AddressSpaceError.self) {
            try k.kas.checkProtection(address: k.layout.kernelheap, size: 4096, protection: .user)
        }
        try k.kas.checkProtection(address: k.layout.kernelheap, size: 4096, protection: [.read, .write])
        #expect(throws: AddressSpaceError.self) { try k.kas.unmap(address: k.layout.kernelheap, size: 4096) }
        // Text is read-execute: a write is a protection fault.
        #expect(throws: ModelKernelError.self) { try k.touch(AMD64.kernelText, access: .write) }
        _ = try k.touch(AMD64.kernelText, access: .execute)
    }

    @Test("segmap: file pages fault in through kmapseg, stay in the page cache, or go to the cache list")
    func segmap() throws {
        let k = try ModelKernel(model: .post12608, physmem: 2 * GiB)
        let file = try k.makeFile(name: "/etc/system")
        try k.readFile(file, offset: 0, length: 32 << 10)
        #expect(k.memstat().pageCache == 8)
        #expect(try k.physicalMemory.pageCount(of: file) == 8)
        // Mapped through a window while held.
        let w = try k.segmap.getmap(vnode: file, offset: 8192 + 100)
        #expect(k.segment(containing: w)?.name == "kmapseg")
        let pfn = try k.touch(w)
        let page = try k.physicalMemory.page(pfn)
        #expect(page.vnode == file && page.offset == 8192)
        #expect(k.dumpPages().contains { $0.segment == "kmapseg" && $0.pfn == pfn })
        try k.segmap.release(w, free: true)
        #expect(k.hat.translation(of: w) == nil)
        let m = k.memstat()
        #expect(m.pageCache == 6 && m.cachelist == 2)
        // Reading again reclaims the cached pages.
        try k.readFile(file, offset: 8192, length: 8192)
        #expect(k.memstat().cachelist == 0 && k.memstat().pageCache == 8)
        #expect(throws: ModelKernelError.self) { try k.segmap.release(w) }
        try k.verify()
    }

    @Test("concurrent consumers keep every invariant")
    func concurrent() async throws {
        let k = try ModelKernel(model: .post12608, physmem: 4 * GiB)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<3 {
                group.addTask {
                    var live: [(UInt64, UInt64)] = []
                    var stacks: [KernelStack] = []
                    for i in 0..<120 {
                        let size = UInt64(1 + (i * 7 + t) % 5) * 4096
                        live.append((try k.kmemAlloc(size), size))
                        if i % 3 == 0 { stacks.append(try k.allocateStack(t == 1 ? .lwp : .thread)) }
                        if i % 4 == 3 {
                            let (a, s) = live.removeFirst()
                            try k.kmemFree(a, size: s)
                        }
                        if i % 10 == 9 { _ = try k.vmmFree(try k.vmmAlloc(MiB), size: MiB) }
                    }
                    for (a, s) in live { try k.kmemFree(a, size: s) }
                    for s in stacks { try k.freeStack(s) }
                }
            }
            try await group.waitForAll()
        }
        try k.verify()
        #expect(k.memstat().vmmMemory == 0)
    }
}
