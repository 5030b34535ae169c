import AddressSpace
import GuestMemory
import ModelKernel
import struct Vmem.Segment

/// A little mdb over a booted `ModelKernel`: parses one command line and
/// returns what mdb would print.
///
/// A line is a pipeline of stages separated by `|`, optionally followed by
/// `! CMD` (the text is for the shell; the caller runs it). Every stage but
/// the last is a walk, `[ADDR]::walk NAME`, or `::vmem_seg`, which then passes
/// on only the addresses it selects (mdb's `DCMD_PIPE_OUT`); the last is a
/// walk or a dcmd, `[ADDR]::NAME [args]` (``dcmds`` and ``walkers`` list
/// them). A stage's addresses feed the next one at a time, as `ADDR::NAME`. `$q`,
/// `::quit` and `::q` end the session. Addresses are hex, as in mdb (a `0x`
/// prefix is accepted, `0t` means decimal), or the symbols `kas` and `kvps`.
///
/// Nothing a line says changes the kernel; only `::set` changes the
/// session's own options.
public final class MdbSession {
    public struct Output: Sendable, Equatable {
        public var text: String
        public var isError: Bool
        public var quit: Bool
        /// `! CMD`: the shell command the text is to be piped to (the
        /// caller runs `/bin/sh -c CMD`); nil to print it.
        public var shellCommand: String? = nil
    }

    public let kernel: ModelKernel

    /// Whether output longer than a screen goes through a pager on a
    /// terminal (mdb's `pager` option): `::set -o pager` / `::set +o
    /// pager`, or `::set -P` to toggle. On by default; the caller decides
    /// whether there is a terminal to page on.
    public internal(set) var pagerEnabled = true

    /// Every arena's segments by boundary-tag address, built at most once
    /// per line: a pipeline feeding `::vmem_seg` thousands of tags would
    /// otherwise walk every arena for each one.
    var segmentsByTag: [UInt64: Vmem.Segment]? = nil

    /// The target's pointer width and the numbers of its arenas and
    /// boundary tags (8 columns and 32-bit numbers on the i386 model),
    /// taken afresh for each line from the arenas the kernel has then.
    public private(set) var addresses: StructAddresses = .wide

    public init(kernel: ModelKernel) {
        self.kernel = kernel
        numberStructures()
    }

    func numberStructures() {
        let data = kernel.model.isAMD64 ? nil : kernel.layout.region(.kernelData).map { ($0.base, $0.size) }
        addresses = StructAddresses(arenas: kernel.arenas.preorder.map(\.arena), kernelData: data)
    }

    static func error(_ s: String) -> Output { Output(text: "mdb: " + s + "\n", isError: true, quit: false) }
    static func ok(_ s: String) -> Output { Output(text: s, isError: false, quit: false) }

    /// A usage error: what is wrong, then the dcmd's usage line.
    static func usage(_ dcmd: String, _ reason: String) -> Output {
        let line = dcmds.first { $0.name == dcmd }?.usage ?? "::" + dcmd
        return Output(text: "mdb: ::\(dcmd): \(reason)\nUsage: \(line)\n", isError: true, quit: false)
    }

    /// Runs one line.
    public func execute(_ line: String) -> Output {
        var trimmed = Self.trim(line)
        if trimmed.isEmpty { return Self.ok("") }
        if trimmed == "$q" || trimmed == "::quit" || trimmed == "::q" { return Output(text: "", isError: false, quit: true) }
        var shell: String? = nil
        if let bang = trimmed.firstIndex(of: "!") {
            let command = Self.trim(trimmed[trimmed.index(after: bang)...])
            guard !command.isEmpty else { return Self.error("! needs a shell command (::vmem ! head -3)") }
            shell = command
            trimmed = Self.trim(trimmed[..<bang])
            guard !trimmed.isEmpty else { return Self.error("nothing to pipe to \"\(command)\"") }
        }
        var out = runPipeline(trimmed)
        if !out.isError { out.shellCommand = shell }
        return out
    }

