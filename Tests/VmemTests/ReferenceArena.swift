import Vmem

/// An independent, deliberately naive model of a vmem arena (vmem.md §2–§4).
///
/// It exists only to be compared with the real ``Arena``: every structure is a
/// plain Swift collection and every operation is a linear scan, so that each
/// rule of the design page can be read off the code line by line.
///
/// * The **segment list** is `order`, an array of segment ids in list order.
///   `order[0]` is the list head (illumos `vm_seg0`), which behaves like a span
///   marker that is never imported; the list is circular, so the element after
///   the last one is the head. New spans are appended at the end (just before
///   the head, as illumos does), each as a span marker followed by its free
///   segment. The next-fit **rotor** is an element of the list too; it starts
///   right after the head.
/// * The **free lists** are 64 arrays of segment ids; element 0 is the list
///   head, so "insert at the head" is `insert(_, at: 0)`. A free segment of
///   `s` bytes is on list `floor(log2(s))`. The freemap is derived from them.
/// * The **allocated hash** is a dictionary from start address to segment id.
///
/// The list is sorted by address only within a span: vmem keeps spans in the
/// order they were added or imported, and both `walk` and next fit expose
/// that order, so a globally sorted array would model the wrong thing.
///
/// Choices where vmem.md is silent (each matches illumos unless stated):
/// * `allocExact` succeeds exactly when `[address, address+size)` lies in one
///   free segment (a first-fit search bounded to that range finds the same).
/// * `xalloc(policy: .nextFit)` searches as instant fit: vmem.md's
///   constrained search takes the "might fit" list first only for best and
///   first fit, and illumos ignores `VM_NEXTFIT` there.
/// * A free of an unaligned address is a bad free (it was never allocated).
/// * `destroy` gives imported spans back to the source (VMKit; illumos
///   leaves them allocated in the source).
///
/// Next fit follows illumos `vmem_nextfit_alloc` as read from the source (see
/// ``nextFit(_:)``): a fast path that shrinks the free segment right after the
/// rotor in place and slips the allocation in behind the rotor; otherwise a
/// circular walk from the rotor; on wrapping, the rotor steps one segment
/// forward (which lets free neighbours it separated coalesce) and the segment
/// just behind it is tried; failing that, an unconstrained instant-fit
/// search (with imports). With `fromEnd` (vmem.md: end allocation "with any
/// policy"; illumos ignores it here) there is no fast path, the chosen
/// segment gives its top bytes, and the rotor goes after them; the fallback
/// search places at the end too. When the rotor moves, the
/// free segments it separated coalesce and, if the result is a whole imported
/// span, it is released. The rotor sitting between two free segments keeps
/// them apart until it moves (illumos behaviour).
final class ReferenceArena {
    enum Kind: Equatable, CustomStringConvertible {
        case head, span, free, allocated, rotor
        var description: String {
            switch self {
            case .head: return "head"
            case .span: return "span"
            case .free: return "free"
            case .allocated: return "alloc"
            case .rotor: return "rotor"
            }
        }
    }

    struct Seg: Equatable {
        var kind: Kind
        var start: UInt64
        var end: UInt64
        var imported: Bool = false
        var size: UInt64 { end - start }
    }

    /// What `walk` reports: span markers, free and allocated segments in list order.
    struct WalkEntry: Equatable, CustomStringConvertible {
        var kind: Kind
        var start: UInt64
        var end: UInt64
        var imported: Bool
        var description: String {
            "\(kind) \(hex(start)) \(hex(end))" + (kind == .span && imported ? " imported" : "")
        }
    }

    static let maximumNameLength = 30
    static let headID = 0

    let name: String
    let quantum: UInt64
    let minimumImport: UInt64
    let quantumCacheMax: UInt64
    let source: ReferenceArena?
    /// `ArenaFlags.constrainedImport`: requests with nocross, minaddr or
    /// maxaddr may import too (beyond illumos). The span is imported by the
    /// same size rule; when the constraints leave no room in it, it goes
    /// straight back and the request fails.
    let constrainedImport: Bool

    var segs: [Int: Seg] = [:]
    var order: [Int] = []
    var freeLists: [[Int]] = Array(repeating: [], count: 64)
    var allocated: [UInt64: Int] = [:]
    var rotorID = 1
    private var nextID = 2
    var destroyed = false

    // Statistics (kstat names in brackets).
    var memInUse: UInt64 = 0       // mem_inuse
    var memImported: UInt64 = 0    // mem_import
    var memTotal: UInt64 = 0       // mem_total
    var allocCount: UInt64 = 0     // alloc
    var freeCount: UInt64 = 0      // free
    var failCount: UInt64 = 0      // fail
    var importCount: UInt64 = 0
    var releaseCount: UInt64 = 0

