import Vmem

/// One randomized run of the real ``Arena`` beside the ``ReferenceArena``.
///
/// Everything about a run (quantum, spans, source, minimum import, address
/// range) is drawn from its seed with splitmix64, so a seed and a step count
/// reproduce a failure exactly. The report names the seed, the step, the
/// mismatch, and the last operations in `vmkit replay` syntax.
struct ModelRun {
    struct Config: Sendable, CustomStringConvertible {
        var seed: UInt64
        var steps: Int
        /// Compare walks and statistics and run `verify()` every this many
        /// steps (1 = after every step; 0 = only at the end).
        var checkEvery: Int
        /// Include next-fit allocations.
        var nextFit: Bool = false
        /// Compare next-fit addresses exactly (otherwise next fit runs on the
        /// real arena alone and is checked for overlap and by `verify()`).
        var exactNextFit: Bool = true
        /// Give the main arena quantum caches. Their addresses are not part of
        /// the exact model, so the run is checked loosely throughout.
        var quantumCache: Bool = false
        var description: String {
            "seed \(hex(seed)) steps \(steps) check \(checkEvery)\(nextFit ? " nextfit" : "")"
                + (quantumCache ? " qcache" : "")
        }
    }

    /// An arena under test: the real one, its model, and what is allocated.
    final class Side {
        let name: String
        let real: Arena
        let ref: ReferenceArena
        var live: [Live] = []
        /// False once an operation ran on the real arena alone: from then on
        /// only the real arena is exercised and checked (loose next fit).
        var exact = true
        init(name: String, real: Arena, ref: ReferenceArena) { self.name = name; self.real = real; self.ref = ref }
    }

    struct Live { var address: UInt64; var size: UInt64; var tag: Int }

    let config: Config
    var rng: ModelRNG
    var sides: [Side] = []
    var setup: [String] = []
    var recent: [(Note, Int)] = []
    var recentNext = 0
    var step = 0
    var nextTag = 0
    var failure: String?
    var highAddresses = false
    /// One span covering nearly all of [0, 2^64) and requests up to 2^63 and
    /// beyond: highbit 64, list 63, and every `addr + size` near the limit.
    var hugeSizes = false
    /// When set, the arenas take their boundary tags from this one (the
    /// illumos metadata hierarchy): refills drop the arena lock in the
    /// middle of operations, which must not change any result.
    var tagArena: Arena?
    var spanCursor: UInt64 = 0
    /// Operations performed (including checks' frees at the end).
    var operations = 0
    /// How the allocations went, so that a test can tell a meaningful run
    /// from one where everything failed.
    var allocationsSucceeded = 0
    var allocationsFailed = 0
    var argumentErrors = 0
    var imports: UInt64 = 0
    var tagRefills: UInt64 = 0

    init(_ config: Config) {
        self.config = config
        rng = ModelRNG(seed: config.seed)
    }

    // MARK: - Driving

    /// Runs the whole sequence; returns a failure report, or nil.
    mutating func run() -> String? {
        makeArenas()
        if failure != nil { return report() }
        while step < config.steps && failure == nil {
            step += 1
            oneStep()
            if failure == nil, config.checkEvery > 0, step % config.checkEvery == 0 { checkAll() }
        }
        if failure == nil { checkAll() }
        if failure == nil { drainAndDestroy() }
        return failure == nil ? nil : report()
    }

    mutating func report() -> String {
        var lines = ["model mismatch: \(config), step \(step): \(failure ?? "")", "# setup"]
        lines += setup
        lines.append("# last operations, oldest first")
        lines += (recent[recentNext...] + recent[..<recentNext]).map { "\($0.0)   # step \($0.1)" }
        return lines.joined(separator: "\n")
    }

