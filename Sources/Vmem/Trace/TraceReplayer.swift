/// Runs a vmem trace (vmem.md §5) and reports each result as a line.
///
/// The trace language names arenas and allocations by words so that traces
/// are portable between allocators:
///
/// ```
/// create NAME base=B size=S quantum=Q [qcache=N] [source=PARENT] [minimport=M]
/// add NAME BASE SIZE
/// alloc NAME TAG SIZE [instant|best|first|next] [end]
/// xalloc NAME TAG SIZE [align=A] [phase=P] [nocross=N] [min=M] [max=X] [instant|best|first|next] [end]
/// free NAME TAG [SIZE]
/// stats NAME | walk NAME | verify NAME | destroy NAME
/// ```
///
/// `qcache=N` is in bytes, or in quanta when it is 1...16 and not a
/// multiple of the quantum (see `quantumCacheBytes(_:quantum:)`).
///
/// Output lines are parsed by tools; their shapes are fixed by the design
/// page. A line that cannot be run prints `line N: error: MESSAGE` and the
/// replay goes on.
public struct TraceReplayer {
    struct Allocation { var arena: String; var address: UInt64; var size: UInt64; var constrained: Bool }

    private var arenas: [String: Arena] = [:]
    private var live: [String: Allocation] = [:]
    private var lineNumber = 0
    private let emit: (String) -> Void

    /// `emit` receives every output line, without its newline.
    public init(emit: @escaping (String) -> Void) { self.emit = emit }

