import AddressSpace
import ModelKernel
import class Vmem.Arena
import struct Vmem.Segment
import enum Vmem.SegmentKind

// The dcmd table and the kernel dcmds' argument handling; the tables
// themselves are the renderers'. The guest dcmds are in
// MdbSession+Guests.swift, the walkers in MdbSession+Walkers.swift.
extension MdbSession {
    /// Every dcmd, in the order `::dcmds` lists them.
    public static let dcmds: [MdbDcmd] = [
        MdbDcmd(name: "dcmds", address: .none, arguments: "", summary: "list the dcmds", details: "",
                run: { s, i in s.noArguments("dcmds", i) ?? MdbSession.ok(dcmdList()) }),
        MdbDcmd(name: "dump", address: .none, arguments: "",
                summary: "the pages a crash dump would contain, per segment",
                details: "Segments a dump leaves out (ZFS file data, guest memory, kpm) are named with the reason; "
                    + "::walk dump lists the pages' addresses.",
                run: { s, i in s.noArguments("dump", i) ?? MdbSession.ok(DumpRendering.summary(s.kernel.dumpPages(), kernel: s.kernel)) }),
        MdbDcmd(name: "help", address: .none, arguments: "[DCMD]", summary: "the commands, or one dcmd's usage",
                details: "", run: { s, i in s.help(i) }),
        MdbDcmd(name: "memmap", address: .required, arguments: "",
                summary: "a guest's guest-physical mappings (ADDR a vm_t from ::vm)",
                details: "Columns: GPA LEN SEG OFF PROT WIRED HOST, in GPA order.",
                run: { s, i in s.guestCommand("memmap", i) }),
        MdbDcmd(name: "memseg", address: .required, arguments: "",
                summary: "a guest's memory segments (ADDR a vm_t from ::vm)",
                details: "Columns: ID KIND NAME LENGTH BACKING DIRTY; BACKING is the kvmmseg VA of the segment's "
                    + "KV_VVP pages.",
                run: { s, i in s.guestCommand("memseg", i) }),
        MdbDcmd(name: "memstat", address: .none, arguments: "[-s SIZE]", summary: "pages by use (Kernel, ZFS File Data, VMM Memory, ...)",
                details: "-s SIZE is mdb's internal option that sizes the vnode hash used while counting; "
                    + "the model counts pages by vnode directly, so it checks SIZE and changes nothing.",
                run: { s, i in s.memstat(i) }),
        MdbDcmd(name: "npt", address: .required, arguments: "[-g ADDR]",
                summary: "the nested-table walk of a guest-physical address",
                details: "ADDR is the guest-physical address; -g names the guest (a vm_t from ::vm) and may be "
                    + "left out when only one guest is hosted. Each level's entry is decoded in the guest's format.",
                run: { s, i in s.npt(i) }),
        MdbDcmd(name: "page", address: .required, arguments: "",
                summary: "a page_t: frame, identity, lock, state (ADDR from ::walk page)",
                details: "Columns: PAGE PFN VNODE OFFSET LOCK LCT COW STATE. A page_t's address is where "
                    + "startup_memlist() would put it in the page_t array at valloc_base.",
                run: { s, i in s.page(i) }),
        MdbDcmd(name: "quit", address: .none, arguments: "", summary: "leave mdb (also ::q and $q)", details: "",
                run: { _, _ in MdbSession.Output(text: "", isError: false, quit: true) }),
        MdbDcmd(name: "seg", address: .required, arguments: "", summary: "a segment of kas (kas::walk seg | ::seg)",
                details: "Columns: SEG BASE SIZE DATA OPS.", run: { s, i in s.seg(i) }),
        MdbDcmd(name: "set", address: .none, arguments: "[-P] [-o pager | +o pager]",
                summary: "the session's options: the pager",
                details: "-o pager pages output longer than the terminal, +o pager stops that, -P toggles it. "
                    + "Without options, prints the options. Output piped to a shell (!) or not to a terminal is never paged.",
                run: { s, i in s.set(i) }),
        MdbDcmd(name: "vm", address: .optional, arguments: "", summary: "the hosted guests, or one (ADDR a vm_t)",
                details: "Columns: ADDR SIZE SEGS MAPS NPT GEN VMMPAGES.", run: { s, i in s.guestCommand("vm", i) }),
        MdbDcmd(name: "vmem", address: .optional, arguments: "",
                summary: "every arena, depth first, or one (ADDR from ::vmem)",
                details: "Columns: ADDR NAME INUSE TOTAL SUCCEED FAIL; names are indented by ancestry.",
                run: { s, i in s.vmem(i) }),
        MdbDcmd(name: "vmem_seg", address: .required,
                arguments: "[-sv] [-c CALLER] [-e EARLIEST] [-l LATEST] [-m MIN] [-M MAX] [-t THREAD] [-T TYPE]",
                summary: "the segments of an arena, or one vmem_seg",
                details: "ADDR is an arena (::vmem) or a boundary tag (::walk vmem_seg). -s prints SIZE for END; "
                    + "-v prints the size in decimal, then the allocating thread, the timestamp and the stack of an "
                    + "audited segment; -T TYPE keeps one type (ALLC, FREE, SPAN, ROTR, WLKR); -m and -M bound the "
                    + "size; -c CALLER (a function or an address in one), -e/-l (timestamps) and -t THREAD keep "
                    + "audited segments only. In the middle of a pipeline it passes on the addresses it selects.",
                run: { s, i in s.vmemSeg(i) }),
        MdbDcmd(name: "walk", address: .optional, arguments: "NAME",
                summary: "the addresses a walker yields (::walkers lists them)",
                details: "In a pipeline, [ADDR]::walk NAME | ::DCMD runs ADDR::DCMD for every address.",
                run: { s, i in
                    switch s.walk(i.arguments, from: i.address) {
                    case .failure(let f): return f.output
                    case .success(let a): return MdbSession.ok(a.map { String($0, radix: 16) + "\n" }.joined())
                    }
                }),
        MdbDcmd(name: "walkers", address: .none, arguments: "", summary: "list the walkers", details: "",
                run: { s, i in s.noArguments("walkers", i) ?? MdbSession.ok(walkerList()) }),
        MdbDcmd(name: "whatis", address: .optional, arguments: "[ADDR]",
                summary: "what an address is: segment, arenas, stack, page",
                details: "The address goes before :: or after it.", run: { s, i in s.whatis(i) }),
    ]