    /// An operation as `vmkit replay` would spell it; formatted only for a report.
    enum Note: CustomStringConvertible {
        func word(_ p: AllocationPolicy) -> String { ModelRun.wordOf(p) }
        case add(String, UInt64, UInt64)
        case alloc(String, Int, UInt64, AllocationPolicy, Bool)
        case xalloc(String, Int, UInt64, align: UInt64, phase: UInt64, nocross: UInt64, min: UInt64, max: UInt64,
                    AllocationPolicy, Bool)
        case exact(String, Int, UInt64, UInt64)
        case free(String, Int)
        case badFree(String, UInt64, UInt64)

        var description: String {
            switch self {
            case .add(let n, let b, let s): return "add \(n) \(hex(b)) \(hex(s))"
            case .alloc(let n, let t, let s, let p, let e): return "alloc \(n) t\(t) \(hex(s)) \(word(p))\(e ? " end" : "")"
            case .xalloc(let n, let t, let s, let a, let ph, let nc, let lo, let hi, let p, let e):
                return "xalloc \(n) t\(t) \(hex(s)) align=\(hex(a)) phase=\(hex(ph)) nocross=\(hex(nc))"
                    + " min=\(hex(lo)) max=\(hex(hi)) \(word(p))\(e ? " end" : "")"
            case .exact(let n, let t, let a, let s):
                return "xalloc \(n) t\(t) \(hex(s)) min=\(hex(a)) max=\(hex(a &+ s)) first   # allocExact"
            case .free(let n, let t): return "free \(n) t\(t)"
            case .badFree(let n, let a, let s): return "# bad free \(n) \(hex(a)) \(hex(s))"
            }
        }
    }

    mutating func note(_ n: Note) {
        let entry = (n, step)
        if recent.count < 60 { recent.append(entry) } else {
            recent[recentNext] = entry
            recentNext = (recentNext + 1) % 60
        }
    }

    mutating func fail(_ why: String) { if failure == nil { failure = why } }

    // MARK: - Creating the arenas

