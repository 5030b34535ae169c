import Testing
import AddressSpace
import KernelLayout
import PhysicalMemory
@testable import ModelKernel

@Suite("smoke")
struct SmokeTests {
    @Test func boot16G() throws {
        let k = try ModelKernel(model: .post12608, physmem: 16 << 30)
        print(k.memstat().rendered())
        print(k.kas.renderSegWalk())
        let a = try k.kmemAlloc(5 * 4096)
        let s = try k.allocateStack()
        let g = try k.vmmAlloc(8 << 20)
        let z = try k.zioBufAlloc(128 << 10)
        print(k.memstat().rendered())
        try k.verify()
        try k.vmmFree(g, size: 8 << 20)
        try k.kmemFree(a, size: 5 * 4096)
        try k.freeStack(s)
        try k.zioBufFree(z, size: 128 << 10)
        try k.verify()
        print(k.memstat().rendered())
        print(k.dumpPages().count)
    }
}
