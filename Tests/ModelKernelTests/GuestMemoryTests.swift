import Testing
import AddressSpace
import KernelLayout
import PhysicalMemory
@testable import ModelKernel

@Suite("guest memory from vmm_alloc_arena (seed 000)")
struct GuestMemoryTests {
    @Test("a guest of G bytes is G/4096 pages of VMM Memory, not in the dump, and freeing it restores ::memstat",
          arguments: [1 * MiB, 3 * MiB, 16 * MiB])
    func guestAccounting(size: UInt64) throws {
        let k = try ModelKernel(model: .post12608, physmem: 4 * GiB)
        try k.run(KernelWorkload(kmemAllocations: 32, threads: 4, lwps: 1, zfsBuffers: 4, fileBytes: 16 << 10))
        let before = k.memstat()
        let beforeText = before.rendered()
        let dumpBefore = k.dumpPages().count

        let guest = try k.vmmAlloc(size)
        let during = k.memstat()
        #expect(during.vmmMemory == size / 4096)
        #expect(during.kernel >= before.kernel, "page tables for the guest are kernel memory")
        #expect(during.rendered().contains("VMM Memory"))
        #expect(!beforeText.contains("VMM Memory"), "the row is shown only when non-zero")
        // The guest is inside kvmmseg, mapped, wired, on KV_VVP at offset = VA.
        let seg = try #require(k.segment(containing: guest))
        #expect(seg.name == "kvmmseg")
        for va in stride(from: guest, to: guest + size, by: 4096 * 37) {
            let pfn = try k.touch(va, access: .write)
            let page = try k.physicalMemory.page(pfn)
            #expect(page.vnode == .vvp && page.offset == va && page.lockCount == 1)
        }
        // Not in the dump; kernel heap pages are.
        let dump = k.dumpPages()
        #expect(dump.count == dumpBefore, "the guest adds nothing to a dump")
        #expect(!dump.contains { $0.vnode == .vvp || $0.vnode == .zvp })
        #expect(!dump.contains { $0.address >= guest && $0.address < guest + size })
        let heapPage = try k.kmemAlloc(4096)
        #expect(k.dumpPages().contains { $0.address == heapPage && $0.vnode == .kvp })
        try k.kmemFree(heapPage, size: 4096)
        try k.verify()

        try k.vmmFree(guest, size: size)
        let after = k.memstat()
        #expect(after == before)
        #expect(after.rendered() == beforeText)
        #expect(k.arenas["kvmm_arena"]?.statistics.memInUse == 0)
        try k.verify()
    }

    @Test("ZFS buffers are ZFS File Data and stay out of the dump too")
    func zfs() throws {
        let k = try ModelKernel(model: .post12608, physmem: 2 * GiB)
        let b = try k.zioBufAlloc(128 << 10)
        #expect(k.memstat().zfsFileData == 32)
        #expect(k.segment(containing: b)?.name == "kzioseg")
        #expect(!k.dumpPages().contains { $0.address >= b && $0.address < b + (128 << 10) })
        try k.zioBufFree(b, size: 128 << 10)
        #expect(k.memstat().zfsFileData == 0)
    }

    @Test("only post-12608 has guest memory; i386 has no ZFS arena")
    func modelsWithoutTheArena() throws {
        let pre = try ModelKernel(model: .pre12608, physmem: 2 * GiB)
        #expect(throws: ModelKernelError.notSupported(model: "pre-12608", feature: "vmm_alloc_arena arena")) {
            try pre.vmmAlloc(MiB)
        }
        #expect(throws: ModelKernelError.notSupported(model: "pre-12608", feature: "vmm_alloc_arena (guests)")) {
            try pre.run(KernelWorkload(guests: 1, guestSize: MiB))
        }
        let i386 = try ModelKernel(model: .i386, physmem: 2 * GiB)
        #expect(throws: ModelKernelError.notSupported(model: "i386", feature: "zfs_file_data_buf arena")) {
            try i386.zioBufAlloc(4096)
        }
    }

    @Test("a guest larger than free memory fails with the page layer's error and changes nothing")
    func outOfMemory() throws {
        let k = try ModelKernel(model: .post12608, physmem: 64 * MiB)
        let before = k.memstat()
        do {
            _ = try k.vmmAlloc(128 * MiB)
            Issue.record("a 128 MiB guest fit in 64 MiB")
        } catch {
            guard case .physicalMemory(.outOfMemory, _) = error else { Issue.record("unexpected \(error)"); return }
        }
        #expect(k.memstat() == before)
        try k.verify()
    }
}
