// Finding a free segment: instant fit, the constrained search, next fit.

import CVmemSupport

/// The constraints of one `xalloc` (all quantum multiples, validated).
@usableFromInline
struct Constraints {
    @usableFromInline var size: UInt64
    @usableFromInline var align: UInt64
    @usableFromInline var phase: UInt64
    @usableFromInline var nocross: UInt64
    @usableFromInline var minaddr: UInt64
    /// Exclusive; 0 means no limit.
    @usableFromInline var maxaddr: UInt64
    @usableFromInline var fromEnd: Bool

    @inlinable init(size: UInt64, align: UInt64, phase: UInt64, nocross: UInt64,
                    minaddr: UInt64, maxaddr: UInt64, fromEnd: Bool) {
        self.size = size; self.align = align; self.phase = phase; self.nocross = nocross
        self.minaddr = minaddr; self.maxaddr = maxaddr; self.fromEnd = fromEnd
    }

    @inlinable var isConstrained: Bool { nocross != 0 || minaddr != 0 || maxaddr != 0 }
}

extension ArenaCore {
    /// The lowest non-empty list whose members are all at least `size`
    /// (illumos `vmem_canalloc` and the instant-fit choice); -1 if none.
    @inlinable @inline(__always)
    func definitelyFitsList(_ size: UInt64) -> Int {
        let hb = highbit(size)
        let floor: UInt64
        if isPowerOfTwo(size) {
            floor = size
        } else if hb < 64 {
            floor = 1 << UInt64(hb)
        } else {
            return -1
        }
        return lowbit(p2align(freemap, floor)) - 1
    }

    /// Instant fit: the head of the lowest list that certainly fits. Returns
    /// the new allocated tag, or 0 when the caller must fall back to the search.
    @inlinable @inline(__always)
    mutating func allocInstant(_ size: UInt64, fromEnd: Bool) -> TagIndex {
        let list = definitelyFitsList(size)
        if list < 0 { return 0 }
        if !fromEnd { return carveListHead(list, size: size) }
        return carveEndOfListHead(list, size: size)
    }

    /// Instant fit from the end (illumos `VM_ENDALLOC`), rare enough to be
    /// kept out of line: inlined, the general carve doubled the fast path's
    /// stack frame and the registers it spills.
    @usableFromInline @inline(never)
    mutating func carveEndOfListHead(_ list: Int, size: UInt64) -> TagIndex {
        let t = freelistHead(list)
        return carve(t, at: tags[Int(t)].end &- size, size: size)
    }

    /// Where `[a, a+size)` would go inside free segment `t` under `c`, or nil.
    /// The lowest such address, or with `fromEnd` the highest.
    @inlinable @inline(__always)
    func place(_ c: Constraints, in t: TagIndex) -> UInt64? {
        let segStart = tags[Int(t)].start, segEnd = tags[Int(t)].end
        // Clip to [minaddr, maxaddr); inclusive ends avoid 2^64 overflow.
        if segEnd &- 1 < c.minaddr { return nil }
        if segStart > c.maxaddr &- 1 { return nil }
        let start = max(segStart, c.minaddr)
        let lastIncl = min(segEnd &- 1, c.maxaddr &- 1)
        let avail = lastIncl &- start &+ 1           // > 0 here
        var a = p2phaseup(start, c.align, c.phase)
        if a < start { return nil }                  // wrapped past 2^64
        if p2boundary(a, c.size, c.nocross) {
            let (moved, o) = a.addingReportingOverflow(p2roundup(p2nphase(a, c.nocross), c.align))
            if o { return nil }
            a = moved
        }
        let offset = a &- start
        if offset > avail || c.size > avail &- offset { return nil }
        if !c.fromEnd { return a }
        // Highest address with the right phase that still ends in range...
        let end = start &+ avail                     // may be 0 when the range ends at 2^64
        var hi = p2align((end &- c.size) &- c.phase, c.align) &+ c.phase
        if hi > end &- c.size { hi = hi &- c.align }
        // ...moved down below a nocross boundary it would straddle. The low
        // placement `a` is valid, so the result never drops below it.
        if p2boundary(hi, c.size, c.nocross) {
            let boundary = p2align(hi &+ c.size &- 1, c.nocross)
            hi = p2align((boundary &- c.size) &- c.phase, c.align) &+ c.phase
        }
        return hi >= a ? hi : a
    }