    mutating func makeArenas() {
        let q: UInt64 = [1, 16, 4096][Int(rng.below(3))]
        let withSource = rng.chance(40)
        highAddresses = rng.chance(15)
        spanCursor = highAddresses ? UInt64.max - (UInt64.max % 4096) + 1 - 4096 * 16 : 4096 * 16
        do {
            if withSource {
                let pq = q << rng.below(3)
                let parent: Side
                if rng.chance(30) {
                    // Three levels: the parent imports too.
                    let gq = pq << rng.below(2)
                    let grandRef = try ReferenceArena(name: "grandparent", quantum: gq)
                    let grand = Side(name: "grandparent", real: try Arena(name: "grandparent", quantum: gq), ref: grandRef)
                    setup.append("create grandparent quantum=\(hex(gq))")
                    sides.append(grand)
                    for _ in 0..<(1 + rng.below(3)) { addSpan(to: grand, size: gq * (64 + rng.below(1024)), fresh: true) }
                    let pmin = rng.chance(50) ? 0 : gq * (1 + rng.below(32))
                    parent = Side(name: "parent",
                                  real: try Arena(name: "parent", quantum: pq, source: .arena(grand.real), minimumImport: pmin),
                                  ref: try ReferenceArena(name: "parent", quantum: pq, source: grandRef, minimumImport: pmin))
                    setup.append("create parent quantum=\(hex(pq)) source=grandparent minimport=\(hex(pmin))")
                    sides.insert(parent, at: 0)
                } else {
                    parent = Side(name: "parent", real: try Arena(name: "parent", quantum: pq),
                                  ref: try ReferenceArena(name: "parent", quantum: pq))
                    setup.append("create parent quantum=\(hex(pq))")
                    sides.append(parent)   // index 0 until the child exists
                    for _ in 0..<(1 + rng.below(3)) { addSpan(to: parent, size: pq * (64 + rng.below(1024)), fresh: true) }
                }
                let parentRef = parent.ref
                let minImport = rng.chance(50) ? 0 : max(q, pq) * (1 + rng.below(16))
                let qc = config.quantumCache ? q * (1 + rng.below(16)) : 0
                let constrained = rng.chance(20)
                let childRef = try ReferenceArena(name: "main", quantum: q, source: parentRef, minimumImport: minImport,
                                                  constrainedImport: constrained)
                let child = try Arena(name: "main", quantum: q, source: .arena(parent.real), quantumCacheMax: qc,
                                      minimumImport: minImport, flags: constrained ? [.constrainedImport] : [])
                setup.append("create main quantum=\(hex(q)) qcache=\(hex(qc)) source=parent minimport=\(hex(minImport))"
                    + (constrained ? "   # flags: constrainedImport" : ""))
                sides.insert(Side(name: "main", real: child, ref: childRef), at: 0)
                if rng.chance(30) { addSpan(to: sides[0], size: q * (16 + rng.below(256)), fresh: true) }
            } else {
                let ref = try ReferenceArena(name: "main", quantum: q)
                let qc = config.quantumCache ? q * (1 + rng.below(16)) : 0
                sides = [Side(name: "main", real: try Arena(name: "main", quantum: q, quantumCacheMax: qc), ref: ref)]
                setup.append("create main quantum=\(hex(q)) qcache=\(hex(qc))")
                hugeSizes = rng.chance(8)
                if hugeSizes {
                    let end = UInt64.max / q * q - q * rng.below(16)
                    let base = q * (1 + rng.below(16))
                    let mid = rng.chance(50) ? end : base + q * rng.below((end - base) / q)
                    addSpanAt(sides[0], base: base, size: mid - base)
                    if mid < end { addSpanAt(sides[0], base: mid, size: end - mid) }
                } else {
                    for _ in 0..<(1 + rng.below(3)) { addSpan(to: sides[0], size: q * (16 + rng.below(512)), fresh: true) }
                }
            }
        } catch {
            fail("creating the arenas: \(error)")
        }
        if failure == nil && rng.chance(20) {
            do {
                let tags = try Arena(name: "tags", base: 0x1000, size: 1 << 40, quantum: 4096)
                for side in sides { try side.real.useTags(from: tags) }
                tagArena = tags
                setup.append("# every arena takes its boundary tags from arena \"tags\"")
            } catch {
                fail("useTags: \(error)")
            }
        }
        setup += recent.map { "\($0.0)" }
        recent = []
        if config.quantumCache { for side in sides { side.exact = false } }
    }

    /// A base for a new span: fresh spans follow each other (sometimes
    /// touching), upward from low memory or downward from the top of the
    /// address space; others land anywhere near the existing spans.
    mutating func spanBase(size: UInt64, quantum q: UInt64, fresh: Bool) -> UInt64? {
        let gap = rng.chance(25) ? 0 : q * rng.below(64)
        if fresh {
            if highAddresses {
                guard spanCursor > size + gap else { return nil }
                spanCursor = (spanCursor - size - gap) / q * q
                return spanCursor
            }
            let base = (spanCursor + gap + q - 1) / q * q
            spanCursor = base + size
            return base
        }
        guard let s = randomSegment(sides[0], spansOnly: true) else { return nil }
        let off = q * rng.below(max(1, s.end - s.start) / q + 2)
        let base = rng.chance(50) ? s.start &+ off : s.start &- off
        // Never into the parent's ranges: the child would later import a
        // span overlapping its own, which is a configuration error.
        let (end, o) = base.addingReportingOverflow(size)
        for other in sides.dropFirst() {
            for p in Self.walkOf(other.real) where p.kind == .span && (o || base < p.end) && p.start < end { return nil }
        }
        return base
    }

    mutating func addSpan(to side: Side, size: UInt64, fresh: Bool) {
        guard let base = spanBase(size: size, quantum: side.ref.quantum, fresh: fresh) else { return }
        addSpanAt(side, base: base, size: size)
    }

    mutating func addSpanAt(_ side: Side, base: UInt64, size: UInt64) {
        note(.add(side.name, base, size))
        let r = attemptVoid { () throws(VmemError) in try side.real.add(base: base, size: size) }
        let m = attemptVoid { () throws(VmemError) in try side.ref.add(base: base, size: size) }
        if side.exact { compare("add", r, m) }
    }

