import Testing
import AddressSpace
import KernelLayout
import PhysicalMemory
@testable import ModelKernel

@Suite("the model kernel's entry points refuse bad input with typed errors")
struct KernelBadInputTests {
    @Test func allocations() throws {
        let k = try ModelKernel(model: .post12608, physmem: 1 * GiB)
        #expect(throws: ModelKernelError.invalidArgument(name: "kmem size", value: 0, reason: "must not be zero")) {
            try k.kmemAlloc(0)
        }
        #expect(throws: ModelKernelError.self) { try k.kmemAlloc(UInt64.max) }
        #expect(throws: ModelKernelError.self) { try k.vmmAlloc(UInt64.max - 5) }
        #expect(throws: ModelKernelError.unknownAllocation(kind: "kmem_default allocation of 4096 bytes", address: 0x5000)) {
            try k.kmemFree(0x5000, size: 4096)
        }
        let a = try k.kmemAlloc(3 * 4096)
        #expect(throws: ModelKernelError.self) { try k.kmemFree(a, size: 4096) }
        try k.kmemFree(a, size: 3 * 4096)
        #expect(throws: ModelKernelError.self) { try k.kmemFree(a, size: 3 * 4096) }
        #expect(throws: ModelKernelError.self) { try k.vmmFree(0x1000_0000, size: MiB) }
        #expect(throws: ModelKernelError.self) { try k.zioBufFree(0x1000_0000, size: 4096) }
        #expect(throws: ModelKernelError.self) { try k.kmemFree(UInt64.max - 4095, size: 8192) }
        try k.verify()
    }

    @Test func filesAndWorkloads() throws {
        let k = try ModelKernel(model: .post12608, physmem: 1 * GiB)
        let f = try k.makeFile(name: "f")
        #expect(throws: ModelKernelError.self) { try k.readFile(f, offset: 0, length: 0) }
        #expect(throws: ModelKernelError.self) { try k.readFile(f, offset: UInt64.max - 10, length: 100) }
        #expect(throws: ModelKernelError.self) { try k.segmap.release(0x1234) }
        #expect(throws: ModelKernelError.self) { try k.run(KernelWorkload(kmemAllocations: -1)) }
        #expect(throws: ModelKernelError.self) { try k.run(KernelWorkload(guests: 1, guestSize: 0)) }
        #expect(throws: ModelKernelError.self) { try k.touch(0x0000_8000_0000_0000) }
        #expect(throws: ModelKernelError.self) { try k.touch(UInt64.max) }
        // Every segmap window bound: the next getmap is refused.
        let windows = k.layout.segmapSize / SegMap.windowSize
        for i in 0..<windows { _ = try k.segmap.getmap(vnode: f, offset: i * SegMap.windowSize) }
        #expect(throws: ModelKernelError.self) { try k.segmap.getmap(vnode: f, offset: windows * SegMap.windowSize) }
    }
}
