import Testing
import AddressSpace
import Inspect
import KernelLayout
import PhysicalMemory
@testable import ModelKernel

@Suite("mdb over the model kernel (address-space.md §3.9)")
struct MdbSessionTests {
    static func kernel() throws -> ModelKernel {
        let k = try ModelKernel(model: .post12608, physmem: 4 * GiB)
        try k.run(KernelWorkload(kmemAllocations: 16, threads: 4, lwps: 2, zfsBuffers: 4, fileBytes: 8192,
                                 guests: 1, guestSize: 16 * MiB))
        return k
    }

    @Test("::memstat prints the VMM Memory row in mdb's format")
    func memstat() throws {
        let k = try Self.kernel()
        let out = MdbSession(kernel: k).execute("::memstat")
        #expect(!out.isError)
        let lines = out.text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0] == "Page Summary                Pages                MB  %Tot")
        #expect(lines[1] == "------------     ----------------  ----------------  ----")
        // 4096 pages, 16 MB, (5 × 1048576 + 4096 × 1000) / (1048576 × 10) = 0.
        #expect(lines.contains("VMM Memory                   4096                16    0%"))
        #expect(lines.contains("ZFS File Data                 128                 0    0%"))
        #expect(lines.contains("Total                     1048576              4096"))
        let order = lines.compactMap { l in ["Kernel", "ZFS File Data", "VMM Memory", "Anon", "Exec and libs",
                                              "Page cache", "Free (cachelist)", "Free (freelist)"]
                                            .first { l.hasPrefix($0) } }
        #expect(order == ["Kernel", "ZFS File Data", "VMM Memory", "Anon", "Exec and libs", "Page cache",
                          "Free (cachelist)", "Free (freelist)"])
    }

    @Test("::vmem lists the whole arena tree depth first, indented by ancestry")
    func vmem() throws {
        let k = try Self.kernel()
        let out = MdbSession(kernel: k).execute("::vmem").text
        let lines = out.split(separator: "\n").map(String.init)
        #expect(lines[0] == "ADDR             NAME                        INUSE        TOTAL   SUCCEED  FAIL")
        let names = lines.dropFirst().map { String($0.dropFirst(17).prefix(22)) }
            .map { $0.reversed().drop(while: { $0 == " " }).reversed() }.map { String($0) }
        #expect(names == ["heap", "  static", "    static_alloc", "  kmem_metadata", "  kmem_va", "    kmem_default",
                          "  vmem_metadata", "    vmem_seg", "    vmem_hash", "    vmem_vmem", "heap_core", "heaptext",
                          "zfs_file_data", "  zfs_file_data_buf", "kvmm_arena", "  vmm_alloc_arena", "device", "segkp"])
        let vmm = try #require(lines.first { $0.contains("vmm_alloc_arena") })
        #expect(vmm.hasSuffix("  16777216     16777216         1     0"))
    }

    @Test("kas::walk seg | ::seg lists every segment in address order with its ops vector")
    func segWalk() throws {
        let k = try Self.kernel()
        let s = MdbSession(kernel: k)
        let lines = s.execute("kas::walk seg | ::seg").text.split(separator: "\n").map(String.init)
        #expect(lines[0] == "             SEG             BASE             SIZE             DATA OPS")
        // The seed's nine segments plus kvmmseg; the red zone has none.
        #expect(lines.count == 1 + 10)
        #expect(lines.dropFirst().map { String($0.split(separator: " ").last ?? "") } ==
                ["segkpm_ops", "segkmem_ops", "segkp_ops", "segkmem_ops", "segkmem_ops", "segmap_ops",
                 "segkmem_ops", "segkmem_ops", "segkmem_ops", "segkmem_ops"])
        let kvseg = try #require(k.segment(named: "kvseg"))
        let row = try #require(lines.first { $0.contains(" " + String(kvseg.base, radix: 16) + " ") })
        #expect(row.hasPrefix(String(kvseg.address, radix: 16)))
        #expect(row.contains(" " + String(kvseg.size, radix: 16) + " "))
        #expect(row.contains(String(k.symbols.kvp(0), radix: 16)))
        let bases = lines.dropFirst().map { UInt64($0.split(separator: " ")[1], radix: 16) ?? 0 }
        #expect(bases == bases.sorted())
        // The walk alone prints the seg addresses; ADDR::seg prints one.
        #expect(s.execute("kas::walk seg").text.split(separator: "\n").count == 10)
        #expect(s.execute("\(String(kvseg.address, radix: 16))::seg").text.split(separator: "\n").last.map(String.init) == row)
    }

    @Test("::whatis names the segment, the arenas, the stack and the page")
    func whatis() throws {
        let k = try Self.kernel()
        let s = MdbSession(kernel: k)
        let guest = try #require(k.guests.first)
        let text = s.execute("::whatis \(String(guest.address + 8192, radix: 16))").text
        #expect(text.contains("is in kvmmseg"))
        #expect(text.contains("is allocated from kvmm_arena"))
        #expect(text.contains("is allocated from vmm_alloc_arena"))
        #expect(text.contains("kvps[KV_VVP]") && text.contains("VMM Memory"))
        let stack = try #require(k.stacks.first)
        let red = s.execute("\(String(stack.base - 4096, radix: 16))::whatis").text
        #expect(red.contains("red-zone page") && red.contains("is not mapped") && red.contains("is in kpseg"))
        #expect(s.execute("::whatis kas").text.hasPrefix("\(String(k.kas.address, radix: 16)) is kas"))
        #expect(s.execute("::whatis 0x1000").text == "1000 is not in any kernel segment\n1000 is not mapped\n")
    }

    @Test("::vmem_seg, ::walk dump and ::dump")
    func vmemSegAndDump() throws {
        let k = try Self.kernel()
        let s = MdbSession(kernel: k)
        let vmm = try #require(k.arenas["vmm_alloc_arena"])
        let segs = s.execute("\(String(vmm.address, radix: 16))::vmem_seg").text.split(separator: "\n").map(String.init)
        #expect(segs[0] == "            ADDR TYPE            START              END WHO")
        #expect(segs.filter { $0.contains(" SPAN ") }.count == 1 && segs.filter { $0.contains(" ALLC ") }.count == 1)
        let alloc = try #require(segs.first { $0.contains(" ALLC ") })
        let tag = String(alloc.prefix(16))
        // -s puts the size where END goes, as zero-padded hex (mdb's %0?p).
        let sized = s.execute("\(tag)::vmem_seg -s").text.split(separator: "\n").map(String.init)
        #expect(sized.first == "            ADDR TYPE            START             SIZE WHO")
        #expect(sized.count == 2 && sized[1].hasPrefix(tag + " ALLC ") && sized[1].contains(" 0000000001000000"))
        #expect(s.execute("\(String(vmm.address, radix: 16))::vmem_seg -T FREE").text.split(separator: "\n").count == 1)
        let walk = s.execute("::walk dump").text.split(separator: "\n")
        #expect(walk.count == k.dumpPages().count)
        let summary = s.execute("::dump").text
        let rows = summary.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        #expect(rows.contains(["kvmmseg", "0", "0", "(not", "dumped:", "guest", "memory)"]))
        #expect(rows.contains(["kzioseg", "0", "0", "(not", "dumped:", "ZFS", "file", "data)"]))
        let kvseg = try #require(rows.first { $0.first == "kvseg" })
        #expect(Int(kvseg[1]) ?? 0 > 0)
    }

    @Test("bad commands are errors, not traps")
    func errors() throws {
        let k = try ModelKernel(model: .post12608, physmem: 1 * GiB)
        let s = MdbSession(kernel: k)
        for bad in ["bogus", "::nosuch", "::vmem_seg", "zzz::vmem_seg", "1234::vmem", "::walk seg", "::walk nothing",
                    "::seg", "1::seg", "::whatis", "kas::walk seg | ::vmem", "::vmem | ::seg",
                    "kvps::walk seg | ::seg", "::walk", "fffffe0000000000::vmem_seg -T NOPE", "::vmem_seg 0 -x"] {
            let out = s.execute(bad)
            #expect(out.isError, "\(bad)")
            #expect(out.text.hasPrefix("mdb: "), "\(bad)")
        }
        #expect(s.execute("").text.isEmpty)
        #expect(s.execute("$q").quit)
        #expect(s.execute("::help").text.contains("::whatis ADDR"))
    }
}
