import Testing
import GuestMemory
import Inspect
import PhysicalMemory
import Vmem
@testable import ModelKernel

/// Every walker alone and through the pipeline into its dcmd, the dcmd and
/// walker lists, `::help`, usage errors, `! CMD` and `::set`. Each line is
/// parsed and its values checked against the model; no whole output is
/// compared with a stored string.
@Suite("mdb pipelines, walkers and usage")
struct MdbPipelineTests {
    static func setUp() throws -> (ModelKernel, MdbSession) {
        let k = try ModelKernel(model: .post12608, physmem: 1 * GiB)
        try k.run(KernelWorkload(kmemAllocations: 16, threads: 4, lwps: 2, zfsBuffers: 4, fileBytes: 8192,
                                 guests: 2, guestSize: 16 * MiB, guestProcesses: true))
        return (k, MdbSession(kernel: k))
    }

    static func hex(_ v: UInt64) -> String { String(v, radix: 16) }

    /// The addresses a walk printed, one per line.
    static func addresses(_ out: MdbSession.Output) -> [UInt64] {
        out.text.split(separator: "\n").compactMap { UInt64($0, radix: 16) }
    }

    /// A table's lines split into words, and how many were a header (start with `header`).
    static func table(_ text: String, header: String) -> (headers: Int, rows: [[String]]) {
        let lines = text.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        let headers = lines.filter { $0.first == header }.count
        return (headers, lines.filter { $0.first != header })
    }

