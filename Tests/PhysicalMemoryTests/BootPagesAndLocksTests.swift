import Testing
import PhysicalMemory

@Suite("Boot pages, page locks, lock counts")
struct BootPagesAndLocksTests {
    @Test func bootPagesAreCountedUntilReleased() throws {
        let pm = try PhysicalMemory(pageCount: 32)
        let boot = try (0..<5).map { _ in try pm.bootPageAllocate() }
        #expect(pm.bootPages == 5)
        #expect(try pm.page(boot[0]).state == .boot)
        #expect(try pm.page(boot[0]).vnode == nil)
        #expect(try pm.memstatCategory(of: boot[0]) == .bootPages)
        #expect(pm.memstat().bootPages == 5)
        #expect(throws: PhysicalMemoryError.pageIsBootPage(pfn: boot[1])) { try pm.pageDestroy(boot[1]) }
        #expect(pm.releaseBootPages() == 5)
        #expect(pm.bootPages == 0)
        #expect(pm.freelistPages == 32)
        #expect(try pm.isFree(boot[4]))
        try pm.verify()
    }

    @Test func sharedExclusiveTransitions() throws {
        let pm = try PhysicalMemory(pageCount: 8)
        let pfn = try pm.pageCreate(vnode: .kvp, offset: 0)
        #expect(try pm.pageTryLock(pfn, .shared) == false)
        try pm.pageDowngrade(pfn)
        #expect(try pm.pageTryLock(pfn, .shared))
        #expect(try pm.page(pfn).lock == .shared(count: 2))
        #expect(try pm.pageTryUpgrade(pfn) == false)
        #expect(try pm.pageTryLock(pfn, .exclusive) == false)
        try pm.pageUnlock(pfn)
        #expect(try pm.pageTryUpgrade(pfn))
        #expect(try pm.page(pfn).lock == .exclusive)
        try pm.pageUnlock(pfn)
        #expect(try pm.page(pfn).lock == .unlocked)
        #expect(throws: PhysicalMemoryError.notLocked(pfn: pfn)) { try pm.pageUnlock(pfn) }
        #expect(throws: PhysicalMemoryError.notLocked(pfn: pfn)) { try pm.pageTryUpgrade(pfn) }
        #expect(throws: PhysicalMemoryError.notExclusivelyLocked(pfn: pfn, lock: .unlocked)) { try pm.pageDowngrade(pfn) }
        #expect(throws: PhysicalMemoryError.notExclusivelyLocked(pfn: pfn, lock: .unlocked)) { try pm.pageFree(pfn) }
        #expect(try pm.pageTryLock(pfn, .exclusive))
        try pm.verify()
    }

    @Test func lockCountsAreBounded() throws {
        let pm = try PhysicalMemory(pageCount: 8)
        let pfn = try pm.pageCreate(vnode: .kvp, offset: 0)
        #expect(try pm.addLockCount(pfn) == 1)
        #expect(try pm.addLockCount(pfn) == 2)
        #expect(try pm.removeLockCount(pfn) == 1)
        #expect(try pm.removeLockCount(pfn) == 0)
        #expect(throws: PhysicalMemoryError.lockCountUnderflow(pfn: pfn)) { try pm.removeLockCount(pfn) }
        try pm.setLockCount(pfn, to: .max)
        #expect(throws: PhysicalMemoryError.lockCountOverflow(pfn: pfn)) { try pm.addLockCount(pfn) }
        try pm.setLockCount(pfn, to: 0)
        #expect(try pm.adjustCowCount(pfn, by: 2) == 2)
        #expect(throws: PhysicalMemoryError.pageLocked(pfn: pfn, lockCount: 0, cowCount: 2)) { try pm.pageFree(pfn) }
        #expect(throws: PhysicalMemoryError.lockCountUnderflow(pfn: pfn)) { try pm.adjustCowCount(pfn, by: -3) }
        #expect(try pm.adjustCowCount(pfn, by: -2) == 0)
        try pm.pageFree(pfn)
        #expect(throws: PhysicalMemoryError.pageIsCached(pfn: pfn)) { try pm.addLockCount(pfn) }
    }
}
