import Testing
import AddressSpace
import KernelLayout
import PhysicalMemory
@testable import ModelKernel

@Suite("segkp stacks and red zones (address-space.md §3.7, seed 001)")
struct SegKpTests {
    @Test("a thread stack has an unmapped red-zone page below it, and touching it is a stack overflow",
          arguments: [LayoutModel.post12608, .pre12608, .i386])
    func redZone(model: LayoutModel) throws {
        let k = try ModelKernel(model: model, physmem: 2 * GiB)
        let stack = try k.allocateStack()
        #expect(stack.size == (model.isAMD64 ? 5 : 3) * 4096)
        // Every stack page is mapped, on kvp at its VA (KPD_NO_ANON), share-locked.
        for va in stride(from: stack.base, to: stack.top, by: 4096) {
            let pfn = try k.touch(va, access: .write)
            let page = try k.physicalMemory.page(pfn)
            #expect(page.vnode == .kvp && page.offset == va && page.lock == .shared(count: 1))
        }
        let red = stack.base - 4096
        #expect(k.hat.translation(of: red) == nil)
        #expect(k.physicalMemory.pageFind(vnode: .kvp, offset: red) == nil)
        let resource = try #require(k.segkp.find(stack.base))
        #expect(resource.base == red && resource.length == stack.size + 4096 && resource.flags == .threadStack)
        do {
            try k.touch(red + 0x800, access: .write)
            Issue.record("the red zone was writable")
        } catch {
            guard case let .stackOverflow(segment, _, address, stackBase, stackSize) = error else {
                Issue.record("unexpected \(error)"); return
            }
            #expect(address == red + 0x800 && stackBase == stack.base && stackSize == stack.size)
            #expect(segment == (model.isAMD64 ? "segkp" : "segkp (in kvseg)"))
            #expect(error.description.hasPrefix("kernel stack overflow"))
        }
        // The VA comes from the segkp arena: its own span on amd64, the heap on i386.
        let arena = try #require(k.arenas["segkp"])
        #expect(arena.parent?.name == (model.isAMD64 ? nil : "heap"))
        #expect(k.segment(containing: stack.base)?.name == (model.isAMD64 ? "kpseg" : "kvseg"))
        try k.verify()
    }

    @Test("released stacks wait in the freelist cache, whole, up to its maximum")
    func cache() throws {
        let k = try ModelKernel(ModelKernelConfiguration(layout: .init(model: .post12608, physmem: 2 * GiB), stackCacheDepth: 2))
        let a = try k.allocateStack(), b = try k.allocateStack(), c = try k.allocateStack()
        let kernelWithThree = k.memstat().kernel
        try k.freeStack(a)
        try k.freeStack(b)
        #expect(k.segkp.cachedResources(k.threadStackCache).count == 2)
        #expect(k.memstat().kernel == kernelWithThree, "cached stacks keep their pages")
        try k.freeStack(c)   // the cache is full: c is destroyed
        #expect(k.segkp.cachedResources(k.threadStackCache).count == 2)
        #expect(k.memstat().kernel == kernelWithThree - 5)
        let d = try k.allocateStack()
        #expect(d.base == b.base, "the freelist is last in, first out")
        // A cached stack's red zone is still no stack to write to.
        #expect(throws: ModelKernelError.self) { try k.touch(a.base - 4096) }
        try k.segkp.cacheFree()
        #expect(k.segkp.cachedResources(k.threadStackCache).isEmpty)
        try k.verify()
        try k.freeStack(d)
    }