    /// The list a search for `size` starts at: the lowest non-empty one from
    /// `log2(size)` up for a power of two (all of whose members fit);
    /// otherwise from the list above `size`'s own (where all fit), or, for
    /// best and first fit and when nothing above is free, from `size`'s own
    /// list (where some may be too small). -1 when there is none.
    @inlinable @inline(__always)
    func firstListToSearch(_ size: UInt64, policy: AllocationPolicy) -> Int {
        if isPowerOfTwo(size) { return lowbit(p2align(freemap, size)) &- 1 }
        var hb = highbit(size)
        if hb == 64 || (freemap >> UInt64(hb)) == 0 || policy == .bestFit || policy == .firstFit {
            hb &-= 1
        }
        return lowbit(p2align(freemap, 1 << UInt64(hb))) &- 1
    }

    /// The constrained search of vmem.md §2 (illumos `vmem_xalloc`'s loop).
    /// Returns the chosen free segment and address, or (0, 0).
    @inlinable
    mutating func search(_ c: Constraints, policy: AllocationPolicy) -> (TagIndex, UInt64) {
        let size = c.size
        var list = firstListToSearch(size, policy: policy)
        if c.align == quantum && c.phase == 0 && !c.isConstrained {
            return searchUnconstrained(size, fromEnd: c.fromEnd, from: list, bestFit: policy == .bestFit)
        }
        var best: TagIndex = 0
        var bestAddr: UInt64 = 0
        var bestSize: UInt64 = 0
        while list >= 0 {
            let e = lists[list].entries.unsafelyUnwrapped
            var pos = lists[list].count - 1
            while pos >= 0 {
                let entry = e[pos]
                pos -= 1
                // Tombstones have tag 0; a segment smaller than the request
                // can never fit, whatever the constraints.
                if entry.tag == 0 { continue }
                let t = entry.tag, segSize = entrySize(entry, list: list)
                if segSize < size { continue }
                stats.searchCount &+= 1
                if best == 0 || segSize < bestSize, let a = place(c, in: t) {
                    best = t; bestAddr = a; bestSize = segSize
                    if policy != .bestFit || segSize == size { return (best, bestAddr) }
                }
            }
            // Moving up to a larger list cannot improve on a candidate.
            if best != 0 { break }
            if list == 63 { break }
            list = lowbit(p2align(freemap, 1 << UInt64(list + 1))) - 1
        }
        return (best, bestAddr)
    }

    /// ``search(_:policy:)`` without constraints, from list `list`: there
    /// every segment at least `size` long fits (at its start, or at its end
    /// less `size`), so the walk reads only the sizes in the list arrays and
    /// then the one tag it chooses. Same choice, same `searchCount`.
    @inlinable
    mutating func searchUnconstrained(_ size: UInt64, fromEnd: Bool, from list: Int, bestFit: Bool) -> (TagIndex, UInt64) {
        var list = list
        var best: TagIndex = 0
        // Entries visited and, of those, too small: `searchCount` gains the
        // difference. Counted without a branch, as whether a segment fits is
        // a coin toss that the branch predictor would lose.
        var visited = 0
        var tooSmallCount: UInt64 = 0
        while list >= 0 {
            let e = lists[list].entries.unsafelyUnwrapped
            let count = lists[list].count
            // A walk ends at the first list with a candidate, so each list is
            // walked afresh, with no best so far.
            let stop: Int
            if isWideList(list) {
                stop = walkWide(e, count: count, size: size, bestFit: bestFit, best: &best, tooSmall: &tooSmallCount)
            } else {
                // Narrow lists hold, and are asked for, fewer than 2^31 quanta.
                let quanta = size &>> UInt64(truncatingIfNeeded: qshift)
                assert(quanta < 1 << 31, "a narrow list walked for \(size) bytes")
                stop = Self.walkNarrow(e, count: count, quanta: UInt32(truncatingIfNeeded: quanta), bestFit: bestFit,
                                       best: &best, tooSmall: &tooSmallCount)
            }
            // `stop` is where the walk stopped: -1 after a whole list.
            visited &+= count &- max(stop, 0)
            // Moving up to a larger list cannot improve on a candidate.
            if best != 0 || list == 63 { break }
            list = lowbit(p2align(freemap, 1 << UInt64(list &+ 1))) &- 1
        }
        stats.searchCount &+= UInt64(truncatingIfNeeded: visited) &- tooSmallCount
        if best == 0 { return (0, 0) }
        return (best, fromEnd ? tags[Int(best)].end &- size : tags[Int(best)].start)
    }

