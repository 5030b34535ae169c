import Vmem

/// The allocation policies of vmem.md §2, written from the text (and illumos
/// `vmem_alloc`, `vmem_xalloc`, `vmem_nextfit_alloc` for next fit), for the
/// reference model only.
extension ReferenceArena {

    // MARK: - Placement inside one free segment

    /// The lowest `a` in `[lo, hi)` with `a ≡ phase (mod align)` such that
    /// `[a, a+size)` fits below `hi`; when that window crosses a multiple of
    /// `nocross`, `a` moves to the next boundary plus `phase` (vmem.md §2).
    /// All arithmetic is checked: an address that does not exist does not fit.
    static func lowestFit(lo: UInt64, hi: UInt64, size: UInt64, align: UInt64, phase: UInt64,
                          nocross: UInt64) -> UInt64? {
        guard lo < hi, hi - lo >= size else { return nil }
        let r = lo % align
        var a: UInt64
        if r <= phase {
            a = lo - r + phase
        } else {
            let (x, o) = (lo - r).addingReportingOverflow(align)
            guard !o else { return nil }
            let (y, o2) = x.addingReportingOverflow(phase)
            guard !o2 else { return nil }
            a = y
        }
        guard a <= hi - size else { return nil }
        if nocross != 0, a / nocross != (a + size - 1) / nocross {
            let (b, o) = (a / nocross + 1).multipliedReportingOverflow(by: nocross)
            guard !o else { return nil }
            let (y, o2) = b.addingReportingOverflow(phase)
            guard !o2 else { return nil }
            a = y
            guard a <= hi - size else { return nil }
        }
        return a
    }

    /// The highest `a` in `[lo, hi)` satisfying the same constraints, or nil.
    static func highestFit(lo: UInt64, hi: UInt64, size: UInt64, align: UInt64, phase: UInt64,
                           nocross: UInt64) -> UInt64? {
        guard lo < hi, hi - lo >= size else { return nil }
        func highestPhased(atMost top: UInt64) -> UInt64? {
            let r = top % align
            if r >= phase { return top - (r - phase) }
            let down = r + align - phase
            return top >= down ? top - down : nil
        }
        guard var a = highestPhased(atMost: hi - size) else { return nil }
        if nocross != 0, a / nocross != (a + size - 1) / nocross {
            // Every window starting above the boundary's reach crosses it too.
            let boundary = (a + size - 1) / nocross * nocross
            guard boundary >= size, let b = highestPhased(atMost: boundary - size) else { return nil }
            a = b
        }
        guard a >= lo else { return nil }
        return a
    }

    /// `[start, end)` of free segment `id` clipped to `[minaddr, maxaddr)` (0 = no limit).
    func clipped(_ id: Int, minaddr: UInt64, maxaddr: UInt64) -> (lo: UInt64, hi: UInt64) {
        let s = segs[id]!
        return (max(s.start, minaddr), maxaddr == 0 ? s.end : min(s.end, maxaddr))
    }

    // MARK: - The constrained search

    /// The list the search starts from (vmem.md §2, "start at list L").
    func searchStartList(size: UInt64, policy: AllocationPolicy) -> Int? {
        if Self.isPowerOfTwo(size) { return lowestNonEmptyList(from: Self.highbit(size) - 1) }
        var l = Self.highbit(size)
        if l == 64 || freemap >> UInt64(l) == 0 || policy == .bestFit || policy == .firstFit { l -= 1 }
        return lowestNonEmptyList(from: l)
    }

    /// Walks the lists upward from the start list, each from head to tail.
    /// Returns the chosen free segment and the lowest fitting address in it.
    func constrainedSearch(size: UInt64, align: UInt64, phase: UInt64, nocross: UInt64,
                           minaddr: UInt64, maxaddr: UInt64,
                           policy: AllocationPolicy) -> (id: Int, address: UInt64)? {
        guard let first = searchStartList(size: size, policy: policy) else { return nil }
        var best: (id: Int, address: UInt64, size: UInt64)?
        for l in first..<64 where !freeLists[l].isEmpty {
            if best != nil { break }   // moving on to a larger list after a candidate
            for id in freeLists[l] {
                let (lo, hi) = clipped(id, minaddr: minaddr, maxaddr: maxaddr)
                guard let a = Self.lowestFit(lo: lo, hi: hi, size: size, align: align, phase: phase,
                                             nocross: nocross) else { continue }
                let segSize = segs[id]!.size
                if let b = best, segSize >= b.size { continue }
                best = (id, a, segSize)
                if policy != .bestFit || segSize == size { return (id, a) }
            }
        }
        return best.map { ($0.id, $0.address) }
    }