    @Test("LWP stacks are anon-backed and can be soft-locked and unlocked")
    func lwpStacks() throws {
        let k = try ModelKernel(model: .post12608, physmem: 2 * GiB)
        let s = try k.allocateStack(.lwp)
        #expect(k.memstat().anon == 5)
        let page = try k.physicalMemory.page(try k.touch(s.base))
        #expect(page.vnode == k.swapfsVnode)
        // KPD_LOCKED resources refuse F_SOFTLOCK; a pageable one accepts it.
        let raw = try k.segkp.get(length: 2 * 4096, flags: [.hasRedZone])
        try k.kas.fault(address: raw, size: 2 * 4096, type: .softLock, access: .read)
        #expect(k.segkp.find(raw)?.isLocked == true)
        #expect(try k.physicalMemory.page(k.touch(raw)).lock == .shared(count: 1))
        #expect(throws: AddressSpaceError.self) {
            try k.kas.fault(address: raw, size: 4096, type: .softUnlock, access: .read)
        }
        try k.kas.fault(address: raw, size: 2 * 4096, type: .softUnlock, access: .read)
        #expect(try k.physicalMemory.page(k.touch(raw)).lock == .unlocked)
        try k.segkp.release(raw)
        try k.verify()
        try k.freeStack(s)
    }

    @Test("segkp's ops table: only what segkp_ops fills in; the rest is a typed notSupported")
    func opsTable() throws {
        let k = try ModelKernel(model: .post12608, physmem: 2 * GiB)
        #expect(k.segkp.supportedOperations.operations == [.fault, .checkprot, .kluster, .dump, .pagelock, .getmemid,
                                                         .getpolicy, .capable])
        let s = try k.allocateStack()
        do {
            try k.kas.setProtection(address: s.base, size: 4096, protection: .read)
            Issue.record("segkp accepted setprot")
        } catch {
            guard case .segment(.notSupported(.setprot, driver: "segkp_ops"), _) = error else {
                Issue.record("unexpected \(error)"); return
            }
        }
        try k.kas.checkProtection(address: s.base, size: s.size, protection: [.read, .write])
        #expect(throws: AddressSpaceError.self) {
            try k.kas.checkProtection(address: s.base - 4096, size: 4096, protection: .read)
        }
    }

    @Test("segkp refuses what illumos refuses, with typed errors")
    func badInput() throws {
        let k = try ModelKernel(model: .post12608, physmem: 2 * GiB)
        #expect(throws: ModelKernelError.self) { try k.segkp.get(length: 0, flags: .threadStack) }
        #expect(throws: ModelKernelError.self) { try k.segkp.get(length: 100, flags: .threadStack) }
        #expect(throws: ModelKernelError.self) { try k.segkp.get(length: 4096, flags: [.noAnon]) }
        #expect(throws: ModelKernelError.self) { try k.segkp.get(length: 4096, flags: [.hasAnonMap, .locked]) }
        #expect(throws: ModelKernelError.unknownAllocation(kind: "segkp resource", address: 0x1000)) {
            try k.segkp.release(0x1000)
        }
        #expect(throws: ModelKernelError.self) { try k.segkp.cacheGet(7) }
        #expect(throws: ModelKernelError.self) { try k.segkp.cacheGet(-1) }
        #expect(throws: ModelKernelError.self) { try k.segkp.cacheInit(maxCount: -1, length: 4096, flags: []) }
        #expect(throws: ModelKernelError.self) { try k.segkp.cacheInit(maxCount: 1, length: 4096, flags: [.noAnon]) }
        // Two of SEGKP_MAX_CACHE are the thread and LWP caches.
        let c2 = try k.segkp.cacheInit(maxCount: 1, length: 4096, flags: [.locked])
        let c3 = try k.segkp.cacheInit(maxCount: 1, length: 4096, flags: [.locked])
        #expect(Set([c2, c3, k.threadStackCache, k.lwpStackCache]) == [0, 1, 2, 3])
        #expect(throws: ModelKernelError.self) { try k.segkp.cacheInit(maxCount: 1, length: 4096, flags: [.locked]) }
        let fake = KernelStack(kind: .thread, base: 0xdead000, size: 4096)
        #expect(throws: ModelKernelError.unknownAllocation(kind: "kernel stack", address: 0xdead000)) {
            try k.freeStack(fake)
        }
    }
}