    init(name: String, base: UInt64 = 0, size: UInt64 = 0, quantum: UInt64 = 1,
         source: ReferenceArena? = nil, quantumCacheMax: UInt64 = 0,
         minimumImport: UInt64 = 0, constrainedImport: Bool = false) throws(VmemError) {
        guard !name.isEmpty, name.count <= Self.maximumNameLength else { throw .invalidName(name) }
        guard quantum != 0, quantum & (quantum - 1) == 0 else { throw .quantumNotPowerOfTwo(quantum: quantum) }
        guard quantumCacheMax % quantum == 0 else {
            throw .notQuantumAligned(parameter: "quantumCacheMax", value: quantumCacheMax, quantum: quantum)
        }
        // 16 quanta, and at most 2^61 bytes (a slab of three objects must fit).
        let limit = quantum > (1 << 61) / 16 ? UInt64(1) << 61 : 16 * quantum
        guard quantumCacheMax <= limit else {
            throw .quantumCacheTooLarge(quantumCacheMax: quantumCacheMax, limit: limit)
        }
        guard minimumImport % quantum == 0 else {
            throw .notQuantumAligned(parameter: "minimumImport", value: minimumImport, quantum: quantum)
        }
        self.name = name
        self.quantum = quantum
        self.minimumImport = minimumImport
        self.quantumCacheMax = quantumCacheMax
        self.source = source
        self.constrainedImport = constrainedImport
        segs[Self.headID] = Seg(kind: .head, start: 0, end: 0)
        segs[rotorID] = Seg(kind: .rotor, start: 0, end: 0)
        order = [Self.headID, rotorID]
        if size != 0 { try add(base: base, size: size) }
    }

    // MARK: - Small arithmetic helpers

    /// 1-based index of the highest set bit, 0 for 0.
    static func highbit(_ x: UInt64) -> Int { x == 0 ? 0 : 64 - x.leadingZeroBitCount }
    static func isPowerOfTwo(_ x: UInt64) -> Bool { x != 0 && x & (x - 1) == 0 }
    /// The free list a segment of `size` bytes lives on.
    static func listIndex(_ size: UInt64) -> Int { highbit(size) - 1 }

    var freemap: UInt64 {
        var m: UInt64 = 0
        for i in 0..<64 where !freeLists[i].isEmpty { m |= 1 << UInt64(i) }
        return m
    }

    /// The lowest non-empty free list with index `>= from`, if any.
    func lowestNonEmptyList(from: Int) -> Int? {
        guard from < 64 else { return nil }
        for i in max(from, 0)..<64 where !freeLists[i].isEmpty { return i }
        return nil
    }

    // MARK: - The segment list

    func position(of id: Int) -> Int {
        // A plain loop: the generic `firstIndex(of:)` dominates debug-build run time.
        let p = order.withUnsafeBufferPointer { buf -> Int in
            var i = 0
            while i < buf.count { if buf[i] == id { return i }; i += 1 }
            return -1
        }
        guard p >= 0 else { fatalError("reference: segment \(id) not in list") }
        return p
    }

    /// A random segment (span marker, free or allocated), or nil when there is none.
    func randomSegment(using rng: inout some RandomNumberGenerator, spansOnly: Bool) -> Seg? {
        guard order.count > 2 else { return nil }
        var p = Int.random(in: 0..<order.count, using: &rng)
        for _ in 0..<order.count {
            let s = segs[order[p]]!
            switch s.kind {
            case .span: return s
            case .free, .allocated: if !spansOnly { return s }
            case .head, .rotor: break
            }
            p = (p + 1) % order.count
        }
        return nil
    }
    func nextID(after id: Int) -> Int { order[(position(of: id) + 1) % order.count] }
    func prevID(before id: Int) -> Int { order[(position(of: id) + order.count - 1) % order.count] }

    /// A new segment id (never reused, so ids in old free-list snapshots stay unambiguous).
    func makeSeg(_ seg: Seg) -> Int {
        let id = nextID
        nextID += 1
        segs[id] = seg
        return id
    }

    func pushFree(_ id: Int) {
        guard let s = segs[id], s.kind == .free else { fatalError("reference: pushFree of non-free \(id)") }
        freeLists[Self.listIndex(s.size)].insert(id, at: 0)
    }