    // MARK: - One random operation

    mutating func oneStep() {
        operations += 1
        let side = sides.count > 1 && rng.chance(12) ? sides[1 + Int(rng.below(UInt64(sides.count - 1)))] : sides[0]
        // More live allocations when tags come from a tag arena, so that the
        // arena outgrows its first tags and refills mid-operation.
        let liveCap = side === sides[0] ? (tagArena == nil ? 48 : 200) : 16
        var roll = rng.below(100)
        if side.live.count > liveCap && roll < 60 { roll = 60 }   // drain when crowded
        switch roll {
        case 0..<30: opAlloc(side)
        case 30..<52: side === sides[0] ? opXalloc(side) : opAlloc(side)
        case 52..<56: opExact(side)
        case 56..<59: opContains(side)
        case 59..<60: if side === sides[0] { addSpan(to: side, size: side.ref.quantum * (1 + rng.below(128)), fresh: rng.chance(70)) }
        // Not on a source: a "bad" free there could hit a child's imported span.
        case 60..<64: if side === sides[0] { opBadFree(side) } else { opFree(side) }
        default: opFree(side)
        }
    }

    mutating func requestSize(_ q: UInt64) -> UInt64 {
        if hugeSizes && rng.chance(50) {
            let shift = rng.below(UInt64(63 - q.trailingZeroBitCount))
            let (v, o) = (q << shift).multipliedReportingOverflow(by: 1 + rng.below(3))
            return o ? q << shift : v
        }
        switch rng.below(10) {
        case 0..<3: return q << rng.below(7)
        case 3..<8: return q * (1 + rng.below(16))
        default: return q * (1 + rng.below(300))
        }
    }

    /// A constrained instant-fit xalloc in a `.constrainedImport` arena can
    /// livelock the real Arena (see ConstrainedImportTests); until that is
    /// fixed such requests use first fit here so that the runs terminate.
    static let avoidInstantConstrainedImport = false

    mutating func policy() -> AllocationPolicy {
        let choices: [AllocationPolicy] = config.nextFit
            ? [.instantFit, .bestFit, .firstFit, .nextFit, .nextFit, .nextFit]
            : [.instantFit, .instantFit, .bestFit, .firstFit]
        return choices[Int(rng.below(UInt64(choices.count)))]
    }

    static func wordOf(_ p: AllocationPolicy) -> String {
        switch p {
        case .instantFit: return "instant"
        case .bestFit: return "best"
        case .firstFit: return "first"
        case .nextFit: return "next"
        }
    }

    mutating func opAlloc(_ side: Side) {
        let size = requestSize(side.ref.quantum)
        let p = side === sides[0] ? policy() : .instantFit
        let end = rng.chance(25)
        let tag = newTag()
        note(.alloc(side.name, tag, size, p, end))
        if p == .nextFit && !config.exactNextFit { for s in sides { s.exact = false } }
        let r = attempt { () throws(VmemError) in try side.real.alloc(size, policy: p, fromEnd: end) }
        if side.exact {
            let m = attempt { () throws(VmemError) in try side.ref.alloc(size, policy: p, fromEnd: end) }
            compare("alloc", r, m)
        }
        record(side, r, size: size, tag: tag)
    }

