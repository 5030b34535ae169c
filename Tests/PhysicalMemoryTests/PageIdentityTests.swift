import Testing
import PhysicalMemory

@Suite("Page identity, create, lookup, destroy")
struct PageIdentityTests {
    @Test func configurationCountsAndErrors() throws {
        let pm = try PhysicalMemory(pageCount: 1024)
        #expect(pm.totalPages == 1024)
        #expect(pm.physmem == 1024)
        #expect(pm.freelistPages == 1024)
        #expect(pm.recordedPages == 0)
        #expect(throws: PhysicalMemoryError.emptyMemory) { try PhysicalMemory(pageCount: 0) }
        #expect(throws: PhysicalMemoryError.physmemExceedsTotal(physmem: 2000, totalPages: 1024)) {
            try PhysicalMemory(pageCount: 1024, physmem: 2000)
        }
        #expect(throws: PhysicalMemoryError.invalidMemoryRange(start: 10, end: 20)) {
            try PhysicalMemory(memoryList: [FrameRange(lower: 0, upper: 16), FrameRange(lower: 10, upper: 20)])
        }
        #expect(throws: PhysicalMemoryError.invalidMemoryRange(start: 5, end: 5)) {
            try PhysicalMemory(memoryList: [FrameRange(lower: 5, upper: 5)])
        }
        let limit = PhysicalMemory.maximumFrameNumber
        #expect(throws: PhysicalMemoryError.invalidMemoryRange(start: 0, end: limit + 1)) {
            try PhysicalMemory(pageCount: limit + 1)
        }
    }

    @Test func kernelVnodesExistWithTheirKinds() throws {
        let pm = try PhysicalMemory(pageCount: 64)
        #expect(try pm.vnodeInfo(.kvp).kind == .kernel(.kvp))
        #expect(try pm.vnodeInfo(.zvp).kind == .kernel(.zvp))
        #expect(try pm.vnodeInfo(.vvp).kind == .kernel(.vvp))
        #expect(try pm.vnodeInfo(.unusedPages).kind == .unusedPages)
        #expect(KernelVnodeIndex.kvp.rawValue == 0 && KernelVnodeIndex.zvp.rawValue == 1 && KernelVnodeIndex.vvp.rawValue == 2)
        #expect(KernelVnodeIndex.vvp.vnode == .vvp)
        let swap = try pm.makeVnode(.swapfs, name: "swapfs")
        let exec = try pm.makeVnode(.exec, name: "/usr/bin/ls")
        let file = try pm.makeVnode(.file, name: "/etc/motd")
        #expect(swap.id == Vnode.firstUserID)
        #expect(try pm.vnodeInfo(swap).kind == .swapfs)
        #expect(try pm.vnodeInfo(exec).kind == .exec)
        #expect(try pm.vnodeInfo(file).name == "/etc/motd")
        #expect(pm.vnodes.count == 7)
        #expect(throws: PhysicalMemoryError.unknownVnode(Vnode(id: 99))) { try pm.vnodeInfo(Vnode(id: 99)) }
        #expect(throws: PhysicalMemoryError.unknownVnode(.kvp)) { try pm.releaseVnode(.kvp) }
    }

    @Test func createNamesAFrameHeldExclusively() throws {
        let pm = try PhysicalMemory(pageCount: 64)
        let va: UInt64 = 0xFFFF_FE00_0000_0000
        let pfn = try pm.pageCreate(vnode: .kvp, offset: va)
        let page = try pm.page(pfn)
        #expect(page.vnode == .kvp)
        #expect(page.offset == va)
        #expect(page.lock == .exclusive)
        #expect(page.state == .inUse)
        #expect(page.lockCount == 0)
        #expect(page.physicalAddress == pfn << 12)
        #expect(pm.pageFind(vnode: .kvp, offset: va) == pfn)
        #expect(pm.freelistPages == 63)
        #expect(try pm.pageCount(of: .kvp) == 1)
        #expect(try pm.isFree(pfn) == false)
        try pm.verify()
    }

    @Test func createRefusesBadIdentities() throws {
        let pm = try PhysicalMemory(pageCount: 64)
        let pfn = try pm.pageCreate(vnode: .kvp, offset: 0x1000)
        #expect(throws: PhysicalMemoryError.identityExists(vnode: .kvp, offset: 0x1000, pfn: pfn)) {
            try pm.pageCreate(vnode: .kvp, offset: 0x1000)
        }
        #expect(throws: PhysicalMemoryError.offsetNotPageAligned(offset: 0x1234)) {
            try pm.pageCreate(vnode: .kvp, offset: 0x1234)
        }
        #expect(throws: PhysicalMemoryError.unknownVnode(Vnode(id: 42))) {
            try pm.pageCreate(vnode: Vnode(id: 42), offset: 0)
        }
        #expect(throws: PhysicalMemoryError.reservedVnode(.unusedPages)) {
            try pm.pageCreate(vnode: .unusedPages, offset: 0)
        }
        // Run creation is all or nothing: the clash at the third page leaves nothing behind.
        #expect(throws: PhysicalMemoryError.identityExists(vnode: .kvp, offset: 0x1000, pfn: pfn)) {
            try pm.pageCreate(vnode: .kvp, offset: 0, pageCount: 4)
        }
        #expect(pm.recordedPages == 1)
        #expect(throws: PhysicalMemoryError.offsetOverflow(offset: UInt64.max - 0xFFF, pageCount: 2)) {
            try pm.pageCreate(vnode: .kvp, offset: UInt64.max - 0xFFF, pageCount: 2)
        }
        #expect(throws: PhysicalMemoryError.zeroPageCount) { try pm.pageCreate(vnode: .kvp, offset: 0, pageCount: 0) }
        try pm.verify()
    }

    @Test func runCreatesConsecutiveIdentities() throws {
        let pm = try PhysicalMemory(pageCount: 64)
        let pfns = try pm.pageCreate(vnode: .zvp, offset: 0x10000, pageCount: 8)
        #expect(pfns.count == 8)
        #expect(Set(pfns).count == 8)
        for (i, pfn) in pfns.enumerated() {
            #expect(pm.pageFind(vnode: .zvp, offset: 0x10000 + UInt64(i) * 4096) == pfn)
        }
        #expect(try pm.pages(of: .zvp).map(\.pfn) == pfns)
        #expect(try pm.pageCount(of: .zvp) == 8)
        try pm.verify()
    }

    @Test func destroyNeedsExclusiveAndNoLockCount() throws {
        let pm = try PhysicalMemory(pageCount: 16)
        let pfn = try pm.pageCreate(vnode: .kvp, offset: 0)
        try pm.setLockCount(pfn, to: 1)
        #expect(throws: PhysicalMemoryError.pageLocked(pfn: pfn, lockCount: 1, cowCount: 0)) { try pm.pageDestroy(pfn) }
        try pm.setLockCount(pfn, to: 0)
        try pm.pageDowngrade(pfn)
        #expect(throws: PhysicalMemoryError.notExclusivelyLocked(pfn: pfn, lock: .shared(count: 1))) {
            try pm.pageDestroy(pfn)
        }
        #expect(try pm.pageTryUpgrade(pfn))
        try pm.pageDestroy(pfn)
        #expect(pm.pageFind(vnode: .kvp, offset: 0) == nil)
        #expect(try pm.isFree(pfn))
        #expect(pm.freelistPages == 16)
        #expect(try pm.pageCount(of: .kvp) == 0)
        #expect(throws: PhysicalMemoryError.pageNotFound(pfn: pfn)) { try pm.pageDestroy(pfn) }
        #expect(throws: PhysicalMemoryError.pfnOutOfRange(pfn: 16, limit: 16)) { try pm.pageDestroy(16) }
        try pm.verify()
    }

    @Test func lookupLocksAndReclaimsFromTheCacheList() throws {
        let pm = try PhysicalMemory(pageCount: 16)
        let file = try pm.makeVnode(.file, name: "f")
        let pfn = try pm.pageCreate(vnode: file, offset: 0x2000)
        // Held SE_EXCL by the creator: a lookup would wait.
        #expect(throws: PhysicalMemoryError.lockConflict(pfn: pfn, held: .exclusive, requested: .shared)) {
            try pm.pageLookup(vnode: file, offset: 0x2000, lock: .shared)
        }
        try pm.pageFree(pfn)
        #expect(try pm.page(pfn).state == .cached)
        #expect(pm.cachelistPages == 1)
        #expect(try pm.pageLookup(vnode: file, offset: 0x2000, lock: .shared) == pfn)
        #expect(try pm.page(pfn).state == .inUse)
        #expect(pm.cachelistPages == 0)
        #expect(try pm.pageLookup(vnode: file, offset: 0x2000, lock: .shared) == pfn)
        #expect(try pm.page(pfn).lock == .shared(count: 2))
        #expect(throws: PhysicalMemoryError.lockConflict(pfn: pfn, held: .shared(count: 2), requested: .exclusive)) {
            try pm.pageLookup(vnode: file, offset: 0x2000, lock: .exclusive)
        }
        #expect(try pm.pageLookup(vnode: file, offset: 0x3000, lock: .shared) == nil)
        try pm.verify()
    }

    @Test func cachedPagesAreReclaimedWhenTheFreeListIsEmpty() throws {
        let pm = try PhysicalMemory(pageCount: 4)
        let file = try pm.makeVnode(.file, name: "f")
        let pfns = try pm.pageCreate(vnode: file, offset: 0, pageCount: 4)
        try pm.pageFree(pfns[2])
        try pm.pageFree(pfns[0])
        try pm.pageFree(pfns[3], dontNeed: true)   // reused first
        #expect(pm.freelistPages == 0)
        let a = try pm.pageCreate(vnode: .kvp, offset: 0)
        #expect(a == pfns[3])
        #expect(pm.pageFind(vnode: file, offset: 3 * 4096) == nil)
        let b = try pm.pageCreate(vnode: .kvp, offset: 0x1000)
        #expect(b == pfns[2])
        #expect(try pm.pageCount(of: file) == 2)
        let c = try pm.pageCreate(vnode: .kvp, offset: 0x2000)
        #expect(c == pfns[0])
        #expect(throws: PhysicalMemoryError.outOfMemory(requested: 1, available: 0)) {
            try pm.pageCreate(vnode: .kvp, offset: 0x3000)
        }
        #expect(throws: PhysicalMemoryError.outOfMemory(requested: 2, available: 0)) {
            try pm.pageCreate(vnode: .kvp, offset: 0x3000, pageCount: 2)
        }
        try pm.verify()
    }

    @Test func vnodeReleaseNeedsNoPages() throws {
        let pm = try PhysicalMemory(pageCount: 8)
        let v = try pm.makeVnode(.swapfs, name: "anon")
        let pfn = try pm.pageCreate(vnode: v, offset: 0)
        #expect(throws: PhysicalMemoryError.vnodeHasPages(v, pageCount: 1)) { try pm.releaseVnode(v) }
        try pm.pageDestroy(pfn)
        try pm.releaseVnode(v)
        #expect(throws: PhysicalMemoryError.unknownVnode(v)) { try pm.pageCreate(vnode: v, offset: 0) }
    }
}