    @Test("each walker yields what the model holds")
    func walkersAlone() throws {
        let (k, s) = try Self.setUp()
        #expect(Self.addresses(s.execute("::walk vmem")) == k.arenas.preorder.map(\.arena.address))
        let heap = try #require(k.arenas["heap"])
        let under = Self.addresses(s.execute("\(Self.hex(heap.address))::walk vmem"))
        #expect(under.first == heap.address && under.count > 1)
        for a in under.dropFirst() {
            var p = k.arenas.arenas.first { $0.address == a }?.parent
            while let q = p, q !== heap { p = q.parent }
            #expect(p === heap, "\(Self.hex(a)) is not under heap")
        }
        // vmem_postfix: the same arenas, each after every arena that imports from it.
        let post = Self.addresses(s.execute("::walk vmem_postfix"))
        #expect(post.sorted() == k.arenas.preorder.map(\.arena.address).sorted() && post != Self.addresses(s.execute("::walk vmem")))
        for arena in k.arenas.arenas {
            guard let parent = arena.parent, let i = post.firstIndex(of: arena.address) else { continue }
            #expect(post.firstIndex(of: parent.address).map { $0 > i } == true, "\(arena.name) after its source \(parent.name)")
        }
        let heapPost = Self.addresses(s.execute("\(Self.hex(heap.address))::walk vmem_postfix"))
        #expect(heapPost.last == heap.address && heapPost.sorted() == under.sorted())
        for arena in k.arenas.arenas {
            let at = Self.hex(arena.address)
            #expect(Self.addresses(s.execute("\(at)::walk vmem_seg")) == arena.segments([.allocated, .free, .spans, .markers]).map(\.tagAddress))
            #expect(Self.addresses(s.execute("\(at)::walk vmem_alloc")) == arena.segments(.allocated).map(\.tagAddress))
            #expect(Self.addresses(s.execute("\(at)::walk vmem_free")) == arena.segments(.free).map(\.tagAddress))
            #expect(Self.addresses(s.execute("\(at)::walk vmem_span")) == arena.segments(.spans).map(\.tagAddress))
        }
        #expect(Self.addresses(s.execute("kas::walk seg")) == k.kas.segments.map(\.address))
        // Each guest's bhyve process: ::walk as lists kas and them; their one segment is segvmm's.
        let spaces = Self.addresses(s.execute("::walk as"))
        #expect(spaces == [k.kas.address] + k.processAddressSpaces.map(\.address) && spaces.count == 1 + k.hostedGuests.count)
        for a in spaces.dropFirst() {
            let rows = s.execute("\(Self.hex(a))::walk seg | ::seg").text.split(separator: "\n")
            #expect(rows.count == 2 && rows[1].hasSuffix(" segvmm_ops"), "\(rows)")
        }
        #expect(s.execute("1234::walk seg").text.hasPrefix("mdb: 1234 is not an address space"))
        #expect(Self.addresses(s.execute("::walk vm")) == k.hostedGuests.map(\.address))
        let guest = try #require(k.hostedGuests.first)
        #expect(Self.addresses(s.execute("\(Self.hex(guest.address))::walk memmap")) == guest.memory.mappings.map(\.gpa))
        #expect(Self.addresses(s.execute("::walk dump")) == k.dumpPages().map(\.address))
        // page: one page_t per recorded frame, in frame order, each mapping back to its frame.
        var pfns: [PageFrameNumber] = []
        k.physicalMemory.forEachPage { pfns.append($0.pfn) }
        let pages = Self.addresses(s.execute("::walk page"))
        #expect(pages.count == pfns.count)
        #expect(pages.compactMap { k.pageFrame(atStructAddress: $0) } == pfns.sorted())
        #expect(pages == pages.sorted())
        let kvpPages = try k.physicalMemory.pages(of: .kvp)
        #expect(Self.addresses(s.execute("kvps::walk page")).compactMap { k.pageFrame(atStructAddress: $0) }
                == kvpPages.map(\.pfn))
    }

    @Test("::walk vmem | ::vmem prints one header and a row per arena, in walk order")
    func vmemPipeline() throws {
        let (k, s) = try Self.setUp()
        let out = s.execute("::walk vmem | ::vmem")
        #expect(!out.isError)
        let t = Self.table(out.text, header: "ADDR")
        #expect(t.headers == 1)
        #expect(t.rows.map { UInt64($0[0], radix: 16) } == k.arenas.preorder.map(\.arena.address))
        for (row, (arena, _)) in zip(t.rows, k.arenas.preorder) {
            #expect(row[1] == arena.name)
            #expect(UInt64(row[2]) == arena.statistics.memInUse && UInt64(row[3]) == arena.statistics.memTotal)
        }
    }

    @Test("the vmem_seg walkers feed ::vmem_seg, with its filters, one header in all")
    func vmemSegPipelines() throws {
        let (k, s) = try Self.setUp()
        let kinds: [(String, WalkMask, Set<String>)] = [("vmem_seg", [.allocated, .free, .spans, .markers], ["ALLC", "FREE", "SPAN", "ROTR", "WLKR"]),
                                                        ("vmem_alloc", .allocated, ["ALLC"]), ("vmem_free", .free, ["FREE"]),
                                                        ("vmem_span", .spans, ["SPAN"])]
        for arena in k.arenas.arenas {
            for (walker, mask, types) in kinds {
                let segs = arena.segments(mask)
                let t = Self.table(s.execute("\(Self.hex(arena.address))::walk \(walker) | ::vmem_seg -s").text, header: "ADDR")
                #expect(t.headers == (segs.isEmpty ? 0 : 1), "\(arena.name) \(walker)")
                #expect(t.rows.count == segs.count)
                for (row, seg) in zip(t.rows, segs) {
                    #expect(UInt64(row[0], radix: 16) == seg.tagAddress && types.contains(row[1]))
                    #expect(UInt64(row[2], radix: 16) == seg.start && UInt64(row[3], radix: 16) == seg.size)
                }
            }
        }
        // Walks chain: every arena's allocated segments, then filtered by size.
        let all = k.arenas.arenas.reduce(0) { $0 + $1.segments(.allocated).count }
        let chained = Self.table(s.execute("::walk vmem | ::walk vmem_alloc | ::vmem_seg").text, header: "ADDR")
        #expect(chained.headers == 1 && chained.rows.count == all && chained.rows.allSatisfy { $0[1] == "ALLC" })
        let big = k.arenas.arenas.reduce(0) { $0 + $1.segments(.allocated).filter { $0.size >= 1 << 20 }.count }
        #expect(Self.table(s.execute("::walk vmem | ::walk vmem_seg | ::vmem_seg -T ALLC -m 0x100000").text,
                           header: "ADDR").rows.count == big)
    }

    @Test("kas::walk seg feeds ::seg and ::whatis")
    func segPipelines() throws {
        let (k, s) = try Self.setUp()
        let t = Self.table(s.execute("kas::walk seg | ::seg").text, header: "SEG")
        #expect(t.headers == 1 && t.rows.map { UInt64($0[0], radix: 16) } == k.kas.segments.map(\.address))
        let whatis = s.execute("kas::walk seg | ::whatis")
        #expect(!whatis.isError)
        // Each struct seg lives in kernel data or the heap: one "not in"/"is in" line per address.
        let lines = whatis.text.split(separator: "\n")
        for seg in k.kas.segments {
            #expect(lines.contains { $0.hasPrefix(Self.hex(seg.address) + " is ") })
        }
    }

    @Test("::walk page feeds ::page: frame, identity and state as the model has them")
    func pagePipeline() throws {
        let (k, s) = try Self.setUp()
        let vvp = try k.physicalMemory.pages(of: .vvp)
        // kvps+0x400 is kvps[KV_VVP]; SYMBOL+OFFSET is the one expression the session reads.
        #expect(s.execute("kvps+0x400::walk page").text == s.execute("\(Self.hex(k.symbols.kvp(2)))::walk page").text)
        let vvpAddress = Self.hex(k.symbols.kvp(2))
        let rows = Self.table(s.execute("\(vvpAddress)::walk page | ::page").text, header: "PAGE")
        #expect(rows.headers == 1 && rows.rows.count == vvp.count && !vvp.isEmpty)
        for (row, p) in zip(rows.rows, vvp) {
            #expect(k.pageFrame(atStructAddress: UInt64(row[0], radix: 16) ?? 0) == p.pfn)
            #expect(UInt64(row[1], radix: 16) == p.pfn && row[2] == vvpAddress)
            #expect(UInt64(row[3], radix: 16) == p.offset && UInt64(row[5]) == UInt64(p.lockCount) && row[7] == "inuse")
        }
        // The whole walk prints one row per page_t in use.
        var count = 0
        k.physicalMemory.forEachPage { _ in count += 1 }
        #expect(Self.table(s.execute("::walk page | ::page").text, header: "PAGE").rows.count == count)
        // A free frame's page_t has no identity; an address between page_ts is refused.
        let free = try #require(k.physicalMemory.freeRanges.first).lower
        let freeRow = s.execute("\(Self.hex(try #require(k.pageStructAddress(of: free))))::page")
        #expect(freeRow.text.hasSuffix(" free\n"))
        #expect(s.execute("\(Self.hex(k.layout.vallocBase + 1))::page").isError)
    }

    @Test("::walk vm feeds the guest dcmds; ::walk memmap feeds ::npt")
    func guestPipelines() throws {
        let (k, s) = try Self.setUp()
        let guests = k.hostedGuests
        #expect(guests.count == 2)
        let vm = Self.table(s.execute("::walk vm | ::vm").text, header: "ADDR")
        #expect(vm.headers == 1 && vm.rows.map { UInt64($0[0], radix: 16) } == guests.map(\.address))
        let memseg = Self.table(s.execute("::walk vm | ::memseg").text, header: "ID")
        #expect(memseg.headers == 1 && memseg.rows.count == guests.reduce(0) { $0 + $1.memory.segments.count })
        let memmap = Self.table(s.execute("::walk vm | ::memmap").text, header: "GPA")
        #expect(memmap.headers == 1)
        #expect(memmap.rows.map { UInt64($0[0], radix: 16) } == guests.flatMap { $0.memory.mappings.map(\.gpa) })
        let g = Self.hex(guests[1].address)
        let npt = s.execute("\(g)::walk memmap | ::npt -g \(g)")
        #expect(!npt.isError)
        #expect(npt.text.split(separator: "\n").filter { $0.hasPrefix("guest ") }.count == guests[1].memory.mappings.count)
    }

    @Test("::dcmds, ::walkers and ::help NAME come from the same tables")
    func listsAndHelp() throws {
        let (_, s) = try Self.setUp()
        let dcmds = s.execute("::dcmds").text.split(separator: "\n")
        #expect(dcmds.count == MdbSession.dcmds.count)
        for d in MdbSession.dcmds {
            #expect(dcmds.contains { $0.hasPrefix("  " + d.name + " ") && $0.hasSuffix(" - " + d.summary) }, "\(d.name)")
        }
        let walkers = s.execute("::walkers").text.split(separator: "\n").map { String($0.split(separator: " ")[0]) }
        #expect(s.execute("::walkers").text.split(separator: "\n").allSatisfy { $0.hasPrefix("  ") && $0.contains(" - ") })
        #expect(Set(walkers) == ["as", "dump", "memmap", "page", "seg", "vm", "vmem", "vmem_alloc", "vmem_free", "vmem_postfix", "vmem_seg", "vmem_span"])
        for d in MdbSession.dcmds {
            let help = s.execute("::help \(d.name)")
            #expect(!help.isError && help.text.contains(d.usage) && help.text.contains(d.summary))
            #expect(s.execute("::help ::\(d.name)").text == help.text)
        }
        #expect(s.execute("::help vmem_seg").text.contains("ADDR::vmem_seg [-sv] [-c CALLER] [-e EARLIEST] [-l LATEST] [-m MIN] [-M MAX] [-t THREAD] [-T TYPE]"))
        #expect(s.execute("::help nosuch").isError)
        #expect(s.execute("::help").text.contains("::walk NAME"))
    }

    @Test("::DCMD ADDR, the form of ARCHITECTURE.md's command table, is ADDR::DCMD")
    func addressAfterTheName() throws {
        let (k, s) = try Self.setUp()
        let heap = try #require(k.arenas["heap"])
        let at = Self.hex(heap.address)
        #expect(s.execute("::vmem_seg \(at)").text == s.execute("\(at)::vmem_seg").text)
        #expect(s.execute("::vmem_seg \(at) -T SPAN -s").text == s.execute("\(at)::vmem_seg -T SPAN -s").text)
        #expect(s.execute("::vmem \(at)").text == s.execute("\(at)::vmem").text)
        let kvseg = try #require(k.segment(named: "kvseg"))
        #expect(s.execute("::seg \(Self.hex(kvseg.address))").text == s.execute("\(Self.hex(kvseg.address))::seg").text)
        #expect(s.execute("::vmem_seg \(at) -T ALLC | ::vmem_seg -s").text == s.execute("\(at)::vmem_seg -T ALLC -s").text)
        #expect(s.execute("::vmem_seg nothex").isError)
    }

    @Test("::memstat -s SIZE (mdb's internal vnode hash size) prints the same table")
    func memstatHashSize() throws {
        let (_, s) = try Self.setUp()
        #expect(s.execute("::memstat -s 0t1024").text == s.execute("::memstat").text)
        #expect(!s.execute("::memstat -s 400").isError)
    }

    @Test("unknown options and extra arguments print the dcmd's usage",
          arguments: ["::memstat junk", "::vmem extra", "heap::vmem_seg -x", "::dcmds x", "::walkers all", "::seg",
                      "::walk vmem extra", "::set -q", "::set -o", "::set -o color", "::vm x", "::help a b",
                      "::dump -v", "::walk", "::whatis kas kas", "1000::npt -z", "heap::vmem_seg -m",
                      "::memstat -s", "::memstat -s zz", "::memstat -s 0"])
    func usageErrors(line: String) throws {
        let (k, s) = try Self.setUp()
        let heap = try #require(k.arenas["heap"])
        let out = s.execute(line.replacingOccurrences(of: "heap::", with: Self.hex(heap.address) + "::"))
        #expect(out.isError && out.text.hasPrefix("mdb: "), "\(line) -> \(out.text)")
        let name = String(line.split(separator: " ")[0].split(separator: ":").last ?? "")
        let usage = try #require(MdbSession.dcmds.first { $0.name == name }).usage
        #expect(out.text.contains("\nUsage: \(usage)\n"), "\(line) -> \(out.text)")
    }

    @Test("! CMD hands the output to the shell; a failing dcmd hands nothing")
    func shellPipe() throws {
        let (_, s) = try Self.setUp()
        let out = s.execute("::vmem ! head -3")
        #expect(!out.isError && out.shellCommand == "head -3")
        #expect(out.text == s.execute("::vmem").text)
        #expect(s.execute("::walk vmem | ::vmem !wc -l").shellCommand == "wc -l")
        // The first ! ends the mdb part: pipes after it are the shell's.
        let shell = s.execute("::walk vmem | ::vmem ! grep heap | wc -l")
        #expect(shell.shellCommand == "grep heap | wc -l" && shell.text == s.execute("::walk vmem | ::vmem").text)
        #expect(s.execute("::vmem").shellCommand == nil)
        let bad = s.execute("::memstat junk ! cat")
        #expect(bad.isError && bad.shellCommand == nil)
        #expect(s.execute("::vmem !").isError)
        #expect(s.execute("! ls").isError)
    }

    @Test("::set turns the pager on and off; the kernel is untouched")
    func setPager() throws {
        let (k, s) = try Self.setUp()
        #expect(s.pagerEnabled)
        #expect(!s.execute("::set +o pager").isError && !s.pagerEnabled)
        #expect(s.execute("::set").text == "pager: off\n")
        _ = s.execute("::set -o pager")
        #expect(s.pagerEnabled)
        _ = s.execute("::set -P")
        #expect(!s.pagerEnabled)
        #expect(s.execute("::set -P -q").isError && !s.pagerEnabled, "a refused ::set changes nothing")
        try k.verify()
    }

    @Test("a pipeline refuses what mdb refuses")
    func pipelineErrors() throws {
        let (k, s) = try Self.setUp()
        let heap = Self.hex(try #require(k.arenas["heap"]).address)
        for bad in ["::vmem | ::vmem", "::walk vmem | \(heap)::vmem", "::walk vmem |", "| ::vmem", "::walk vmem_seg",
                    "kas::walk vmem_seg", "\(heap)::walk vm", "kas::walk seg | ::vmem", "::walk nosuch | ::vmem",
                    "::walk vmem | ::nosuch", "kvps::walk seg", "kas::walk page"] {
            let out = s.execute(bad)
            #expect(out.isError && out.text.hasPrefix("mdb: "), "\(bad)")
        }
        // A walk that yields nothing runs the dcmd zero times.
        if let empty = k.arenas.arenas.first(where: { $0.segments(.free).isEmpty }) {
            let out = s.execute("\(Self.hex(empty.address))::walk vmem_free | ::vmem_seg")
            #expect(out.text.isEmpty && !out.isError && !out.quit)
        }
        #expect(s.execute("::walk vm | ::vm | ::vm").isError)
    }
}