    // MARK: - Validation (the order the real API applies them in)

    func validateSize(_ size: UInt64) throws(VmemError) {
        guard size != 0 else { throw .zeroSize }
        guard size % quantum == 0 else { throw .sizeNotQuantumMultiple(size: size, quantum: quantum) }
    }

    /// vmem.md §4 for xalloc; returns the effective alignment (0 means the quantum).
    func validateConstraints(size: UInt64, align alignArg: UInt64, phase: UInt64, nocross: UInt64,
                             minaddr: UInt64, maxaddr: UInt64) throws(VmemError) -> UInt64 {
        try validateSize(size)
        for (p, v) in [("align", alignArg), ("phase", phase), ("nocross", nocross),
                       ("minaddr", minaddr), ("maxaddr", maxaddr)] where v % quantum != 0 {
            throw .notQuantumAligned(parameter: p, value: v, quantum: quantum)
        }
        let align = alignArg == 0 ? quantum : alignArg
        guard Self.isPowerOfTwo(align) else { throw .notPowerOfTwo(parameter: "align", value: alignArg) }
        guard nocross == 0 || Self.isPowerOfTwo(nocross) else { throw .notPowerOfTwo(parameter: "nocross", value: nocross) }
        guard phase < align else { throw .phaseNotBelowAlign(phase: phase, align: align) }
        if nocross != 0 {
            let (ps, o) = phase.addingReportingOverflow(size)
            let rounded = o ? nil : Self.roundUp(ps, align)
            if align > nocross || rounded == nil || rounded! > nocross {
                throw .overconstrained(size: size, align: align, phase: phase, nocross: nocross)
            }
        }
        if maxaddr != 0 {
            guard minaddr < maxaddr, maxaddr - minaddr >= size else {
                throw .rangeCannotHoldSize(minaddr: minaddr, maxaddr: maxaddr, size: size)
            }
        } else if UInt64.max - minaddr < size - 1 {
            // [minaddr, 2^64) is shorter than the request.
            throw .rangeCannotHoldSize(minaddr: minaddr, maxaddr: maxaddr, size: size)
        }
        return align
    }

    static func roundUp(_ x: UInt64, _ a: UInt64) -> UInt64? {
        let (y, o) = x.addingReportingOverflow(a - 1)
        return o ? nil : y / a * a
    }

    // MARK: - Public operations

    /// vmem_alloc: instant fit (head of the lowest list whose members all fit),
    /// best/first fit through the search, next fit through the rotor.
    func alloc(_ size: UInt64, policy: AllocationPolicy = .instantFit, fromEnd: Bool = false) throws(VmemError) -> UInt64 {
        try validateSize(size)
        guard !destroyed else { failCount += 1; throw .arenaDestroyed(arena: name) }
        switch policy {
        case .nextFit:
            return try nextFit(size, fromEnd: fromEnd)
        case .bestFit, .firstFit:
            return try xallocCore(size, align: quantum, phase: 0, nocross: 0, minaddr: 0, maxaddr: 0,
                                  policy: policy, fromEnd: fromEnd)
        case .instantFit:
            let list: Int?
            if Self.isPowerOfTwo(size) {
                list = lowestNonEmptyList(from: Self.highbit(size) - 1)
            } else {
                list = lowestNonEmptyList(from: Self.highbit(size))   // nil when highbit is 64
            }
            guard let l = list else {
                return try xallocCore(size, align: quantum, phase: 0, nocross: 0, minaddr: 0, maxaddr: 0,
                                      policy: .instantFit, fromEnd: fromEnd)
            }
            let id = freeLists[l][0]
            let s = segs[id]!
            let a = fromEnd ? s.end - size : s.start
            carve(id, at: a, size: size)
            return a
        }
    }