    /// The stages of `text`, each run for every address the one before yields.
    func runPipeline(_ text: String) -> Output {
        segmentsByTag = nil
        defer { segmentsByTag = nil }
        numberStructures()
        let stages = text.split(separator: "|", omittingEmptySubsequences: false).map { Self.trim($0) }
        var fed: [UInt64]? = nil
        for (i, stage) in stages.enumerated() {
            let last = i == stages.count - 1
            guard let cmd = parse(stage) else {
                return Self.error(stage.isEmpty ? "syntax error: an empty stage in \"\(text)\""
                                                : "syntax error near \"\(stage)\"; try ::help")
            }
            var address: UInt64? = nil
            if let a = cmd.address {
                guard let v = resolve(a) else { return Self.error("failed to dereference symbol or address \"\(a)\"") }
                guard fed == nil else { return Self.error("::\(cmd.command) is fed by the pipeline; drop the address \"\(a)\"") }
                address = v
            }
            if cmd.command == "walk" {
                let starts: [UInt64?] = fed.map { $0.map { Optional($0) } } ?? [address]
                var addresses: [UInt64] = []
                for start in starts {
                    switch walk(cmd.arguments, from: start) {
                    case .failure(let f): return f.output
                    case .success(let a): addresses += a
                    }
                }
                if last { return Self.ok(addresses.map { String($0, radix: 16) + "\n" }.joined()) }
                fed = addresses
                continue
            }
            guard last else {
                // mdb's DCMD_PIPE_OUT: ::vmem_seg then yields only the addresses it selects.
                guard cmd.command == "vmem_seg" else {
                    return Self.error("::\(cmd.command) is a dcmd that does not feed a pipeline: only ::walk and ::vmem_seg do (::walkers)")
                }
                var arguments = cmd.arguments
                if fed == nil, address == nil { address = takeLeadingAddress(&arguments) }
                guard let starts = fed ?? address.map({ [$0] }) else {
                    return Self.usage("vmem_seg", "needs an address")
                }
                let options: VmemSegTable.Options
                switch vmemSegOptions(arguments) {
                case .failure(let f): return f.output
                case .success(let o): options = o
                }
                var addresses: [UInt64] = []
                for start in starts {
                    switch vmemSegSelection(start, options) {
                    case .failure(let f): return f.output
                    case .success(let segs): addresses += segs.map { self.addresses.display($0.tagAddress) }
                    }
                }
                fed = addresses
                continue
            }
            guard let dcmd = Self.dcmds.first(where: { $0.name == cmd.command }) else {
                return Self.error("unknown command ::\(cmd.command); ::dcmds lists them")
            }
            guard let fed else {
                return call(dcmd, MdbInvocation(address: address, arguments: cmd.arguments, loop: false, loopFirst: false))
            }
            var text = ""
            for (n, a) in fed.enumerated() {
                let out = call(dcmd, MdbInvocation(address: a, arguments: cmd.arguments, loop: true, loopFirst: n == 0))
                if out.isError { return Output(text: out.text, isError: true, quit: false) }
                text += out.text
            }
            return Self.ok(text)
        }
        return Self.ok("")
    }

    /// `::vmem_seg ADDR` (the form ARCHITECTURE.md's command table uses) is
    /// `ADDR::vmem_seg`: takes a leading argument that is an address, not an
    /// option, off `arguments` and returns it; nil (and `arguments` as they
    /// were) otherwise.
    func takeLeadingAddress(_ arguments: inout [String]) -> UInt64? {
        guard let first = arguments.first, !first.hasPrefix("-"), let a = resolve(first) else { return nil }
        arguments.removeFirst()
        return a
    }

    /// Checks the address against the dcmd's usage, then runs it.
    func call(_ dcmd: MdbDcmd, _ invocation: MdbInvocation) -> Output {
        var invocation = invocation
        if dcmd.address != .none, dcmd.name != "whatis", invocation.address == nil {
            invocation.address = takeLeadingAddress(&invocation.arguments)
        }
        // A dcmd that takes no address ignores one, as mdb's do (`kas::memstat`).
        switch dcmd.address {
        case .required where invocation.address == nil:
            return Self.usage(dcmd.name, "needs an address")
        default:
            return dcmd.run(self, invocation)
        }
    }

    /// `::walk NAME` from `start`.
    func walk(_ arguments: [String], from start: UInt64?) -> Result<[UInt64], Output.Failure> {
        guard let name = arguments.first else {
            return .failure(.init(Self.usage("walk", "needs a walker name (::walkers lists them)")))
        }
        guard arguments.count == 1 else {
            return .failure(.init(Self.usage("walk", "unexpected argument \"\(arguments[1])\"")))
        }
        guard let walker = Self.walkers.first(where: { $0.name == name }) else {
            return .failure(.init(Self.error("unknown walker \"\(name)\"; ::walkers lists them")))
        }
        switch walker.address {
        case .required where start == nil:
            return .failure(.init(Self.error("the \(name) walker needs a starting address (\(Self.walkerHint(name)))")))
        case .none where start != nil:
            return .failure(.init(Self.error("the \(name) walker walks the whole kernel: drop the address")))
        default:
            return walker.walk(self, start)
        }
    }

    static func walkerHint(_ name: String) -> String {
        switch name {
        case "seg": return "kas::walk seg"
        case "memseg", "memmap": return "ADDR::walk \(name), ADDR a vm_t from ::vm"
        default: return "ADDR::walk \(name), ADDR an arena from ::vmem"
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

    /// A hex number, `0x…`, `0t…` (decimal), a symbol, or `A+B` of those
    /// (`kvps+0x400`); nil for anything else, or a sum past 64 bits.
    func resolve(_ text: String) -> UInt64? {
        if let plus = text.firstIndex(of: "+"), plus != text.startIndex {
            guard let a = resolve(String(text[..<plus])), let b = resolve(String(text[text.index(after: plus)...])) else { return nil }
            let (sum, overflow) = a.addingReportingOverflow(b)
            return overflow ? nil : sum
        }
        switch text {
        case "kas": return kernel.kas.address
        case "kvps": return kernel.symbols.kvps
        default: break
        }
        if text.hasPrefix("0t") { return UInt64(text.dropFirst(2)) }
        let digits = text.hasPrefix("0x") || text.hasPrefix("0X") ? String(text.dropFirst(2)) : text
        return UInt64(digits, radix: 16)
    }

    /// `text` without its first line (a table's header) unless `header`.
    static func table(_ text: String, header: Bool) -> String {
        guard !header, let nl = text.firstIndex(of: "\n") else { return text }
        return String(text[text.index(after: nl)...])
    }
}
