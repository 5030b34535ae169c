import Testing
import Inspect
import KernelLayout
import Vmem
@testable import ModelKernel

/// mdb on the i386 model: `%?` is 8 columns and every structure number
/// fits in 32 bits (address-space.md §3.9, "pointer width").
@Suite("mdb on a 32-bit target: 8-column pointers, 32-bit structure numbers")
struct MdbThirtyTwoBitTests {
    static func session() throws -> MdbSession {
        let k = try ModelKernel(model: .i386, physmem: 4 * GiB)
        try k.run(KernelWorkload(kmemAllocations: 16, threads: 4, lwps: 2, zfsBuffers: 0, fileBytes: 8192))
        return MdbSession(kernel: k)
    }

    static func lines(_ s: MdbSession, _ command: String) throws -> [String] {
        let out = s.execute(command)
        #expect(!out.isError, "\(command): \(out.text)")
        return out.text.split(separator: "\n").map(String.init)
    }

    /// The kernel data region of the session's layout.
    static func kernelData(_ s: MdbSession) throws -> (base: UInt64, end: UInt64) {
        let r = try #require(s.kernel.layout.region(.kernelData))
        return (r.base, r.base + r.size)
    }

    @Test("::vmem: an 8-column ADDR, each arena in its own slot of kernel data above kas and kvps")
    func vmemTable() throws {
        let s = try Self.session()
        let lines = try Self.lines(s, "::vmem")
        #expect(lines[0] == "ADDR     NAME                        INUSE        TOTAL   SUCCEED  FAIL")
        let (base, end) = try Self.kernelData(s)
        let addresses = try lines.dropFirst().map { try #require(UInt64($0.prefix(8), radix: 16)) }
        #expect(lines.dropFirst().allSatisfy { $0.dropFirst(8).first == " " })
        #expect(addresses.count == s.kernel.arenas.arenas.count)
        #expect(Set(addresses).count == addresses.count)
        for a in addresses {
            #expect(a >= base + StructAddresses.slotsOffset && a < end)
            #expect(a % StructAddresses.slotBytes == 0)
        }
        // Below the slots lie the model's static objects.
        #expect(s.kernel.symbols.kas < base + StructAddresses.slotsOffset)
        #expect(s.kernel.symbols.kvp(2) < base + StructAddresses.slotsOffset)
        // The arena's own row under its number, as ADDR::vmem.
        let heap = try #require(lines.first { $0.contains(" heap ") })
        let one = try Self.lines(s, "\(heap.prefix(8))::vmem")
        #expect(one == [lines[0], heap])
    }

    @Test("::vmem_seg and the walkers use the same 32-bit numbers, and each leads back to its segment")
    func segmentsRoundTrip() throws {
        let s = try Self.session()
        let heap = try #require(try Self.lines(s, "::vmem").first { $0.contains(" heap ") }).prefix(8)
        let table = try Self.lines(s, "\(heap)::vmem_seg")
        #expect(table[0] == "    ADDR TYPE    START      END WHO")
        let rows = table.dropFirst()
        #expect(!rows.isEmpty)
        for row in rows {
            let fields = row.split(separator: " ")
            #expect(fields[0].count == 8 && fields[2].count == 8 && fields[3].count == 8, "\(row)")
        }
        let walked = try Self.lines(s, "\(heap)::walk vmem_seg")
        #expect(walked.map { String(repeating: "0", count: 8 - $0.count) + $0 } == rows.map { String($0.prefix(8)) })
        // A tag's number, fed back, names the same segment.
        for tag in walked.prefix(5) {
            let back = try Self.lines(s, "\(tag)::vmem_seg")
            #expect(back.count == 2)
            #expect(rows.contains(back[1]))
        }
        // A pipeline through ::vmem_seg passes those numbers on.
        let spans = try Self.lines(s, "\(heap)::vmem_seg -T SPAN | ::vmem_seg")
        #expect(spans.dropFirst().allSatisfy { $0.contains(" SPAN ") })
        // -s puts the size, 8 digits, where END goes.
        let sized = try Self.lines(s, "\(heap)::vmem_seg -s")
        #expect(sized[0] == "    ADDR TYPE    START     SIZE WHO")
    }

    @Test("::whatis names the arena and tag by the numbers ::vmem and ::vmem_seg print")
    func whatis() throws {
        let s = try Self.session()
        let heap = try #require(try Self.lines(s, "::vmem").first { $0.contains(" heap ") }).prefix(8)
        let allocated = try #require(try Self.lines(s, "\(heap)::vmem_seg -T ALLC").dropFirst().first)
        let fields = allocated.split(separator: " ")
        let report = try Self.lines(s, "::whatis \(fields[2])").joined(separator: "\n")
        #expect(report.contains("(vmem \(heap))"))
        let tag = String(fields[0].drop { $0 == "0" })
        #expect(report.contains("vmem_seg \(tag)"))
    }

    @Test("::seg, ::page and the as walker print 8-column pointers")
    func otherPointers() throws {
        let s = try Self.session()
        let seg = try Self.lines(s, "kas::walk seg | ::seg")
        #expect(seg[0] == "     SEG     BASE     SIZE     DATA OPS")
        for row in seg.dropFirst() {
            let fields = row.split(separator: " ", omittingEmptySubsequences: true)
            #expect(fields.dropLast().allSatisfy { $0.count <= 8 }, "\(row)")
            #expect(row.count == 4 * 9 + fields[fields.count - 1].count, "\(row)")
        }
        let page = try #require(try Self.lines(s, "kvps::walk page").first)
        let rows = try Self.lines(s, "\(page)::page")
        #expect(rows[0].hasPrefix("    PAGE        PFN    VNODE "))
        #expect(rows[1].prefix(8) == String(repeating: "0", count: 8 - page.count) + page)
    }

    @Test("a 64-bit model keeps 16 columns and Vmem's own numbers")
    func amd64Unchanged() throws {
        let k = try ModelKernel(model: .post12608, physmem: 4 * GiB)
        let s = MdbSession(kernel: k)
        #expect(s.addresses.pointerWidth == 16)
        let first = try #require(k.arenas.preorder.first?.arena)
        #expect(s.addresses.display(first.address) == first.address)
        let row = try #require(try Self.lines(s, "::vmem").dropFirst().first)
        #expect(row.hasPrefix(MdbSessionFormat.pointer(first.address)))
    }

    @Test("numbers that do not fit a slot stay 64-bit, so no two structures share one")
    func fallback() throws {
        let arenas = try (0..<3).map { try Arena(name: "a\($0)", base: 0x1000, size: 0x10_0000, quantum: 4096) }
        // Room for two slots only.
        let numbers = StructAddresses(arenas: arenas, kernelData: (0xFEC0_0000, StructAddresses.slotsOffset + 2 * StructAddresses.slotBytes))
        #expect(numbers.pointerWidth == 8)
        #expect(numbers.display(arenas[0].address) == 0xFED0_0000)
        #expect(numbers.display(arenas[1].address) == 0xFED1_0000)
        #expect(numbers.display(arenas[2].address) == arenas[2].address)
        // A tag 32 × 2048 bytes up no longer fits its 64 KiB slot.
        #expect(numbers.display(arenas[0].address + 32 * 2047) == 0xFED0_0000 + 32 * 2047)
        #expect(numbers.display(arenas[0].address + 32 * 2048) == arenas[0].address + 32 * 2048)
        // A region at the top of the address space: no slot past 2^64.
        let top = StructAddresses(arenas: arenas, kernelData: (UInt64.max - 0x1F_FFFF, 0x20_0000))
        #expect(top.display(arenas[0].address) == UInt64.max - 0x1F_FFFF + StructAddresses.slotsOffset)
        #expect(top.display(arenas[1].address) == UInt64.max - 0x1F_FFFF + StructAddresses.slotsOffset + StructAddresses.slotBytes)
        let overflowing = StructAddresses(arenas: arenas, kernelData: (UInt64.max - 0xF_FFFF, UInt64.max))
        #expect(overflowing.display(arenas[0].address) == arenas[0].address)
        // Without a 32-bit kernel data region: Vmem's numbers.
        #expect(StructAddresses(arenas: arenas, kernelData: nil).display(arenas[1].address) == arenas[1].address)
    }
}

/// `%0?p` on a 64-bit target, spelled out for the test above.
enum MdbSessionFormat {
    static func pointer(_ v: UInt64) -> String {
        let h = String(v, radix: 16)
        return String(repeating: "0", count: 16 - h.count) + h
    }
}