    /// vmem_xalloc. `.nextFit` is treated as instant fit, as illumos ignores it here.
    func xalloc(_ size: UInt64, align: UInt64 = 0, phase: UInt64 = 0, nocross: UInt64 = 0,
                minaddr: UInt64 = 0, maxaddr: UInt64 = 0, policy: AllocationPolicy = .instantFit,
                fromEnd: Bool = false) throws(VmemError) -> UInt64 {
        let a: UInt64
        do {
            a = try validateConstraints(size: size, align: align, phase: phase, nocross: nocross,
                                        minaddr: minaddr, maxaddr: maxaddr)
        } catch {
            // illumos searches such a range, finds nothing and counts vk_fail.
            if case .rangeCannotHoldSize = error { failCount += 1 }
            throw error
        }
        guard !destroyed else { failCount += 1; throw .arenaDestroyed(arena: name) }
        return try xallocCore(size, align: a, phase: phase, nocross: nocross, minaddr: minaddr,
                              maxaddr: maxaddr, policy: policy == .nextFit ? .instantFit : policy,
                              fromEnd: fromEnd)
    }

    /// An exact-address allocation: succeeds exactly when `[address, address+size)`
    /// lies inside one free segment.
    func allocExact(at address: UInt64, size: UInt64) throws(VmemError) -> UInt64 {
        try validateSize(size)
        guard address % quantum == 0 else {
            throw .notQuantumAligned(parameter: "address", value: address, quantum: quantum)
        }
        let (end, o) = address.addingReportingOverflow(size)
        guard !o else { throw .overflow(base: address, size: size) }
        guard !destroyed else { failCount += 1; throw .arenaDestroyed(arena: name) }
        for l in 0..<64 {
            for id in freeLists[l] {
                let s = segs[id]!
                if s.start <= address, end <= s.end {
                    carve(id, at: address, size: size)
                    return address
                }
            }
        }
        if constrainedImport, source != nil {
            return try importAndCarve(size, align: quantum, phase: 0, nocross: 0, minaddr: address, maxaddr: end,
                                      fromEnd: false)
        }
        failCount += 1
        throw .exhausted(arena: name, size: size)
    }

    /// The search, then the import, then the carve (validated arguments).
    func xallocCore(_ size: UInt64, align: UInt64, phase: UInt64, nocross: UInt64, minaddr: UInt64,
                    maxaddr: UInt64, policy: AllocationPolicy, fromEnd: Bool) throws(VmemError) -> UInt64 {
        if let (id, low) = constrainedSearch(size: size, align: align, phase: phase, nocross: nocross,
                                             minaddr: minaddr, maxaddr: maxaddr, policy: policy) {
            var a = low
            if fromEnd {
                let (lo, hi) = clipped(id, minaddr: minaddr, maxaddr: maxaddr)
                guard let h = Self.highestFit(lo: lo, hi: hi, size: size, align: align, phase: phase,
                                              nocross: nocross), h >= low else {
                    fatalError("reference: highestFit below lowestFit")
                }
                a = h
            }
            carve(id, at: a, size: size)
            return a
        }
        guard source != nil, constrainedImport || (nocross == 0 && minaddr == 0 && maxaddr == 0) else {
            failCount += 1
            throw .exhausted(arena: name, size: size)
        }
        return try importAndCarve(size, align: align, phase: phase, nocross: nocross, minaddr: minaddr,
                                  maxaddr: maxaddr, fromEnd: fromEnd)
    }