    func removeFree(_ id: Int) {
        let s = segs[id]!
        let l = Self.listIndex(s.size)
        guard let i = freeLists[l].firstIndex(of: id) else { fatalError("reference: free seg \(id) not on list \(l)") }
        freeLists[l].remove(at: i)
    }

    func removeSeg(_ id: Int) {
        order.remove(at: position(of: id))
        segs[id] = nil
    }

    // MARK: - Spans

    /// Appends span `[base, base+size)` with one free segment at its list head.
    @discardableResult
    func createSpan(base: UInt64, size: UInt64, imported: Bool) -> Int {
        let spanID = makeSeg(Seg(kind: .span, start: base, end: base + size, imported: imported))
        let freeID = makeSeg(Seg(kind: .free, start: base, end: base + size))
        order.append(spanID)
        order.append(freeID)
        pushFree(freeID)
        memTotal += size
        if imported { memImported += size; importCount += 1 }
        return freeID
    }

    /// vmem_add: validates, rejects overlap, appends the span.
    func add(base: UInt64, size: UInt64) throws(VmemError) {
        guard size != 0 else { throw .zeroSize }
        guard size % quantum == 0 else { throw .sizeNotQuantumMultiple(size: size, quantum: quantum) }
        guard base % quantum == 0 else { throw .notQuantumAligned(parameter: "base", value: base, quantum: quantum) }
        let (end, o) = base.addingReportingOverflow(size)
        guard !o else { throw .overflow(base: base, size: size) }
        guard !destroyed else { throw .arenaDestroyed(arena: name) }
        for id in order {
            let s = segs[id]!
            if s.kind == .span, base < s.end, s.start < end {
                throw .spanOverlap(base: base, size: size, existingStart: s.start, existingEnd: s.end)
            }
        }
        createSpan(base: base, size: size, imported: false)
    }

    /// If free segment `id` is a whole imported span, removes it and gives it back.
    /// Returns true when released.
    @discardableResult
    func releaseIfWholeImportedSpan(_ id: Int) -> Bool {
        guard let src = source else { return false }
        let prev = segs[prevID(before: id)]!
        let next = segs[nextID(after: id)]!
        guard prev.kind == .span, prev.imported, next.kind == .span || next.kind == .head else { return false }
        let seg = segs[id]!
        precondition(prev.start == seg.start && prev.end == seg.end, "reference: span/segment mismatch")
        removeSeg(prevID(before: id))
        removeSeg(id)
        memImported -= seg.size
        memTotal -= seg.size
        releaseCount += 1
        do { try src.free(seg.start, size: seg.size) } catch {
            fatalError("reference: source rejected release of \(hex(seg.start)) \(hex(seg.size)): \(error)")
        }
        return true
    }

    // MARK: - Carving and freeing

    /// Takes `[a, a+size)` out of free segment `id` (vmem.md §2 "Carving").
    /// Returns the id of the allocated segment.
    @discardableResult
    func carve(_ id: Int, at a: UInt64, size: UInt64) -> Int {
        let s = segs[id]!
        precondition(s.kind == .free && s.start <= a && size <= s.end - a, "reference: bad carve")
        let remainder = s.end - (a + size)
        let allocID: Int
        if a == s.start, remainder > 0, Self.listIndex(remainder) == Self.listIndex(s.size) {
            // Shrink in place: it keeps its position on its list.
            segs[id]!.start = a + size
            allocID = makeSeg(Seg(kind: .allocated, start: a, end: a + size))
            order.insert(allocID, at: position(of: id))
        } else {
            removeFree(id)
            segs[id] = Seg(kind: .allocated, start: a, end: a + size)
            allocID = id
            if remainder > 0 {
                let r = makeSeg(Seg(kind: .free, start: a + size, end: s.end))
                order.insert(r, at: position(of: id) + 1)
                pushFree(r)
            }
            if s.start < a {
                let l = makeSeg(Seg(kind: .free, start: s.start, end: a))
                order.insert(l, at: position(of: id))
                pushFree(l)
            }
        }
        allocated[a] = allocID
        allocCount += 1
        memInUse += size
        return allocID
    }