    mutating func opXalloc(_ side: Side) {
        let q = side.ref.quantum
        let size = requestSize(q)
        var align: UInt64 = rng.chance(60) ? q << rng.below(8) : 0
        let eff = align == 0 ? q : align
        var phase: UInt64 = rng.chance(40) ? q * rng.below(eff / q) : 0
        var nocross: UInt64 = 0
        if rng.chance(30) {
            let (ps, o) = phase.addingReportingOverflow(size)
            if !o, let need = ReferenceArena.roundUp(ps, eff), need <= 1 << 63 {
                var n = eff
                while n < need { n <<= 1 }
                nocross = n << rng.below(3)   // may shift out to 0: no boundary
            }
        }
        var minaddr: UInt64 = 0, maxaddr: UInt64 = 0
        if let s = randomSegment(side, spansOnly: true) {
            if rng.chance(25) { minaddr = s.start + q * rng.below((s.end - s.start) / q) }
            if rng.chance(25) {
                let from = minaddr == 0 ? s.start : minaddr
                let n = (s.end - s.start) / q
                let (m, o) = from.addingReportingOverflow(q * (1 + rng.below(n > UInt64.max / 4 / q ? n : 2 * n)))
                maxaddr = o ? 0 : m
            }
        }
        if rng.chance(4) {
            // One invalid argument, to compare the typed errors.
            switch rng.below(5) {
            case 0: align = 3 * q
            case 1: phase = eff
            case 2: nocross = eff == q ? 3 * q : eff / 2
            case 3: if q > 1 { phase = q / 2 }
            default: if maxaddr == 0 { maxaddr = max(q, minaddr) } else { minaddr = maxaddr }
            }
        }
        let drawn = policy()
        var p = drawn == .bestFit || drawn == .nextFit ? drawn : (rng.chance(50) ? .firstFit : .instantFit)
        if Self.avoidInstantConstrainedImport, side.real.flags.contains(.constrainedImport),
           p == .instantFit, nocross != 0 || minaddr != 0 || maxaddr != 0 {
            p = .firstFit
        }
        let end = rng.chance(25)
        let tag = newTag()
        note(.xalloc(side.name, tag, size, align: align, phase: phase, nocross: nocross, min: minaddr, max: maxaddr, p, end))
        let r = attempt { () throws(VmemError) in
            try side.real.xalloc(size, align: align, phase: phase, nocross: nocross, minaddr: minaddr,
                                 maxaddr: maxaddr, policy: p, fromEnd: end)
        }
        if side.exact {
            let m = attempt { () throws(VmemError) in
                try side.ref.xalloc(size, align: align, phase: phase, nocross: nocross, minaddr: minaddr,
                                    maxaddr: maxaddr, policy: p, fromEnd: end)
            }
            compare("xalloc", r, m)
        }
        if case .success(let a) = r {
            let e = eff
            if a % e != phase || (nocross != 0 && a / nocross != (a &+ size &- 1) / nocross)
                || a < minaddr || (maxaddr != 0 && a &+ size > maxaddr) {
                fail("xalloc returned \(hex(a)), which breaks its constraints")
            }
        }
        record(side, r, size: size, tag: tag)
    }

    mutating func opExact(_ side: Side) {
        let q = side.ref.quantum
        guard let s = randomSegment(side, spansOnly: false), s.kind != .span else { return }
        let address = s.start + q * rng.below((s.end - s.start) / q)
        let size = q * (1 + rng.below(8))
        let tag = newTag()
        note(.exact(side.name, tag, address, size))
        let r = attempt { () throws(VmemError) in try side.real.allocExact(at: address, size: size) }
        if side.exact {
            let m = attempt { () throws(VmemError) in try side.ref.allocExact(at: address, size: size) }
            compare("allocExact", r, m)
        }
        if case .success(let a) = r, a != address { fail("allocExact returned \(hex(a)) for \(hex(address))") }
        record(side, r, size: size, tag: tag)
    }

    mutating func opContains(_ side: Side) {
        let q = side.ref.quantum
        guard let s = randomSegment(side, spansOnly: false) else { return }
        let address = rng.chance(50) ? s.start : s.end &- q
        let size = q * rng.below(4)
        let r = side.real.contains(address, size: size)
        if side.exact, r != side.ref.contains(address, size: size) {
            fail("contains(\(hex(address)), \(hex(size))): real \(r), reference \(!r)")
        }
    }

