/// The records that cover more than one page, kept in two sorted arrays so
/// that a page *inside* a run can be found: by frame number (the run whose
/// `[pfn, pfn + count)` holds it) and by identity (the run of the same vnode
/// whose `[offset, offset + count × 4096)` holds it).
///
/// The two hashes (``_FrameIndex``, ``_IdentityHash``) still index every
/// record by its *first* frame and *first* identity, so a one-page record —
/// every page the per-page calls make — is found exactly as before, in O(1).
/// Only a hash miss falls back to a binary search here, and only when some
/// run exists. Runs are few (one per `page_create_va` of many pages, until a
/// call on one of their pages splits them), so inserting into the middle of
/// a sorted array is cheap and lookups stay in cache.
struct _RunIndex {
    struct ByFrame {
        var pfn: UInt64
        var slot: UInt32
    }

    struct ByIdentity {
        var vnode: UInt32
        var offset: UInt64
        var slot: UInt32

        @inline(__always)
        func precedes(_ vnode: UInt32, _ offset: UInt64) -> Bool {
            self.vnode < vnode || (self.vnode == vnode && self.offset < offset)
        }
    }

    /// Ascending by `pfn`; runs never share a frame.
    private(set) var frames: [ByFrame] = []
    /// Ascending by `(vnode, offset)`; runs of one vnode never share an offset.
    private(set) var identities: [ByIdentity] = []

    var isEmpty: Bool { frames.isEmpty }
    var count: Int { frames.count }

    /// Index of the first entry whose pfn is above `pfn`.
    @inline(__always)
    private func upperFrame(_ pfn: UInt64) -> Int {
        var lo = 0, hi = frames.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if frames[mid].pfn <= pfn { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Index of the first entry not below `(vnode, offset)`... strictly above it.
    @inline(__always)
    private func upperIdentity(_ vnode: UInt32, _ offset: UInt64) -> Int {
        var lo = 0, hi = identities.count
        while lo < hi {
            let mid = (lo + hi) / 2
            let e = identities[mid]
            if e.vnode < vnode || (e.vnode == vnode && e.offset <= offset) { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// The run whose frames include `pfn`, or 0.
    @inline(__always)
    func find(pfn: UInt64, in slab: _RecordSlab) -> UInt32 {
        if frames.isEmpty { return 0 }
        let i = upperFrame(pfn)
        guard i > 0 else { return 0 }
        let slot = frames[i - 1].slot
        return pfn &- slab[slot].pfn < slab[slot].count ? slot : 0
    }

    /// The run of `vnode` whose identities include `offset`, or 0.
    @inline(__always)
    func find(vnode: UInt32, offset: UInt64, in slab: _RecordSlab) -> UInt32 {
        if identities.isEmpty { return 0 }
        let i = upperIdentity(vnode, offset)
        guard i > 0 else { return 0 }
        let e = identities[i - 1]
        guard e.vnode == vnode else { return 0 }
        return (offset &- e.offset) >> PhysicalMemory.pageShift < slab[e.slot].count ? e.slot : 0
    }

    /// Runs of `vnode` that overlap identities `[offset, end)`, ascending.
    func slots(vnode: UInt32, from offset: UInt64, to end: UInt64, in slab: _RecordSlab) -> [UInt32] {
        var out: [UInt32] = []
        var i = upperIdentity(vnode, offset)
        if i > 0 {
            let e = identities[i - 1]
            if e.vnode == vnode, (offset &- e.offset) >> PhysicalMemory.pageShift < slab[e.slot].count { out.append(e.slot) }
        }
        while i < identities.count, identities[i].vnode == vnode, identities[i].offset < end {
            out.append(identities[i].slot)
            i += 1
        }
        return out
    }

    mutating func insert(_ slot: UInt32, in slab: _RecordSlab) {
        let r = slab[slot]
        frames.insert(ByFrame(pfn: r.pfn, slot: slot), at: upperFrame(r.pfn))
        identities.insert(ByIdentity(vnode: r.vnode, offset: r.offset, slot: slot),
                          at: upperIdentity(r.vnode, r.offset))
    }

    /// Removes the run in `slot`, which must still hold its start keys.
    mutating func remove(_ slot: UInt32, in slab: _RecordSlab) {
        let r = slab[slot]
        let f = upperFrame(r.pfn) - 1
        if f >= 0, frames[f].slot == slot { frames.remove(at: f) }
        let i = upperIdentity(r.vnode, r.offset) - 1
        if i >= 0, identities[i].slot == slot { identities.remove(at: i) }
    }

    var footprint: Int {
        frames.capacity * MemoryLayout<ByFrame>.stride + identities.capacity * MemoryLayout<ByIdentity>.stride
    }
}