    /// Runs every line of `text`.
    public mutating func run(_ text: String) {
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) { run(line: line) }
    }

    /// Runs one line (numbers are counted from 1 across calls).
    public mutating func run(line raw: some StringProtocol) {
        lineNumber += 1
        var text = Substring(raw)
        if let hash = text.firstIndex(of: "#") { text = text[..<hash] }
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
        guard let command = words.first else { return }
        do {
            try execute(command, Array(words.dropFirst()))
        } catch {
            emit("line \(lineNumber): error: \(error.message)")
        }
    }

    struct LineError: Error { var message: String }

    /// The arena a trace created under `name` (for tests that damage one
    /// between lines, so that `verify` has something to report).
    func arenaNamed(_ name: String) -> Arena? { arenas[name] }

    private func arena(_ name: String?) throws(LineError) -> Arena {
        guard let name else { throw LineError(message: "missing arena name") }
        guard let a = arenas[name] else { throw LineError(message: "unknown arena \(name)") }
        return a
    }

    private func number(_ s: String?, _ what: String) throws(LineError) -> UInt64 {
        guard let s else { throw LineError(message: "missing \(what)") }
        do { return try SizeParser.parse(s) } catch { throw LineError(message: "\(what): \(error.description)") }
    }

    /// Splits `key=value` options from plain words, refusing unknown ones.
    private func options(_ words: ArraySlice<String>, keys: Set<String>, flags: Set<String>) throws(LineError) -> ([String: UInt64], [String]) {
        var values: [String: UInt64] = [:], plain: [String] = []
        for w in words {
            if let eq = w.firstIndex(of: "=") {
                let k = String(w[..<eq]), v = String(w[w.index(after: eq)...])
                guard keys.contains(k) else { throw LineError(message: "unknown option \(k)") }
                if k == "source" { plain.append(w); continue }
                values[k] = try number(v, k)
            } else {
                guard flags.contains(w) else { throw LineError(message: "unexpected word \(w)") }
                plain.append(w)
            }
        }
        return (values, plain)
    }

    /// `qcache=N` in bytes, as illumos's `qcache_max`; or, when `N` is not a
    /// multiple of the quantum but is at most 16 (the most quantum caches an
    /// arena has), in quanta: `qcache=8` on a 4 KiB arena is vmem.md §6's
    /// "8 pages". Anything else goes to the arena as given, which refuses it
    /// with an error naming the value.
    static func quantumCacheBytes(_ n: UInt64, quantum: UInt64) -> UInt64 {
        guard quantum > 1, n % quantum != 0, n <= Arena.maximumQuantumCaches else { return n }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: quantum)
        return overflow ? n : bytes
    }

    private func policy(_ words: [String]) throws(LineError) -> (AllocationPolicy, Bool) {
        var policy = AllocationPolicy.instantFit, end = false, seen = 0
        for w in words {
            switch w {
            case "instant": policy = .instantFit; seen += 1
            case "best": policy = .bestFit; seen += 1
            case "first": policy = .firstFit; seen += 1
            case "next": policy = .nextFit; seen += 1
            case "end": end = true
            default: break
            }
        }
        if seen > 1 { throw LineError(message: "more than one policy") }
        return (policy, end)
    }

    private mutating func execute(_ command: String, _ args: [String]) throws(LineError) {
        let policyWords: Set<String> = ["instant", "best", "first", "next", "end"]
        switch command {
        case "create":
            guard let name = args.first else { throw LineError(message: "missing arena name") }
            if arenas[name] != nil { throw LineError(message: "arena \(name) already exists") }
            let (v, plain) = try options(args.dropFirst(), keys: ["base", "size", "quantum", "qcache", "source", "minimport"], flags: [])
            var source: ArenaSource? = nil
            if let s = plain.first(where: { $0.hasPrefix("source=") }) {
                source = .arena(try arena(String(s.dropFirst("source=".count))))
            }
            let quantum = v["quantum"] ?? 1
            do {
                arenas[name] = try Arena(name: name, base: v["base"] ?? 0, size: v["size"] ?? 0,
                                         quantum: quantum, source: source,
                                         quantumCacheMax: Self.quantumCacheBytes(v["qcache"] ?? 0, quantum: quantum),
                                         minimumImport: v["minimport"] ?? 0)
            } catch { throw LineError(message: error.description) }
        case "add":
            let a = try arena(args.first)
            guard args.count == 3 else { throw LineError(message: "usage: add NAME BASE SIZE") }
            do { try a.add(base: try number(args[1], "base"), size: try number(args[2], "size")) }
            catch let e as LineError { throw e } catch let e as VmemError { throw LineError(message: e.description) }
            catch { throw LineError(message: "\(error)") }
        case "alloc", "xalloc":
            let a = try arena(args.first)
            guard args.count >= 3 else { throw LineError(message: "usage: \(command) NAME TAG SIZE ...") }
            let tag = args[1]
            let size = try number(args[2], "size")
            let keys: Set<String> = command == "xalloc" ? ["align", "phase", "nocross", "min", "max"] : []
            let (v, plain) = try options(args.dropFirst(3), keys: keys, flags: policyWords)
            let (pol, end) = try policy(plain)
            do {
                let addr: UInt64
                if command == "alloc" {
                    addr = try a.alloc(size, policy: pol, fromEnd: end)
                } else {
                    addr = try a.xalloc(size, align: v["align"] ?? 0, phase: v["phase"] ?? 0, nocross: v["nocross"] ?? 0,
                                        minaddr: v["min"] ?? 0, maxaddr: v["max"] ?? 0, policy: pol, fromEnd: end)
                }
                live[tag] = Allocation(arena: a.name, address: addr, size: size, constrained: command == "xalloc")
                emit("\(tag) \(hex(addr))")
            } catch {
                emit("\(tag) fail")
            }
        case "free":
            let a = try arena(args.first)
            guard args.count == 2 || args.count == 3 else { throw LineError(message: "usage: free NAME TAG [SIZE]") }
            let tag = args[1]
            guard let rec = live[tag], rec.arena == a.name else { emit("\(tag) error unknown"); return }
            let size = args.count == 3 ? try number(args[2], "size") : rec.size
            do {
                if rec.constrained { try a.xfree(rec.address, size: size) } else { try a.free(rec.address, size: size) }
                live[tag] = nil
            } catch {
                emit("\(tag) error \(error.kind)")
            }
        case "stats":
            let a = try arena(args.first)
            let s = a.statistics
            emit("stats \(a.name) inuse=\(s.memInUse) total=\(s.memTotal) imported=\(s.memImported) allocs=\(s.allocCount) frees=\(s.freeCount) fails=\(s.failCount)")
        case "walk":
            let a = try arena(args.first)
            for seg in a.segments(.all) { emit("seg \(seg.kind.traceName) \(hex(seg.start)) \(hex(seg.end))") }
        case "verify":
            let a = try arena(args.first)
            do { try a.verify(); emit("verify \(a.name) ok") }
            catch { emit("verify \(a.name) FAILED: \(error.description)") }
        case "destroy":
            let a = try arena(args.first)
            let r = a.destroy()
            arenas[a.name] = nil
            live = live.filter { $0.value.arena != a.name }
            emit("destroy \(a.name) leaked=\(r.leakedBytes) segments=\(r.leakedSegments)")
        default:
            throw LineError(message: "unknown command \(command)")
        }
    }
}

extension Error {
    var message: String {
        if let l = self as? TraceReplayer.LineError { return l.message }
        return "\(self)"
    }
}
