import Testing
import PhysicalMemory

@Suite("Page contents in host memory")
struct ContentsTests {
    @Test func metadataOnlyPagesHoldNoBytes() throws {
        let pm = try PhysicalMemory(pageCount: 8)
        let pfn = try pm.pageCreate(vnode: .kvp, offset: 0)
        #expect(pm.unsafeHostBase == nil)
        #expect(throws: PhysicalMemoryError.notBacked) { try pm.read(pfn, count: 1) }
    }

    @Test func backedPagesHoldBytesAndComeBackZeroed() throws {
        let pm = try PhysicalMemory(pageCount: 64, backing: .hostMemory)
        let pfn = try pm.pageCreate(vnode: .kvp, offset: 0)
        #expect(try pm.read(pfn, count: 4) == [0, 0, 0, 0])
        try pm.write([1, 2, 3, 4], to: pfn, at: 4092)
        #expect(try pm.read(pfn, at: 4092, count: 4) == [1, 2, 3, 4])
        let base = try #require(pm.unsafeHostBase)
        #expect((base + Int(pfn) * 4096 + 4093).load(as: UInt8.self) == 2)
        #expect(throws: PhysicalMemoryError.rangeOutsidePage(offset: 4093, length: 4)) {
            try pm.write([1, 2, 3, 4], to: pfn, at: 4093)
        }
        #expect(throws: PhysicalMemoryError.rangeOutsidePage(offset: -1, length: 1)) { try pm.read(pfn, at: -1, count: 1) }
        #expect(throws: PhysicalMemoryError.pageNotFound(pfn: 5)) { try pm.read(5, count: 1) }
        try pm.pageDestroy(pfn)
        let again = try pm.pageCreate(vnode: .kvp, offset: 0)
        #expect(again == pfn)
        #expect(try pm.read(again, at: 4092, count: 4) == [0, 0, 0, 0])
    }

    @Test func aLargeBackedMachineReservesWithoutCommitting() throws {
        // 64 GiB of frames reserved; only touched pages cost host memory.
        let pm = try PhysicalMemory(pageCount: 1 << 24, backing: .hostMemory)
        let pfn = try pm.pageCreate(at: (1 << 24) - 1, vnode: .kvp, offset: 0)
        try pm.write([0xAB], to: pfn)
        #expect(try pm.read(pfn, count: 1) == [0xAB])
    }
}
