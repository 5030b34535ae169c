import AddressSpace
import ModelKernel
import class Vmem.Arena
import enum Vmem.SegmentKind

/// A little mdb over a booted ``ModelKernel``: parses one command line and
/// returns what mdb would print.
///
/// Understood: `::help`, `::vmem`, `ADDR::vmem`, `ADDR::vmem_seg [-s] [-T TYPE]
/// [-m SIZE] [-M SIZE]` (ADDR an arena from `::vmem` or one of its segments),
/// `::memstat`, `kas::walk seg`, `kas::walk seg | ::seg`, `ADDR::seg`,
/// `::whatis ADDR` / `ADDR::whatis`, `::walk dump`, `::dump`, `$q` / `::quit`.
/// Addresses are hex, as in mdb (a `0x` prefix is accepted, `0t` means
/// decimal), or the symbols `kas` and `kvps`.
public final class MdbSession {
    public struct Output: Sendable, Equatable {
        public var text: String
        public var isError: Bool
        public var quit: Bool
    }

    public let kernel: ModelKernel

    public init(kernel: ModelKernel) { self.kernel = kernel }

    public static let helpText = """
        Commands (addresses are hex; kas and kvps are symbols):
          ::help                         this list
          ::vmem                         every arena, depth first, with INUSE/TOTAL/SUCCEED/FAIL
          ADDR::vmem                     one arena
          ADDR::vmem_seg [-s] [-T TYPE] [-m MIN] [-M MAX]
                                         the segments of the arena at ADDR (or the one segment at ADDR)
          ::memstat                      pages by use (Kernel, ZFS File Data, VMM Memory, ...)
          kas::walk seg                  the segments of kas
          kas::walk seg | ::seg          the segments with base, size, data and ops vector
          ADDR::seg                      one segment
          ::whatis ADDR                  the segment, arenas, stack and page of an address
          ::walk dump                    the pages a kernel crash dump would contain
          ::dump                         those pages per segment
          $q                             quit

        """

    static func error(_ s: String) -> Output { Output(text: "mdb: " + s + "\n", isError: true, quit: false) }
    static func ok(_ s: String) -> Output { Output(text: s, isError: false, quit: false) }

    /// Runs one line.
    public func execute(_ line: String) -> Output {
        let trimmed = Self.trim(line)
        if trimmed.isEmpty { return Self.ok("") }
        if trimmed == "$q" || trimmed == "::quit" || trimmed == "::q" { return Output(text: "", isError: false, quit: true) }
        let stages = trimmed.split(separator: "|", omittingEmptySubsequences: false)
            .map { Self.trim($0) }
        if stages.count == 2 {
            guard let walk = parse(stages[0]), walk.command == "walk", walk.arguments == ["seg"],
                  let seg = parse(stages[1]), seg.command == "seg", seg.address == nil else {
                return Self.error("only the pipeline `kas::walk seg | ::seg` is supported")
            }
            guard let space = walk.address else { return Self.error("the seg walker needs an address space (kas::walk seg)") }
            guard let a = resolve(space), a == kernel.kas.address else {
                return Self.error("\(space) is not an address space (try kas)")
            }
            return Self.ok(SegRendering.render(kernel.kas.segments))
        }
        guard stages.count == 1, let cmd = parse(stages[0]) else {
            return Self.error("syntax error near \"\(trimmed)\"; try ::help")
        }
        var address: UInt64? = nil
        if let text = cmd.address {
            guard let a = resolve(text) else { return Self.error("failed to dereference symbol or address \"\(text)\"") }
            address = a
        }
        switch cmd.command {
        case "help":
            return Self.ok(Self.helpText)
        case "vmem":
            if let address {
                guard let arena = kernel.arenas.arenas.first(where: { $0.address == address }) else {
                    return Self.error("\(String(address, radix: 16)) is not an arena")
                }
                let depth = kernel.arenas.preorder.first { $0.arena === arena }?.depth ?? 0
                return Self.ok(VmemTable.header + "\n" + VmemTable.row(arena, depth: depth) + "\n")
            }
            return Self.ok(VmemTable.render(kernel.arenas.arenas))
        case "vmem_seg":
            return vmemSeg(address ?? cmd.arguments.first.flatMap(resolve), options: address == nil ? Array(cmd.arguments.dropFirst()) : cmd.arguments)
        case "memstat":
            return Self.ok(kernel.memstat().rendered())
        case "walk":
            guard let what = cmd.arguments.first else { return Self.error("::walk needs a walker name (seg, dump)") }
            switch what {
            case "seg":
                guard let address else { return Self.error("the seg walker needs an address space (kas::walk seg)") }
                guard address == kernel.kas.address else { return Self.error("\(String(address, radix: 16)) is not an address space (try kas)") }
                return Self.ok(kernel.kas.segments.map { String($0.address, radix: 16) + "\n" }.joined())
            case "dump":
                return Self.ok(DumpRendering.walk(kernel.dumpPages()))
            default:
                return Self.error("unknown walker \"\(what)\" (seg, dump)")
            }
        case "seg":
            guard let address else { return Self.error("::seg needs a segment address (kas::walk seg | ::seg)") }
            guard let seg = kernel.kas.segments.first(where: { $0.address == address }) else {
                return Self.error("\(String(address, radix: 16)) is not a segment of kas")
            }
            return Self.ok(SegRendering.header + "\n" + SegRendering.row(seg) + "\n")
        case "whatis":
            guard let a = address ?? cmd.arguments.first.flatMap(resolve) else {
                return Self.error("::whatis needs an address")
            }
            return Self.ok(WhatisRendering.render(kernel.whatis(a)))
        case "dump":
            return Self.ok(DumpRendering.summary(kernel.dumpPages(), kernel: kernel))
        default:
            return Self.error("unknown command ::\(cmd.command); try ::help")
        }
    }