    /// vmem_free / vmem_xfree.
    func free(_ address: UInt64, size: UInt64) throws(VmemError) {
        // An unaligned address was never allocated: vmem.md §4 makes that a bad free.
        guard size != 0 else { throw .zeroSize }
        guard size % quantum == 0 else { throw .sizeNotQuantumMultiple(size: size, quantum: quantum) }
        guard !address.addingReportingOverflow(size).overflow else { throw .overflow(base: address, size: size) }
        guard !destroyed else { throw .arenaDestroyed(arena: name) }
        guard let id = allocated[address] else { throw .badFree(address: address, size: size) }
        let seg = segs[id]!
        guard seg.size == size else { throw .wrongSize(address: address, size: size, allocatedSize: seg.size) }
        allocated[address] = nil
        memInUse -= size
        freeCount += 1
        segs[id]!.kind = .free
        var cur = id
        let n = nextID(after: cur)
        if segs[n]!.kind == .free {
            removeFree(n)
            segs[cur]!.end = segs[n]!.end
            removeSeg(n)
        }
        let p = prevID(before: cur)
        if segs[p]!.kind == .free {
            removeFree(p)
            segs[p]!.end = segs[cur]!.end
            removeSeg(cur)
            cur = p
        }
        if !releaseIfWholeImportedSpan(cur) { pushFree(cur) }
    }

    func xfree(_ address: UInt64, size: UInt64) throws(VmemError) { try free(address, size: size) }

    // MARK: - Queries

    func walk() -> [WalkEntry] {
        order.compactMap { id in
            let s = segs[id]!
            switch s.kind {
            case .head, .rotor: return nil
            case .span, .free, .allocated:
                return WalkEntry(kind: s.kind, start: s.start, end: s.end, imported: s.kind == .span && s.imported)
            }
        }
    }

    func contains(_ address: UInt64, size: UInt64 = 1) -> Bool {
        let (end, o) = address.addingReportingOverflow(size)
        if o || size == 0 { return false }
        return order.contains { id in
            let s = segs[id]!
            return s.kind == .span && s.start <= address && end <= s.end
        }
    }

    var allocatedSize: UInt64 { memInUse }
    var totalSize: UInt64 { memTotal }
    var freeSize: UInt64 { memTotal - memInUse }

    /// Leaked bytes and segments, as `destroy` must report them. Imported
    /// spans go back to the source (VMKit's choice; illumos leaves them
    /// allocated in the source).
    func destroy() -> (bytes: UInt64, segments: UInt64) {
        guard !destroyed else { return (0, 0) }
        destroyed = true
        if let src = source {
            for id in order where segs[id]!.kind == .span && segs[id]!.imported {
                let s = segs[id]!
                do { try src.free(s.start, size: s.size) } catch {
                    fatalError("reference: source rejected \(hex(s.start)) \(hex(s.size)) at destroy: \(error)")
                }
            }
        }
        return (memInUse, UInt64(allocated.count))
    }

    /// Checks the model's own invariants (a bug in the reference must not
    /// pass for a bug in the arena). Returns a reason, or nil.
    func selfCheck() -> String? {
        guard order.first == Self.headID, order.filter({ $0 == rotorID }).count == 1 else { return "head/rotor" }
        var span: Seg?
        var cursor: UInt64 = 0
        var prevKind: Kind = .head
        var onLists = Set<Int>()
        for (l, list) in freeLists.enumerated() {
            for id in list {
                guard let s = segs[id], s.kind == .free, Self.listIndex(s.size) == l else { return "free list \(l) member \(id)" }
                guard onLists.insert(id).inserted else { return "free seg \(id) listed twice" }
            }
        }
        var used: UInt64 = 0, total: UInt64 = 0, imported: UInt64 = 0
        for id in order.dropFirst() {
            let s = segs[id]!
            switch s.kind {
            case .head: return "second head"
            case .rotor:
                prevKind = .rotor
                continue
            case .span:
                if let sp = span, cursor != sp.end { return "span \(hex(sp.start)) not covered" }
                span = s; cursor = s.start; total += s.size
                if s.imported { imported += s.size }
                prevKind = .span
            case .free, .allocated:
                guard span != nil, s.start == cursor, s.start < s.end else { return "segment \(hex(s.start)) misplaced" }
                if s.kind == .free, !onLists.contains(id) { return "free \(hex(s.start)) not on a list" }
                // Only the rotor may keep two free neighbours apart.
                if s.kind == .free, prevKind == .free { return "free \(hex(s.start)) not coalesced" }
                if s.kind == .allocated {
                    guard allocated[s.start] == id else { return "alloc \(hex(s.start)) not hashed" }
                    used += s.size
                }
                cursor = s.end
                prevKind = s.kind
            }
        }
        if let sp = span, cursor != sp.end { return "last span not covered" }
        if used != memInUse || total != memTotal || imported != memImported { return "accounting" }
        if allocated.count != order.filter({ segs[$0]!.kind == .allocated }).count { return "hash size" }
        if onLists.count != order.filter({ segs[$0]!.kind == .free }).count { return "free list count" }
        return nil
    }
}