    /// The general help `::help` prints.
    public static let helpText = """
        Commands (addresses are hex, 0t for decimal; kas and kvps are symbols):
          ::help [DCMD]                  this text, or one dcmd's usage and description
          ::dcmds, ::walkers             every dcmd, every walker, with a line each
          ::vmem                         every arena, depth first, with INUSE/TOTAL/SUCCEED/FAIL
          ADDR::vmem                     one arena
          ADDR::vmem_seg [-s] [-T TYPE] [-m MIN] [-M MAX]
                                         the segments of the arena at ADDR (or the one segment at ADDR)
          ::memstat                      pages by use (Kernel, ZFS File Data, VMM Memory, ...)
          kas::walk seg | ::seg          the segments with base, size, data and ops vector
          ADDR::seg                      one segment
          ::whatis ADDR                  the segment, arenas, stack and page of an address
          ::walk page | ::page           every page_t (kvps::walk page: the pages of KV_KVP)
          ::walk dump, ::dump            the pages a kernel crash dump would contain, per segment
          ::vm                           the hosted guests: vm_t, size, segments, mappings, nested table, VMM pages
          ADDR::vm                       one guest (ADDR a vm_t from ::vm)
          ADDR::memseg                   the guest's memory segments: id, kind, name, length, kvmmseg backing, dirty pages
          ADDR::memmap                   the guest's guest-physical mappings: gpa, length, segment, offset, prot, wired, host
          GPA::npt [-g ADDR]             the nested-table walk of GPA in guest ADDR, each level's entry decoded
          [ADDR]::walk NAME [| ::DCMD]   a walker's addresses, or ADDR::DCMD for each (::walk vmem | ::vmem)
          ::DCMD ! CMD                   the output piped to the shell command CMD
          ::set -o pager, ::set +o pager the pager on a terminal on or off (::set -P toggles it)
          $q, ::quit                     quit

        """

    /// mdb's `::dcmds`: a name column and a line each; `::help NAME` has the usage.
    static func dcmdList() -> String {
        let width = dcmds.map(\.name.count).max() ?? 0
        return dcmds.map { "  " + MdbFormat.left($0.name, width) + " - " + $0.summary + "\n" }.joined()
    }

    static func walkerList() -> String {
        let width = walkers.map(\.name.count).max() ?? 0
        return walkers.map { "  " + MdbFormat.left($0.name, width) + " - " + $0.summary + "\n" }.joined()
    }