    static func trim<S: StringProtocol>(_ s: S) -> String {
        var sub = Substring(s)
        while let c = sub.first, c == " " || c == "\t" || c == "\r" || c == "\n" { sub = sub.dropFirst() }
        while let c = sub.last, c == " " || c == "\t" || c == "\r" || c == "\n" { sub = sub.dropLast() }
        return String(sub)
    }

    struct Command {
        var address: String?
        var command: String
        var arguments: [String]
    }

    /// `[ADDR]::cmd [args...]`
    func parse(_ stage: String) -> Command? {
        let chars = Array(stage)
        guard let at = chars.indices.dropLast().first(where: { chars[$0] == ":" && chars[$0 + 1] == ":" }) else { return nil }
        let before = Self.trim(String(chars[..<at]))
        let words = String(chars[(at + 2)...]).split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let name = words.first else { return nil }
        return Command(address: before.isEmpty ? nil : before, command: name, arguments: Array(words.dropFirst()))
    }

    /// A hex number, `0x…`, `0t…` (decimal), or a symbol.
    func resolve(_ text: String) -> UInt64? {
        switch text {
        case "kas": return kernel.kas.address
        case "kvps": return kernel.symbols.kvps
        default: break
        }
        if text.hasPrefix("0t") { return UInt64(text.dropFirst(2)) }
        let digits = text.hasPrefix("0x") || text.hasPrefix("0X") ? String(text.dropFirst(2)) : text
        return UInt64(digits, radix: 16)
    }

    func vmemSeg(_ address: UInt64?, options: [String]) -> Output {
        guard let address else { return Self.error("::vmem_seg needs an address (an arena from ::vmem, or a segment)") }
        var o = VmemSegTable.Options()
        var i = 0
        while i < options.count {
            switch options[i] {
            case "-s": o.showSize = true
            case "-T", "-m", "-M":
                guard i + 1 < options.count else { return Self.error("option \(options[i]) needs a value") }
                let value = options[i + 1]
                i += 1
                if options[i - 1] == "-T" {
                    let kinds: [String: SegmentKind] = ["ALLC": .allocated, "ALLOC": .allocated, "FREE": .free,
                                                        "SPAN": .span, "ROTR": .rotor, "ROTOR": .rotor,
                                                        "WLKR": .walker, "WALKER": .walker]
                    guard let k = kinds[value.uppercased()] else { return Self.error("unknown segment type \"\(value)\"") }
                    o.kinds = [k]
                } else {
                    guard let n = resolve(value) else { return Self.error("bad size \"\(value)\"") }
                    if options[i - 1] == "-m" { o.minSize = n } else { o.maxSize = n }
                }
            default:
                return Self.error("unknown option \"\(options[i])\" (-s, -T TYPE, -m MIN, -M MAX)")
            }
            i += 1
        }
        if let arena = kernel.arenas.arenas.first(where: { $0.address == address }) {
            return Self.ok(VmemSegTable.render(arena, o))
        }
        for arena in kernel.arenas.arenas {
            if let s = arena.segments([.allocated, .free, .spans, .markers]).first(where: { $0.tagAddress == address }) {
                return Self.ok(VmemSegTable.header(o) + "\n" + VmemSegTable.row(s, o) + "\n")
            }
        }
        return Self.error("\(String(address, radix: 16)) is neither an arena nor a vmem_seg")
    }
}
