/// Splitting and merging runs: how one record can stand for many pages and
/// still let every per-page call (a lock, a lock count, a destroy) act on
/// exactly one page.
///
/// * **Split on demand.** A call on one page of a run first cuts the run so
///   that the page has a record of its own (``isolate(_:)``): at most two
///   new records, the part before keeping the original slot (its start keys
///   do not move, so the hashes need no update).
/// * **Merge when states meet again.** After a call that can bring a page
///   back to its neighbours' state (an unlock, a lock-count change), the
///   record is merged with the record just below and just above it when
///   they continue it exactly: same vnode, consecutive frames *and*
///   consecutive offsets, same flags, page lock and counts
///   (``coalesce(_:)``). So a run soft-locked and unlocked page by page
///   ends as one record again, and the record count stays proportional to
///   the runs of distinct state, never to the pages.
///
/// Cached and boot records never merge: the cache list links single pages.
extension _PageFrameTable {
    /// Cuts the record in `slot` so that a record starts at `pfn`, which must
    /// lie strictly inside it; returns the slot of the upper part.
    mutating func split(_ slot: UInt32, at pfn: PageFrameNumber) -> UInt32? {
        let r = slab[slot]
        let lowerCount = pfn - r.pfn
        guard let upper = slab.allocate() else { return nil }
        var u = r
        u.pfn = pfn
        u.count = r.count - lowerCount
        if r.vnode != 0 { u.offset = r.offset &+ lowerCount << PhysicalMemory.pageShift }
        u.frameNext = 0
        u.hashNext = 0
        u.listPrev = 0
        u.listNext = 0
        slab[upper] = u
        // The lower part keeps its start keys; only its length changes.
        if lowerCount == 1 { runs.remove(slot, in: slab) }
        slab[slot].count = lowerCount
        frames.insert(upper, in: slab)
        if u.vnode != 0 { identities.insert(upper, in: slab) }
        if u.count > 1 { runs.insert(upper, in: slab) }
        return upper
    }

    /// The slot of a record holding exactly the page at `pfn`, splitting its
    /// run if needed, or a typed reason why there is no page there.
    mutating func isolate(_ pfn: PageFrameNumber) throws(PhysicalMemoryError) -> UInt32 {
        var slot = try self.slot(of: pfn)
        if slab[slot].count == 1 { return slot }
        if pfn > slab[slot].pfn {
            guard let s = split(slot, at: pfn) else { throw .outOfMemory(requested: 1, available: 0) }
            slot = s
        }
        if slab[slot].count > 1 {
            guard split(slot, at: pfn + 1) != nil else {
                _ = coalesce(slot)
                throw .outOfMemory(requested: 1, available: 0)
            }
        }
        return slot
    }

    /// Ensures record boundaries at `lower` and `upper` (each inside or at
    /// the edge of a record, or on a frame with no record).
    mutating func cut(_ range: FrameRange) throws(PhysicalMemoryError) {
        for edge in [range.lower, range.upper] {
            let slot = recordSlot(containing: edge)
            if slot != 0, edge > slab[slot].pfn {
                guard split(slot, at: edge) != nil else { throw .outOfMemory(requested: 1, available: 0) }
            }
        }
    }

    /// Whether the record in `b` continues the record in `a` exactly.
    @inline(__always)
    func continues(_ a: UInt32, _ b: UInt32) -> Bool {
        let x = slab[a], y = slab[b]
        return x.pfn &+ x.count == y.pfn && x.vnode != 0 && x.vnode == y.vnode
            && x.offset &+ x.count << PhysicalMemory.pageShift == y.offset
            && x.flags == y.flags && !x.flags.contains(.cached) && !x.flags.contains(.boot)
            && x.lockCount == y.lockCount && x.cowCount == y.cowCount && x.shareCount == y.shareCount
    }

    /// Folds the record `b` into `a`, which it continues.
    mutating func absorb(_ a: UInt32, _ b: UInt32) {
        if slab[b].count > 1 { runs.remove(b, in: slab) }
        identities.remove(b, in: slab)
        frames.remove(b, in: slab)
        let added = slab[b].count
        slab.release(b)
        let wasSingle = slab[a].count == 1
        slab[a].count += added
        if wasSingle { runs.insert(a, in: slab) }
    }

    /// Merges the record in `slot` with its neighbours where they continue
    /// each other; returns the slot that now holds its pages.
    @discardableResult
    mutating func coalesce(_ slot: UInt32) -> UInt32 {
        var slot = slot
        let r = slab[slot]
        guard r.vnode != 0, !r.flags.contains(.cached), !r.flags.contains(.boot) else { return slot }
        let above = recordSlot(containing: r.pfn &+ r.count)
        if above != 0, above != slot, continues(slot, above) { absorb(slot, above) }
        if r.pfn > 0 {
            let below = recordSlot(containing: r.pfn - 1)
            if below != 0, below != slot, continues(below, slot) {
                absorb(below, slot)
                slot = below
            }
        }
        return slot
    }

    /// The records that together hold every frame of `range`, ascending, as
    /// (slot, first frame inside the range, frames inside the range); a frame
    /// with no page throws. O(records), not O(frames).
    func records(in range: FrameRange) throws(PhysicalMemoryError) -> [(slot: UInt32, lower: PageFrameNumber, count: UInt64)] {
        var out: [(slot: UInt32, lower: PageFrameNumber, count: UInt64)] = []
        var pfn = range.lower
        while pfn < range.upper {
            let slot = try self.slot(of: pfn)
            let end = min(slab[slot].pfn + slab[slot].count, range.upper)
            out.append((slot, pfn, end - pfn))
            pfn = end
        }
        return out
    }
}