    /// One list's walk for ``searchUnconstrained(_:fromEnd:from:bestFit:)``,
    /// on the sizes in the entries: sets `best` to the first entry (from the
    /// head) that fits, or with `bestFit` the first of those that fit most
    /// tightly, stopping at an exact fit. Returns the slot it stopped at, -1
    /// after the whole list, and adds the too-small entries it passed.
    @inlinable @inline(__always)
    static func walkNarrow(_ e: UnsafeMutablePointer<FreeEntry>, count: Int, quanta: UInt32, bestFit: Bool,
                           best: inout TagIndex, tooSmall tooSmallCount: inout UInt64) -> Int {
        if bestFit {
            // Eight entries a step in AVX2 where the CPU has it (C, as Swift
            // compiles for baseline x86-64: see CVmemBestFitWalk.h); its
            // answer comes back in registers, so no local's address escapes.
            if cvmem_has_avx2() != 0 {
                let r = UnsafePointer(e).withMemoryRebound(to: UInt64.self, capacity: count) {
                    cvmem_best_fit_walk_avx2($0, Int64(truncatingIfNeeded: count), quanta)
                }
                if r.best != 0 { best = r.best }
                tooSmallCount &+= UInt64(r.too_small)
                return Int(truncatingIfNeeded: r.stop)
            }
            return walkBestNarrowPortably(e, count: count, quanta: quanta, best: &best, tooSmall: &tooSmallCount)
        }
        return walkScalar(e, from: count &- 1, quanta: quanta, limit: 0 &- quanta, bestFit: false,
                          best: &best, tooSmall: &tooSmallCount)
    }

    /// ``walkBestNarrow(_:count:quanta:best:tooSmall:)`` out of line: the
    /// fallback's SSE2 constants then stay out of the search that calls the
    /// AVX2 walk.
    @usableFromInline @inline(never)
    static func walkBestNarrowPortably(_ e: UnsafeMutablePointer<FreeEntry>, count: Int, quanta: UInt32,
                                       best: inout TagIndex, tooSmall tooSmallCount: inout UInt64) -> Int {
        walkBestNarrow(e, count: count, quanta: quanta, best: &best, tooSmall: &tooSmallCount)
    }

    /// Best fit's walk of a narrow list, four entries at a time while no
    /// block holds an exact fit: the smallest excess and the too-small count
    /// are kept in vectors, with no branch on whether an entry beats the best
    /// so far (early in a walk a coin toss, which a predictor loses). The
    /// first entry from the head with that excess is then looked up; the
    /// block with an exact fit, and the last few entries, go one by one.
    @inlinable @inline(__always)
    static func walkBestNarrow(_ e: UnsafeMutablePointer<FreeEntry>, count: Int, quanta: UInt32,
                               best: inout TagIndex, tooSmall tooSmallCount: inout UInt64) -> Int {
        let noLimit = 0 &- quanta
        let request = SIMD4<UInt32>(repeating: quanta)
        var smallest = SIMD4<UInt32>(repeating: noLimit)
        var small = SIMD4<UInt32>()
        let raw = UnsafeRawPointer(e)
        var pos = count &- 1
        while pos >= 3 {
            // Entries pos-3 ... pos: sizes in the even lanes, tags in the odd.
            let sizes = raw.loadUnaligned(fromByteOffset: (pos &- 3) &* 8, as: SIMD8<UInt32>.self).evenHalf
            let excess = sizes &- request
            if any(excess .== SIMD4<UInt32>()) { break }
            small &+= SIMD4<UInt32>(repeating: 1).replacing(with: 0, where: sizes .>= request)
            smallest = pointwiseMin(smallest, excess)
            pos &-= 4
        }
        tooSmallCount &+= UInt64(small.wrappedSum())
        let blockBest = smallest.min()
        // The rest one by one: it must beat the blocks' best to win (ties
        // go to the entry nearer the head).
        var rest: TagIndex = 0
        let stop = walkScalar(e, from: pos, quanta: quanta, limit: blockBest, bestFit: true,
                              best: &rest, tooSmall: &tooSmallCount)
        if rest != 0 {
            best = rest
        } else if blockBest != noLimit {
            var p = count &- 1
            while e[p].quanta &- quanta != blockBest { p &-= 1 }
            best = e[p].tag
        }
        return stop
    }