    mutating func opFree(_ side: Side) {
        guard !side.live.isEmpty else { return opAlloc(side) }
        let i = Int(rng.below(UInt64(side.live.count)))
        let l = side.live[i]
        note(.free(side.name, l.tag))
        let r = attemptVoid { () throws(VmemError) in try side.real.free(l.address, size: l.size) }
        if side.exact {
            let m = attemptVoid { () throws(VmemError) in try side.ref.free(l.address, size: l.size) }
            compare("free", r, m)
        }
        if case .failure(let e) = r { fail("free of live t\(l.tag) \(hex(l.address)) \(hex(l.size)) threw \(e)") }
        side.live.remove(at: i)
    }

    /// Frees that must fail: wrong size, an address inside or beside a live
    /// allocation, a random address. When both arenas accept one (it hit
    /// another live allocation), the bookkeeping follows.
    mutating func opBadFree(_ side: Side) {
        let q = side.ref.quantum
        var address = q * rng.below(1 << 20)
        var size = q * (1 + rng.below(8))
        if let l = side.live.randomElement(using: &rng) {
            switch rng.below(3) {
            case 0: address = l.address; size = l.size + q
            case 1: address = l.address &+ q; size = l.size
            default: address = l.address &- q; size = q
            }
        }
        note(.badFree(side.name, address, size))
        let r = attemptVoid { () throws(VmemError) in try side.real.free(address, size: size) }
        if side.exact {
            let m = attemptVoid { () throws(VmemError) in try side.ref.free(address, size: size) }
            compare("bad free", r, m)
        }
        if case .success = r { side.live.removeAll { $0.address == address } }
    }

    mutating func newTag() -> Int { nextTag += 1; return nextTag }

    mutating func record(_ side: Side, _ r: Result<UInt64, VmemError>, size: UInt64, tag: Int) {
        switch r {
        case .success: allocationsSucceeded += 1
        case .failure(.exhausted), .failure(.importFailed): allocationsFailed += 1
        case .failure: argumentErrors += 1
        }
        guard case .success(let a) = r else { return }
        let (end, o) = a.addingReportingOverflow(size)
        if o { fail("allocation \(hex(a)) + \(hex(size)) wraps") }
        if let other = side.live.first(where: { a < $0.address + $0.size && $0.address < end }) {
            fail("allocation [\(hex(a)), \(hex(end))) overlaps live t\(other.tag) at \(hex(other.address))")
        }
        side.live.append(Live(address: a, size: size, tag: tag))
    }

    // MARK: - Comparing

    func attemptVoid(_ body: () throws(VmemError) -> Void) -> Result<Bool, VmemError> {
        do { try body(); return .success(true) } catch { return .failure(error) }
    }

    func attempt<T>(_ body: () throws(VmemError) -> T) -> Result<T, VmemError> {
        do { return .success(try body()) } catch { return .failure(error) }
    }

    mutating func compare<T: Equatable>(_ what: String, _ real: Result<T, VmemError>, _ ref: Result<T, VmemError>) {
        guard real != ref else { return }
        func show(_ r: Result<T, VmemError>) -> String {
            switch r {
            case .success(let v): return (v as? UInt64).map(hex) ?? "\(v)"
            case .failure(let e): return "error \(e)"
            }
        }
        fail("\(what): real \(show(real)), reference \(show(ref))")
    }

    /// Where random addresses are drawn from: the model, or the real arena once it runs alone.
    mutating func randomSegment(_ side: Side, spansOnly: Bool) -> ReferenceArena.Seg? {
        if side.exact { return side.ref.randomSegment(using: &rng, spansOnly: spansOnly) }
        let all = Self.walkOf(side.real).filter { !spansOnly || $0.kind == .span }
        return all.randomElement(using: &rng).map { ReferenceArena.Seg(kind: $0.kind, start: $0.start, end: $0.end) }
    }

    static func walkOf(_ arena: Arena) -> [ReferenceArena.WalkEntry] {
        arena.segments(.all).map { s in
            let k: ReferenceArena.Kind
            switch s.kind {
            case .span: k = .span
            case .free: k = .free
            case .allocated: k = .allocated
            case .rotor, .walker: k = .rotor
            }
            return ReferenceArena.WalkEntry(kind: k, start: s.start, end: s.end, imported: s.kind == .span && s.imported)
        }
    }

