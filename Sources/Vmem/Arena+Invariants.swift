// verify(): every structural invariant of the module article, checked.

extension Arena {
    /// Checks every invariant and throws ``VmemError/invariantViolated(_:)``
    /// naming the first broken one and the segment it concerns. O(segments).
    public func verify() throws(VmemError) {
        lock.lock(); defer { lock.unlock() }
        if let problem = core.pointee.firstViolation(name: name, hasSource: hasSource) {
            throw .invariantViolated("arena \(name): \(problem)")
        }
        var slabsHeld = 0
        for (i, qc) in qcaches.enumerated() {
            if let problem = qc.verify() {
                throw .invariantViolated("arena \(name): quantum cache \(i + 1): \(problem)")
            }
            if let problem = slabViolation(qc, &slabsHeld) {
                throw .invariantViolated("arena \(name): quantum cache \(i + 1): \(problem)")
            }
        }
        // A marked slab no cache holds yet is one on its way from `allocSlab`
        // to the cache's slab layer; there are never fewer marks than slabs.
        let marked = core.pointee.cacheSlabCount()
        if marked < slabsHeld {
            throw .invariantViolated("arena \(name): \(marked) segments marked as cache slabs, the caches hold \(slabsHeld)")
        }
    }

    /// Every slab in `qc`'s directory is an allocated segment of this arena,
    /// of the slab size and marked as a cache slab (arena lock held; takes
    /// the cache's slab lock, after the arena lock as `verify` always does).
    private func slabViolation(_ qc: QuantumCache, _ held: inout Int) -> String? {
        qc.slabLock.lock(); defer { qc.slabLock.unlock() }
        var problem: String?
        qc.slabs.pointee.directory.forEach { base, _ in
            held += 1
            guard problem == nil else { return }
            let t = core.pointee.hashFind(base)
            if t == 0 {
                problem = "slab \(hex(base)) is not an allocated segment of the arena"
            } else if core.pointee.tags[Int(t)].size != qc.slabSize || !core.pointee.tags[Int(t)].cacheSlab {
                problem = "slab \(hex(base)) is \(core.pointee.seg(t)), size \(hex(core.pointee.tags[Int(t)].size)), \(core.pointee.tags[Int(t)].cacheSlab ? "" : "not ")marked as a cache slab"
            }
        }
        return problem
    }
}

extension ArenaCore {
    /// Allocated segments marked as quantum-cache slabs.
    func cacheSlabCount() -> Int {
        var n = 0
        var t = tags[Int(ReservedTag.seg0)].segNext
        while t != ReservedTag.seg0 {
            if tags[Int(t)].kind == kindAlloc && tags[Int(t)].cacheSlab { n += 1 }
            t = tags[Int(t)].segNext
        }
        return n
    }

    func seg(_ t: TagIndex) -> String {
        let k = SegmentKind(rawValue: tags[Int(t)].kind)?.traceName ?? "kind\(tags[Int(t)].kind)"
        return "tag \(t) (\(k) [\(hex(tags[Int(t)].start)), \(hex(tags[Int(t)].end))))"
    }