    /// The walk one entry at a time, from slot `from` down, with `limit` the
    /// excess to beat (`0 - quanta` when nothing fits yet).
    @inlinable @inline(__always)
    static func walkScalar(_ e: UnsafeMutablePointer<FreeEntry>, from: Int, quanta: UInt32, limit: UInt32,
                           bestFit: Bool, best: inout TagIndex, tooSmall tooSmallCount: inout UInt64) -> Int {
        // One unsigned compare per entry, `entry - quanta < limit`, tests
        // "fits and beats the best so far": too small a segment (tombstones
        // have size 0) wraps around to at least `0 - quanta`, the first limit.
        var limit = limit
        // Two entries a turn, to halve the loop's own instructions (the
        // second is the first again, one slot down).
        var pos = from
        while pos >= 1 {
            let (excess, tooSmall) = e[pos].quanta.subtractingReportingOverflow(quanta)
            tooSmallCount &+= UInt64(unsafeBitCast(tooSmall, to: UInt8.self))
            if excess < limit {
                best = e[pos].tag
                limit = excess
                if !bestFit || excess == 0 { return pos }
            }
            let (excess1, tooSmall1) = e[pos &- 1].quanta.subtractingReportingOverflow(quanta)
            tooSmallCount &+= UInt64(unsafeBitCast(tooSmall1, to: UInt8.self))
            if excess1 < limit {
                best = e[pos &- 1].tag
                limit = excess1
                if !bestFit || excess1 == 0 { return pos &- 1 }
            }
            pos &-= 2
        }
        // The odd slot out.
        if pos == 0 {
            let (excess, tooSmall) = e[0].quanta.subtractingReportingOverflow(quanta)
            tooSmallCount &+= UInt64(unsafeBitCast(tooSmall, to: UInt8.self))
            if excess < limit { best = e[0].tag }
        }
        return pos
    }

    /// ``walkNarrow(_:count:quanta:bestFit:best:tooSmall:)`` for a wide list,
    /// with every size read from its tag: only segments of 2^31 quanta or
    /// more (8 TiB of 4 KiB pages, or 2 GiB of an identifier space) live there.
    @usableFromInline
    func walkWide(_ e: UnsafeMutablePointer<FreeEntry>, count: Int, size: UInt64, bestFit: Bool,
                  best: inout TagIndex, tooSmall tooSmallCount: inout UInt64) -> Int {
        var limit = 0 &- size
        var pos = count &- 1
        while pos >= 0 {
            let t = e[pos].tag
            let (excess, tooSmall) = (t == 0 ? 0 : tags[Int(t)].size).subtractingReportingOverflow(size)
            tooSmallCount &+= UInt64(unsafeBitCast(tooSmall, to: UInt8.self))
            if excess < limit {
                best = t
                limit = excess
                if !bestFit || excess == 0 { return pos }
            }
            pos &-= 1
        }
        return pos
    }

    /// Next fit (illumos `vmem_nextfit_alloc`): the first free segment after
    /// the rotor that is big enough, then the rotor moves behind the new
    /// allocation. Returns the new tag, or 0 when nothing fits; `release`
    /// receives a span that advancing the rotor freed entirely.
    @inlinable
    mutating func allocNextFit(_ size: UInt64, fromEnd: Bool, hasSource: Bool,
                               release: inout (base: UInt64, size: UInt64)?) -> TagIndex {
        let rotor = ReservedTag.rotor
        var v = tags[Int(rotor)].segNext
        // Fast path: carve the front of the free segment right after the
        // rotor, and put the new segment *behind* the rotor instead of moving it.
        if !fromEnd && tags[Int(v)].kind == kindFree {
            let vs = tags[Int(v)].size
            if vs > size && p2samehighbit(vs, vs &- size) {
                let addr = tags[Int(v)].start
                tags[Int(v)].start = addr &+ size
                freelistResized(v)
                let a = createSeg(after: tags[Int(rotor)].segPrev, start: addr, end: addr &+ size, kind: kindAlloc)
                hashInsert(a)
                return a
            }
        }
        while true {
            stats.searchCount &+= 1
            if tags[Int(v)].kind == kindFree && tags[Int(v)].size >= size { break }
            v = tags[Int(v)].segNext
            if v == rotor {
                // Full circle. The rotor itself may split a large enough free
                // range in two: step it forward once so they coalesce.
                release = advance(rotor, after: tags[Int(rotor)].segNext, hasSource: hasSource)
                v = tags[Int(rotor)].segPrev
                if tags[Int(v)].kind == kindFree && tags[Int(v)].size >= size { break }
                return 0
            }
        }
        // From the end: the segment's top `size` bytes (wrapping: a segment
        // may end at 2^64), with the rotor after them, so the free rest
        // below waits until the rotor comes round again.
        let at = fromEnd ? tags[Int(v)].start &+ tags[Int(v)].size &- size : tags[Int(v)].start
        let a = carve(v, at: at, size: size)
        if let r = advance(rotor, after: a, hasSource: hasSource) { release = r }
        return a
    }
}