    /// verify(), the whole segment list, the sizes and the counters.
    mutating func checkAll() {
        for side in sides {
            do { try side.real.verify() } catch { return fail("\(side.name): verify: \(error)") }
            guard side.exact else { continue }
            if let why = side.ref.selfCheck() { return fail("\(side.name): reference self-check: \(why)") }
            let real = Self.walkOf(side.real), model = side.ref.walk()
            if real != model {
                let i = zip(real, model).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(real.count, model.count)
                return fail("\(side.name): walk differs at entry \(i): real \(i < real.count ? "\(real[i])" : "end"),"
                    + " reference \(i < model.count ? "\(model[i])" : "end")\n  real: \(real)\n  reference: \(model)")
            }
            let st = side.real.statistics, m = side.ref
            let pairs: [(String, UInt64, UInt64)] = [
                ("memInUse", st.memInUse, m.memInUse), ("memImported", st.memImported, m.memImported),
                ("memTotal", st.memTotal, m.memTotal), ("allocCount", st.allocCount, m.allocCount),
                ("freeCount", st.freeCount, m.freeCount), ("failCount", st.failCount, m.failCount),
                ("importCount", st.importCount, m.importCount), ("releaseCount", st.releaseCount, m.releaseCount),
                ("allocatedSegments", st.allocatedSegments, UInt64(m.allocated.count)),
                ("size(.allocated)", side.real.size(.allocated), m.allocatedSize),
                ("size(.free)", side.real.size(.free), m.freeSize),
                ("size(.total)", side.real.size(.total), m.totalSize),
            ]
            for (n, r, e) in pairs where r != e { return fail("\(side.name): \(n) real \(r), reference \(e)") }
        }
    }

    /// Frees everything (children first, so imports go home), checks that
    /// every arena is back to its spans, then destroys them.
    mutating func drainAndDestroy() {
        for side in sides {
            while failure == nil, !side.live.isEmpty {
                operations += 1
                opFreeIndex(side, Int(rng.below(UInt64(side.live.count))))
            }
        }
        guard failure == nil else { return }
        checkAll()
        imports = sides[0].real.statistics.importCount
        for side in sides where failure == nil {
            // Per-CPU magazines keep their objects (and slabs) until destroy drains them.
            if !config.quantumCache && side.real.segments(.allocated).count != 0 {
                fail("\(side.name): allocations left after draining")
            }
            // The next-fit rotor may sit beside a wholly free imported span and
            // keep it (illumos does the same); otherwise every import is home.
            if !config.nextFit && !config.quantumCache && side.real.statistics.memImported != 0 {
                fail("\(side.name): imported spans left after draining")
            }
            let leak = side.real.destroy()
            let m = side.ref.destroy()
            if !leak.isClean || (side.exact && (leak.leakedBytes != m.bytes || leak.leakedSegments != m.segments)) {
                fail("\(side.name): destroy reported \(leak), reference \(m)")
            }
        }
        if failure == nil, let tags = tagArena {
            // Destroyed arenas give their tag slabs back.
            do { try tags.verify() } catch { fail("tags: verify: \(error)") }
            tagRefills = tags.statistics.allocCount
            let leak = tags.destroy()
            if !leak.isClean { fail("tag arena: \(leak) after every user was destroyed") }
        }
    }

    mutating func opFreeIndex(_ side: Side, _ i: Int) {
        let l = side.live[i]
        note(.free(side.name, l.tag))
        let r = attemptVoid { () throws(VmemError) in try side.real.free(l.address, size: l.size) }
        if side.exact {
            let m = attemptVoid { () throws(VmemError) in try side.ref.free(l.address, size: l.size) }
            compare("free", r, m)
        }
        side.live.remove(at: i)
    }
}