    func firstViolation(name: String, hasSource: Bool) -> String? {
        let limit = Int(tagHighWater) + 1
        var listedFree = Set<TagIndex>()
        for i in 0..<64 {
            guard let e = lists[i].entries else { continue }
            for p in 0..<min(lists[i].count, lists[i].capacity) where e[p].tag != 0 { listedFree.insert(e[p].tag) }
        }
        var inUse = 0 as UInt64, total = 0 as UInt64, imported = 0 as UInt64
        var freeSegs = 0, allocSegs = 0, spans = 0, rotors = 0, visited = 0
        var spanStarts: [(UInt64, UInt64)] = []
        var t = tags[Int(ReservedTag.seg0)].segNext
        var prev = ReservedTag.seg0
        var cursor: UInt64 = 0           // next address expected inside the current span
        var spanEnd: UInt64 = 0
        var inSpan = false
        var lastKind: UInt8 = 0          // of the previous non-marker segment
        while t != ReservedTag.seg0 {
            visited += 1
            if visited > limit { return "segment list does not return to its head" }
            if t >= tagHighWater && t >= ReservedTag.firstDynamic { return "segment list links to unused tag \(t)" }
            if tags[Int(t)].segPrev != prev { return "\(seg(t)): back link \(tags[Int(t)].segPrev) should be \(prev)" }
            let tag = tags[Int(t)]
            switch tag.kind {
            case kindRotor, kindWalker:
                rotors += tag.kind == kindRotor ? 1 : 0
            case kindSpan:
                if inSpan && cursor != spanEnd { return "span ending at \(hex(spanEnd)) has a hole at \(hex(cursor))" }
                if tag.start >= tag.end { return "\(seg(t)): empty or inverted span" }
                spans += 1
                total &+= tag.size
                if tag.imported { imported &+= tag.size }
                spanStarts.append((tag.start, tag.end))
                inSpan = true; cursor = tag.start; spanEnd = tag.end; lastKind = 0
            case kindFree, kindAlloc:
                if !inSpan { return "\(seg(t)) lies before any span marker" }
                if tag.start != cursor { return "\(seg(t)) should start at \(hex(cursor))" }
                if tag.start >= tag.end || tag.end > spanEnd { return "\(seg(t)) is empty or runs past its span end \(hex(spanEnd))" }
                if (tag.start | tag.end) & (quantum - 1) != 0 { return "\(seg(t)) is not quantum aligned" }
                if tag.kind == kindFree {
                    if tag.cacheSlab { return "\(seg(t)) is free but still marked as a cache slab" }
                    if lastKind == kindFree && tags[Int(prev)].kind == kindFree {
                        return "\(seg(t)) and \(seg(prev)) are adjacent free segments that were not coalesced"
                    }
                    freeSegs += 1
                    if !listedFree.contains(t) { return "\(seg(t)) is not on free list \(freeListIndex(tag.size))" }
                    if hasSource && isWholeImportedSpan(t) {
                        return "\(seg(t)) is a wholly free imported span that was not released"
                    }
                } else {
                    allocSegs += 1
                    inUse &+= tag.size
                    if hashFind(tag.start) != t { return "\(seg(t)) is missing from the allocated hash" }
                }
                cursor = tag.end
                lastKind = tag.kind
            default:
                return "\(seg(t)) has an invalid kind"
            }
            prev = t
            t = tag.segNext
        }
        if tags[Int(ReservedTag.seg0)].segPrev != prev { return "segment list head's back link is wrong" }
        if inSpan && cursor != spanEnd { return "last span has a hole at \(hex(cursor))" }
        if rotors != 1 { return "\(rotors) rotors on the segment list" }
        if spans != spanCount { return "\(spans) span markers but \(spanCount) spans recorded" }

        spanStarts.sort { $0.0 < $1.0 }
        for i in spanStarts.indices.dropFirst() where spanStarts[i].0 < spanStarts[i - 1].1 {
            return "spans [\(hex(spanStarts[i - 1].0)), \(hex(spanStarts[i - 1].1))) and [\(hex(spanStarts[i].0)), \(hex(spanStarts[i].1))) overlap"
        }

        // Span list: exactly the span markers.
        var spanList = 0
        var s = tags[Int(ReservedTag.spans)].next
        while s != ReservedTag.spans {
            spanList += 1
            if spanList > limit || tags[Int(s)].kind != kindSpan { return "span list is corrupt at tag \(s)" }
            s = tags[Int(s)].next
        }
        if spanList != spans { return "span list holds \(spanList) spans, segment list \(spans)" }

        // Free lists and freemap.
        var onLists = 0
        for i in 0..<64 {
            let l = lists[i]
            if l.count < 0 || l.count > l.capacity || l.live < 0 || l.live > l.count {
                return "free list \(i) has count \(l.count), live \(l.live), capacity \(l.capacity)"
            }
            var n = 0
            if let e = l.entries {
                for p in 0..<l.count where e[p].tag != 0 {
                    let f = e[p].tag
                    n += 1
                    if f >= tagHighWater || tags[Int(f)].kind != kindFree { return "free list \(i) holds \(seg(f))" }
                    if Int(tags[Int(f)].prev) != p { return "free list \(i): \(seg(f)) records position \(tags[Int(f)].prev), is at \(p)" }
                    if e[p].quanta != entryQuanta(tags[Int(f)].size) {
                        return "free list \(i): entry of \(e[p].quanta) quanta for \(seg(f))"
                    }
                    if freeListIndex(tags[Int(f)].size) != i { return "\(seg(f)) is on free list \(i), belongs on \(freeListIndex(tags[Int(f)].size))" }
                }
                if l.count > 0 && e[l.count - 1].tag == 0 { return "free list \(i) ends in a tombstone" }
            }
            if n != l.live { return "free list \(i) holds \(n) segments, live count says \(l.live)" }
            onLists += n
            if (n > 0) != (freemap & (1 << UInt64(i)) != 0) {
                return "freemap bit \(i) is \(freemap & (1 << UInt64(i)) != 0 ? 1 : 0) but list \(i) has \(n) segments"
            }
        }
        if onLists != freeSegs { return "\(onLists) segments on free lists, \(freeSegs) free segments in spans" }

        // Hash.
        var hashed = 0
        for b in 0..<(1 << hashBits) {
            var h = hashBuckets[b]
            while h != 0 {
                hashed += 1
                if hashed > limit { return "hash bucket \(b) loops" }
                if tags[Int(h)].kind != kindAlloc { return "hash bucket \(b) holds \(seg(h))" }
                if hashIndex(tags[Int(h)].start) != b { return "\(seg(h)) hashed into the wrong bucket \(b)" }
                h = tags[Int(h)].next
            }
        }
        if hashed != allocSegs { return "hash holds \(hashed) segments, spans hold \(allocSegs) allocated" }
        if UInt64(allocSegs) != stats.allocatedSegments { return "allocatedSegments \(stats.allocatedSegments) != \(allocSegs)" }

        // Statistics.
        if inUse != stats.memInUse { return "memInUse \(stats.memInUse) != allocated bytes \(inUse)" }
        if total != stats.memTotal { return "memTotal \(stats.memTotal) != span bytes \(total)" }
        if imported != stats.memImported { return "memImported \(stats.memImported) != imported span bytes \(imported)" }
        if stats.allocCount &- stats.freeCount != stats.allocatedSegments {
            return "allocs \(stats.allocCount) - frees \(stats.freeCount) != live segments \(stats.allocatedSegments)"
        }

        // Free tags.
        var freeTags = 0
        var ft = freeTagHead
        while ft != 0 {
            freeTags += 1
            if freeTags > limit || tags[Int(ft)].kind != 0 { return "free-tag list is corrupt at tag \(ft)" }
            ft = tags[Int(ft)].next
        }
        if freeTags != freeTagCount { return "free-tag list holds \(freeTags), count says \(freeTagCount)" }
        let accounted = freeTags + freeSegs + allocSegs + spans + Int(ReservedTag.firstDynamic)
        if accounted != Int(tagHighWater) { return "\(Int(tagHighWater) - accounted) boundary tags leaked" }
        return nil
    }
}