    /// A usage error when `i` has arguments, nil when it has none.
    func noArguments(_ name: String, _ i: MdbInvocation) -> Output? {
        i.arguments.first.map { Self.usage(name, "unexpected argument \"\($0)\"") }
    }

    func help(_ i: MdbInvocation) -> Output {
        guard let topic = i.arguments.first else { return Self.ok(Self.helpText) }
        guard i.arguments.count == 1 else { return Self.usage("help", "unexpected argument \"\(i.arguments[1])\"") }
        let name = topic.hasPrefix("::") ? String(topic.dropFirst(2)) : topic
        guard let d = Self.dcmds.first(where: { $0.name == name }) else {
            return Self.error("unknown dcmd \"\(topic)\"; ::dcmds lists them")
        }
        var text = "\nNAME\n  \(d.name) - \(d.summary)\n\nSYNOPSIS\n  \(d.usage)\n"
        if !d.details.isEmpty { text += "\nDESCRIPTION\n  \(d.details)\n" }
        return Self.ok(text + "\n")
    }

    func set(_ i: MdbInvocation) -> Output {
        if i.arguments.isEmpty { return Self.ok("pager: \(pagerEnabled ? "on" : "off")\n") }
        var pager = pagerEnabled
        var k = 0
        while k < i.arguments.count {
            switch i.arguments[k] {
            case "-P": pager.toggle()
            case "-o", "+o":
                guard k + 1 < i.arguments.count else { return Self.usage("set", "\(i.arguments[k]) needs an option name") }
                guard i.arguments[k + 1] == "pager" else {
                    return Self.usage("set", "unknown option \"\(i.arguments[k + 1])\" (pager)")
                }
                pager = i.arguments[k] == "-o"
                k += 1
            default:
                return Self.usage("set", "unknown option \"\(i.arguments[k])\"")
            }
            k += 1
        }
        pagerEnabled = pager
        return Self.ok("")
    }

    func vmem(_ i: MdbInvocation) -> Output {
        if let bad = noArguments("vmem", i) { return bad }
        let order = kernel.arenas.preorder
        guard let address = i.address else { return Self.ok(VmemTable.render(order, addresses)) }
        guard let (arena, depth) = order.first(where: { addresses.display($0.arena.address) == address }) else {
            return Self.error("\(String(address, radix: 16)) is not an arena")
        }
        return Self.ok((i.printsHeader ? VmemTable.header(addresses) + "\n" : "") + VmemTable.row(arena, depth: depth, addresses) + "\n")
    }

    func seg(_ i: MdbInvocation) -> Output {
        if let bad = noArguments("seg", i) { return bad }
        let address = i.address ?? 0
        let spaces = [kernel.kas] + kernel.processAddressSpaces
        guard let seg = spaces.lazy.compactMap({ $0.segments.first { $0.address == address } }).first else {
            return Self.error("\(String(address, radix: 16)) is not a segment of kas or of a process (::walk as)")
        }
        let w = addresses.pointerWidth
        return Self.ok((i.printsHeader ? SegRendering.header(pointerWidth: w) + "\n" : "") + SegRendering.row(seg, pointerWidth: w) + "\n")
    }

    func whatis(_ i: MdbInvocation) -> Output {
        let words = i.arguments
        guard words.count <= (i.address == nil ? 1 : 0) else {
            return Self.usage("whatis", "unexpected argument \"\(words[i.address == nil ? 1 : 0])\"")
        }
        guard let a = i.address ?? words.first.flatMap(resolve) else {
            if let w = words.first { return Self.error("failed to dereference symbol or address \"\(w)\"") }
            return Self.usage("whatis", "needs an address")
        }
        return Self.ok(WhatisRendering.render(kernel.whatis(a), addresses))
    }

    func page(_ i: MdbInvocation) -> Output {
        if let bad = noArguments("page", i) { return bad }
        let address = i.address ?? 0
        guard let pfn = kernel.pageFrame(atStructAddress: address) else {
            return Self.error("\(String(address, radix: 16)) is not a page_t (see ::walk page)")
        }
        let w = addresses.pointerWidth
        let header = i.printsHeader ? PageRendering.header(w) + "\n" : ""
        guard let p = try? kernel.physicalMemory.page(pfn) else {
            return Self.ok(header + PageRendering.freeRow(address, pfn: pfn, width: w) + "\n")
        }
        return Self.ok(header + PageRendering.row(address, p, vnodeAddress: p.vnode.flatMap(kernel.vnodeAddress), width: w) + "\n")
    }

