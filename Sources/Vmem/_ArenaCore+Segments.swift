// Carving allocations out of free segments, giving them back, and spans.

import CVmemSupport

extension ArenaCore {
    /// Takes `[addr, addr+size)` out of free segment `t` (illumos
    /// `vmem_seg_alloc`) and returns the new allocated segment's tag. Needs at
    /// most two fresh tags.
    @inlinable @inline(__always)
    mutating func carve(_ t: TagIndex, at addr: UInt64, size: UInt64) -> TagIndex {
        // The new segment's hash bucket is a likely cache miss: start it now
        // so that it overlaps the free-list and tag work below.
        cvmem_prefetch_write(hashBucket(addr))
        let s = tags[Int(t)].start, e = tags[Int(t)].end
        let segSize = e &- s
        let addrEnd = addr &+ size
        // From the front, with a remainder that stays on the same list: shrink
        // the free segment in place; it keeps its place on its list.
        if addr == s && p2samehighbit(segSize, segSize &- size) {
            tags[Int(t)].start = addrEnd
            freelistResized(t)
            let a = createSeg(after: tags[Int(t)].segPrev, start: addr, end: addrEnd, kind: kindAlloc)
            hashInsert(a)
            return a
        }
        freelistDelete(t)
        if e != addrEnd {
            let r = createSeg(after: t, start: addrEnd, end: e, kind: kindFree)
            freelistInsert(r)
        }
        if s != addr {
            let l = createSeg(after: tags[Int(t)].segPrev, start: s, end: addr, kind: kindFree)
            freelistInsert(l)
        }
        tags[Int(t)].start = addr
        tags[Int(t)].end = addrEnd
        hashInsert(t)
        return t
    }

    /// Instant fit's carve: the front `size` bytes of the head of list
    /// `list`, every member of which is at least `size` long. The result is
    /// `carve(head, at: head.start, size: size)`'s, tag for tag; this is that
    /// function for the one case the arena's fast path meets, where the
    /// head's slot is known (the last) and the caller has reserved the tags,
    /// so that the table cannot move and its address stays in a register.
    @inlinable @inline(__always)
    mutating func carveListHead(_ list: Int, size: UInt64) -> TagIndex {
        let tags = self.tags
        let e = lists[list].entries.unsafelyUnwrapped
        let pos = lists[list].count &- 1
        let t = e[pos].tag
        let tp = tags + Int(t)
        let s = tp.pointee.start, end = tp.pointee.end
        cvmem_prefetch_write(hashBucket(s))
        let addrEnd = s &+ size
        let rest = end &- addrEnd
        if p2samehighbit(end &- s, rest) {
            // The remainder stays on this list, in the head's slot.
            tp.pointee.start = addrEnd
            e[pos].quanta = entryQuanta(rest)
            let a = getReservedTag()
            initSeg(a, start: s, end: addrEnd, kind: kindAlloc, after: tp.pointee.segPrev, in: tags)
            hashInsert(a)
            return a
        }
        freelistPopHead(list)
        if rest != 0 {
            let r = getReservedTag()
            initSeg(r, start: addrEnd, end: end, kind: kindFree, after: t, in: tags)
            freelistInsert(r)
        }
        tp.pointee.end = addrEnd
        hashInsert(t)
        return t
    }

    /// Fills tag `t` (already taken) for `[start, end)` of `kind`, not
    /// imported, and links it after `p`: the body of
    /// ``createSeg(after:start:end:kind:)``. The table's address is passed
    /// in, so that a caller holding it in a register keeps it there.
    @inlinable @inline(__always)
    func initSeg(_ t: TagIndex, start: UInt64, end: UInt64, kind: UInt8, after p: TagIndex,
                 in tags: UnsafeMutablePointer<BoundaryTag>) {
        let tp = tags + Int(t), pp = tags + Int(p)
        let n = pp.pointee.segNext
        tp.pointee.start = start
        tp.pointee.end = end
        tp.pointee.segPrev = p
        // segNext, the kind, and `imported` clear, in one store.
        tp.pointee.packed = n | (UInt32(kind) << 28)
        pp.pointee.segNext = t
        tags[Int(n)].segPrev = t
    }