    /// vmem.md §3 "import": a span of `roundup(max(size + aphase, minimumImport), aq)`
    /// from the source's instant fit, its free segment at its list head, then the carve.
    func importAndCarve(_ size: UInt64, align: UInt64, phase: UInt64, nocross: UInt64, minaddr: UInt64,
                        maxaddr: UInt64, fromEnd: Bool) throws(VmemError) -> UInt64 {
        guard let src = source else { fatalError("reference: import without a source") }
        let aq = max(quantum, src.quantum)
        var aphase = phase
        if align > aq { aphase = phase % aq != 0 ? align - quantum : align - aq }
        let (needed0, o1) = size.addingReportingOverflow(aphase)
        guard !o1, let asize = Self.roundUp(max(needed0, minimumImport), aq) else {
            failCount += 1
            throw .importFailed(arena: name, size: size)
        }
        let base: UInt64
        do { base = try src.alloc(asize) } catch {
            failCount += 1
            throw .importFailed(arena: name, size: asize)
        }
        let id = createSpan(base: base, size: asize, imported: true)
        let (lo, hi) = clipped(id, minaddr: minaddr, maxaddr: maxaddr)
        let pick = fromEnd ? Self.highestFit : Self.lowestFit
        guard let a = pick(lo, hi, size, align, phase, nocross) else {
            // Only a constrained import can miss: the span goes straight back.
            precondition(constrainedImport, "reference: imported span \(hex(base)) +\(hex(asize)) cannot hold the request")
            precondition(releaseIfWholeImportedSpanOnList(id), "reference: fresh span not released")
            failCount += 1
            throw .importFailed(arena: name, size: asize)
        }
        carve(id, at: a, size: size)
        return a
    }

    // MARK: - Next fit

    /// illumos `vmem_nextfit_alloc`, as described in the type's documentation.
    func nextFit(_ size: UInt64, fromEnd: Bool = false) throws(VmemError) -> UInt64 {
        var v = nextID(after: rotorID)
        if !fromEnd, let s = segs[v], s.kind == .free, s.size > size,
           Self.listIndex(s.size) == Self.listIndex(s.size - size) {
            // Fast path: shrink in place and put the allocation behind the rotor.
            segs[v]!.start += size
            let allocID = makeSeg(Seg(kind: .allocated, start: s.start, end: s.start + size))
            order.insert(allocID, at: position(of: rotorID))
            allocated[s.start] = allocID
            allocCount += 1
            memInUse += size
            return s.start
        }
        var p = position(of: v)
        while true {
            if let s = segs[v], s.kind == .free, s.size >= size { break }
            p = (p + 1) % order.count
            v = order[p]
            if v == rotorID {
                // Full circle: step the rotor forward (it may have kept two
                // free segments apart) and try the segment behind it.
                advanceRotor(after: nextID(after: rotorID))
                v = prevID(before: rotorID)
                if let s = segs[v], s.kind == .free, s.size >= size { break }
                return try xallocCore(size, align: quantum, phase: 0, nocross: 0, minaddr: 0, maxaddr: 0,
                                      policy: .instantFit, fromEnd: fromEnd)
            }
        }
        // With `end`, the segment's top `size` bytes; the rotor goes after them either way.
        let a = fromEnd ? segs[v]!.end &- size : segs[v]!.start
        let allocID = carve(v, at: a, size: size)
        advanceRotor(after: allocID)
        return a
    }

    /// illumos `vmem_advance` for the rotor: move it after `target`, then let the
    /// free segments it used to separate coalesce, and release a wholly free
    /// imported span next to its old place.
    func advanceRotor(after target: Int) {
        let prev = prevID(before: rotorID)
        let next = nextID(after: rotorID)
        order.remove(at: position(of: rotorID))
        order.insert(rotorID, at: position(of: target) + 1)
        var candidate: Int?
        if segs[prev]!.kind == .free {
            if segs[next]!.kind == .free {
                precondition(segs[prev]!.end == segs[next]!.start, "reference: rotor neighbours not adjacent")
                removeFree(next)
                removeFree(prev)
                segs[prev]!.end = segs[next]!.end
                pushFree(prev)
                removeSeg(next)
            }
            candidate = prev
        } else if segs[next]!.kind == .free {
            candidate = next
        }
        if let c = candidate { _ = releaseIfWholeImportedSpanOnList(c) }
    }

    /// Like ``releaseIfWholeImportedSpan(_:)`` for a segment that is on a free list.
    func releaseIfWholeImportedSpanOnList(_ id: Int) -> Bool {
        guard source != nil else { return false }
        let prev = segs[prevID(before: id)]!
        let next = segs[nextID(after: id)]!
        guard prev.kind == .span, prev.imported, next.kind == .span || next.kind == .head else { return false }
        removeFree(id)
        return releaseIfWholeImportedSpan(id)
    }
}