    /// `::memstat [-s SIZE]`: `-s` sizes mdb's vnode hash, which the model
    /// does not need; a value is still required and must be a number.
    func memstat(_ i: MdbInvocation) -> Output {
        var k = 0
        while k < i.arguments.count {
            guard i.arguments[k] == "-s" else { return Self.usage("memstat", "unexpected argument \"\(i.arguments[k])\"") }
            guard k + 1 < i.arguments.count else { return Self.usage("memstat", "option -s needs a value") }
            guard let n = resolve(i.arguments[k + 1]), n > 0 else {
                return Self.usage("memstat", "bad vnode hash size \"\(i.arguments[k + 1])\" for -s")
            }
            k += 2
        }
        return Self.ok(kernel.memstat().rendered())
    }

    /// `::vmem_seg`'s options, or the usage error naming the bad one.
    func vmemSegOptions(_ options: [String]) -> Result<VmemSegTable.Options, Output.Failure> {
        var o = VmemSegTable.Options()
        var k = 0
        func fail(_ reason: String) -> Result<VmemSegTable.Options, Output.Failure> {
            .failure(.init(Self.usage("vmem_seg", reason)))
        }
        while k < options.count {
            let flag = options[k]
            switch flag {
            case "-s": o.showSize = true
            case "-v": o.verbose = true
            case "-T", "-m", "-M", "-c", "-e", "-l", "-t":
                guard k + 1 < options.count else { return fail("option \(flag) needs a value") }
                let value = options[k + 1]
                k += 1
                switch flag {
                case "-T":
                    let kinds: [String: SegmentKind] = ["ALLC": .allocated, "ALLOC": .allocated, "FREE": .free,
                                                        "SPAN": .span, "ROTR": .rotor, "ROTOR": .rotor,
                                                        "WLKR": .walker, "WALKER": .walker]
                    guard let kind = kinds[value.uppercased()] else {
                        return fail("unknown segment type \"\(value)\" (ALLC, FREE, SPAN, ROTR, WLKR)")
                    }
                    o.kinds = [kind]
                case "-c":
                    o.caller = value
                default:
                    guard let n = resolve(value) else {
                        let what = ["-e": "timestamp", "-l": "timestamp", "-t": "thread"][flag] ?? "size"
                        return fail("bad \(what) \"\(value)\" for \(flag)")
                    }
                    switch flag {
                    case "-m": o.minSize = n
                    case "-M": o.maxSize = n
                    case "-e": o.earliest = n
                    case "-l": o.latest = n
                    default: o.thread = n
                    }
                }
            default:
                return fail("unknown option \"\(flag)\"")
            }
            k += 1
        }
        return .success(o)
    }

    /// The segments `::vmem_seg` shows for `address`: an arena's that pass
    /// the filters, or the one boundary tag's if it passes.
    func vmemSegSelection(_ address: UInt64, _ o: VmemSegTable.Options) -> Result<[Vmem.Segment], Output.Failure> {
        if let arena = kernel.arenas.arenas.first(where: { addresses.display($0.address) == address }) {
            return .success(arena.segments([.allocated, .free, .spans, .markers]).filter { VmemSegTable.selects($0, o) })
        }
        if segmentsByTag == nil {
            var index: [UInt64: Vmem.Segment] = [:]
            for arena in kernel.arenas.arenas {
                for s in arena.segments([.allocated, .free, .spans, .markers]) { index[addresses.display(s.tagAddress)] = s }
            }
            segmentsByTag = index
        }
        guard let s = segmentsByTag?[address] else {
            return .failure(.init(Self.error("\(String(address, radix: 16)) is neither an arena nor a vmem_seg")))
        }
        return .success(VmemSegTable.selects(s, o) ? [s] : [])
    }

    func vmemSeg(_ i: MdbInvocation) -> Output {
        let o: VmemSegTable.Options
        switch vmemSegOptions(i.arguments) {
        case .failure(let f): return f.output
        case .success(let parsed): o = parsed
        }
        switch vmemSegSelection(i.address ?? 0, o) {
        case .failure(let f): return f.output
        case .success(let segs):
            let header = i.printsHeader ? VmemSegTable.header(o, pointerWidth: addresses.pointerWidth) + "\n" : ""
            return Self.ok(header + segs.map { VmemSegTable.row($0, o, addresses) + "\n" }.joined())
        }
    }
}