    /// Appends a span and its one free segment (illumos `vmem_span_create`);
    /// returns the free segment. Needs two fresh tags.
    @inlinable
    mutating func createSpan(start: UInt64, end: UInt64, imported: Bool) -> TagIndex {
        let span = createSeg(after: tags[Int(ReservedTag.seg0)].segPrev, start: start, end: end, kind: kindSpan)
        tags[Int(span)].imported = imported
        // Span list, in creation order.
        let sl = ReservedTag.spans
        let last = tags[Int(sl)].prev
        tags[Int(span)].prev = last
        tags[Int(span)].next = sl
        tags[Int(last)].next = span
        tags[Int(sl)].prev = span
        let f = createSeg(after: span, start: start, end: end, kind: kindFree)
        freelistInsert(f)
        let size = end &- start
        if imported { stats.memImported &+= size; stats.importCount &+= 1 }
        stats.memTotal &+= size
        spanCount += 1
        return f
    }

    /// Removes the span whose only segment is the free segment `t`, which is
    /// no longer on a free list (illumos `vmem_span_destroy`).
    @inlinable
    mutating func destroySpan(freeSegment t: TagIndex) {
        let span = tags[Int(t)].segPrev
        let size = tags[Int(span)].size
        if tags[Int(span)].imported { stats.memImported &-= size; stats.releaseCount &+= 1 }
        stats.memTotal &-= size
        let p = tags[Int(span)].prev, n = tags[Int(span)].next
        tags[Int(p)].next = n
        tags[Int(n)].prev = p
        destroySeg(t)
        destroySeg(span)
        spanCount -= 1
    }

    /// Whether free segment `t` is a whole imported span that can go back to
    /// the source: both neighbours on the segment list are span markers.
    @inlinable @inline(__always)
    func isWholeImportedSpan(_ t: TagIndex) -> Bool {
        let p = tags[Int(t)].segPrev, n = tags[Int(t)].segNext
        return tags[Int(p)].kind == kindSpan && tags[Int(p)].imported && tags[Int(n)].kind == kindSpan
    }

    /// Frees allocated segment `t` (already out of the hash): coalesces with
    /// the next and then the previous free neighbour. Returns the span to
    /// release to the source, or nil when the segment went on a free list.
    @inlinable @inline(__always)
    mutating func freeSegment(_ t: TagIndex, hasSource: Bool) -> (base: UInt64, size: UInt64)? {
        var v = t
        let n = tags[Int(v)].segNext
        // Both neighbours are likely cache misses; load them side by side.
        cvmem_prefetch_write(tags + Int(tags[Int(v)].segPrev))
        if tags[Int(n)].kind == kindFree {
            freelistDelete(n)
            tags[Int(v)].end = tags[Int(n)].end
            destroySeg(n)
        }
        let p = tags[Int(v)].segPrev
        if tags[Int(p)].kind == kindFree {
            freelistDelete(p)
            tags[Int(p)].end = tags[Int(v)].end
            destroySeg(v)
            v = p
        }
        if hasSource && isWholeImportedSpan(v) {
            let base = tags[Int(v)].start, size = tags[Int(v)].size
            destroySpan(freeSegment: v)
            return (base, size)
        }
        freelistInsert(v)
        return nil
    }

    /// Moves the rotor (or a walker) to just after `afterMe`, coalescing the
    /// free neighbours it used to separate (illumos `vmem_advance`). Returns a
    /// span to release when that made one wholly free.
    @usableFromInline
    mutating func advance(_ walker: TagIndex, after afterMe: TagIndex, hasSource: Bool) -> (base: UInt64, size: UInt64)? {
        let vprev = tags[Int(walker)].segPrev, vnext = tags[Int(walker)].segNext
        removeSeg(walker)
        insertSeg(walker, after: afterMe)
        var v: TagIndex = 0
        if tags[Int(vprev)].kind == kindFree {
            if tags[Int(vnext)].kind == kindFree {
                freelistDelete(vnext)
                freelistDelete(vprev)
                tags[Int(vprev)].end = tags[Int(vnext)].end
                freelistInsert(vprev)
                destroySeg(vnext)
            }
            v = vprev
        } else if tags[Int(vnext)].kind == kindFree {
            v = vnext
        }
        if v != 0 && hasSource && isWholeImportedSpan(v) {
            let base = tags[Int(v)].start, size = tags[Int(v)].size
            freelistDelete(v)
            destroySpan(freeSegment: v)
            return (base, size)
        }
        return nil
    }
}
