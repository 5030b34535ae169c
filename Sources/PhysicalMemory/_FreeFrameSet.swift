/// The free list: frames with no `page_t` in use, kept compactly.
///
/// Two parts, because the two ways frames become free differ:
///
/// * **extents** — maximal runs of free frames, sorted by *descending* base so
///   that the lowest run is last and is consumed with `removeLast`. At boot the
///   whole memory list is a handful of extents, so a 2^29-page machine costs a
///   few words.
/// * **recycled** — a stack of single frames freed since the last compaction.
///   Pushing and popping are O(1), which is what keeps an allocate + free pair
///   far below the 200 ns budget.
///
/// Allocation pops the stack first (the most recently freed frame, like a
/// per-CPU page cache), then takes the lowest frame of the lowest extent.
///
/// A specific frame can be claimed (boot memory, tests). A claim inside an
/// extent splits it. A claim of a recycled frame cannot find it in the stack
/// cheaply, so it is recorded as a *tombstone* and skipped when popped; a
/// frame may be claimed, freed and claimed again before the stack gets to it,
/// so tombstones are counted per frame.
///
/// **Compaction** sorts the stack into the extents. Free extents are separated
/// by frames that are not free, so after compaction there are at most
/// (frames in use + memory-list holes + 1) extents: memory stays proportional
/// to the pages in use, never to the machine. The owner compacts when the stack
/// outgrows twice the pages in use.
struct _FreeFrameSet {
    /// Disjoint, non-adjacent, sorted by descending `lower`.
    private(set) var extents: [FrameRange]
    private(set) var recycled: [PageFrameNumber] = []
    private(set) var tombstones: [PageFrameNumber: UInt32] = [:]
    private(set) var tombstoneCount = 0
    /// Free frames in all.
    private(set) var count: UInt64

    /// `ascending` must be sorted, disjoint and non-empty ranges.
    init(ascending: [FrameRange]) {
        var merged: [FrameRange] = []
        for r in ascending where !r.isEmpty {
            if let last = merged.last, last.upper == r.lower {
                merged[merged.count - 1].upper = r.upper
            } else {
                merged.append(r)
            }
        }
        extents = merged.reversed()
        count = merged.reduce(0) { $0 + $1.count }
    }

    /// Takes any free frame.
    @inline(__always)
    mutating func take() -> PageFrameNumber? {
        while let pfn = recycled.popLast() {
            if tombstoneCount != 0, consumeTombstone(pfn) { continue }
            count -= 1
            return pfn
        }
        guard !extents.isEmpty else { return nil }
        let i = extents.count - 1
        let pfn = extents[i].lower
        extents[i].lower += 1
        if extents[i].isEmpty { extents.removeLast() }
        count -= 1
        return pfn
    }

    /// Returns a frame (which the caller knows is not free) to the set.
    @inline(__always)
    mutating func put(_ pfn: PageFrameNumber) {
        recycled.append(pfn)
        count += 1
    }

    /// Returns a run of frames (which the caller knows are not free) to the
    /// set as an extent, merged with its neighbours: a run of any length
    /// costs one entry, never one per frame.
    mutating func putRange(_ r: FrameRange) {
        guard !r.isEmpty else { return }
        count += r.count
        // `lo`: the first extent at or below r (the array is descending).
        var lo = 0, hi = extents.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if extents[mid].lower > r.lower { lo = mid + 1 } else { hi = mid }
        }
        var merged = r
        let joinsAbove = lo > 0 && extents[lo - 1].lower == r.upper
        let joinsBelow = lo < extents.count && extents[lo].upper == r.lower
        if joinsAbove { merged.upper = extents[lo - 1].upper }
        if joinsBelow { merged.lower = extents[lo].lower }
        switch (joinsAbove, joinsBelow) {
        case (true, true):
            extents[lo - 1] = merged
            extents.remove(at: lo)
        case (true, false): extents[lo - 1] = merged
        case (false, true): extents[lo] = merged
        case (false, false): extents.insert(merged, at: lo)
        }
    }

    /// Takes up to `n` consecutive frames for a large request: the lowest
    /// extent that holds all `n` starting at a frame `≡ phase (mod
    /// alignment)` (so that a kernel VA and its frames line up for large
    /// pages), else the lower end of the lowest extent, else one recycled
    /// frame. Nil when the set is empty.
    mutating func takeRun(_ n: UInt64, alignment: UInt64, phase: UInt64) -> FrameRange? {
        var i = extents.count - 1
        while i >= 0 {
            let e = extents[i]
            let start = e.lower &+ ((phase &- e.lower) & (alignment - 1))
            let (end, o) = start.addingReportingOverflow(n)
            if start >= e.lower, !o, end <= e.upper {
                let below = FrameRange(lower: e.lower, upper: start)
                let above = FrameRange(lower: end, upper: e.upper)
                switch (above.isEmpty, below.isEmpty) {
                case (true, true): extents.remove(at: i)
                case (false, true): extents[i] = above
                case (true, false): extents[i] = below
                case (false, false):
                    extents[i] = above
                    extents.insert(below, at: i + 1)
                }
                count -= n
                return FrameRange(lower: start, upper: end)
            }
            i -= 1
        }
        if let last = extents.indices.last {
            let e = extents[last]
            let k = min(n, e.count)
            extents[last].lower += k
            if extents[last].isEmpty { extents.removeLast() }
            count -= k
            return FrameRange(lower: e.lower, upper: e.lower + k)
        }
        guard let pfn = take() else { return nil }
        return FrameRange(lower: pfn, upper: pfn + 1)
    }

    /// Index of the extent containing `pfn`, by binary search on the
    /// descending order.
    func extentIndex(containing pfn: PageFrameNumber) -> Int? {
        var lo = 0, hi = extents.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if extents[mid].lower > pfn {
                lo = mid + 1
            } else {
                hi = mid
            }
        }
        // `lo` is the first extent with lower <= pfn.
        if lo < extents.count && extents[lo].contains(pfn) { return lo }
        return nil
    }

    /// Removes `pfn`, which the caller knows to be free, from the set.
    mutating func claim(_ pfn: PageFrameNumber) {
        if let i = extentIndex(containing: pfn) {
            let e = extents[i]
            let above = FrameRange(lower: pfn + 1, upper: e.upper)
            let below = FrameRange(lower: e.lower, upper: pfn)
            switch (above.isEmpty, below.isEmpty) {
            case (true, true): extents.remove(at: i)
            case (false, true): extents[i] = above
            case (true, false): extents[i] = below
            case (false, false):
                extents[i] = above
                extents.insert(below, at: i + 1)
            }
        } else {
            tombstones[pfn, default: 0] += 1
            tombstoneCount += 1
        }
        count -= 1
    }

    private mutating func consumeTombstone(_ pfn: PageFrameNumber) -> Bool {
        guard let n = tombstones[pfn] else { return false }
        if n == 1 { tombstones[pfn] = nil } else { tombstones[pfn] = n - 1 }
        tombstoneCount -= 1
        return true
    }

    /// Takes `n` consecutive frames whose first is a multiple of `alignment`,
    /// from the lowest extent that can hold them. Compacts first if no extent can.
    mutating func takeContiguous(_ n: UInt64, alignment: UInt64) -> PageFrameNumber? {
        if let pfn = takeContiguousFromExtents(n, alignment: alignment) { return pfn }
        guard !recycled.isEmpty else { return nil }
        compact()
        return takeContiguousFromExtents(n, alignment: alignment)
    }

    private mutating func takeContiguousFromExtents(_ n: UInt64, alignment: UInt64) -> PageFrameNumber? {
        var i = extents.count - 1
        while i >= 0 {
            let e = extents[i]
            let (rounded, o1) = e.lower.addingReportingOverflow(alignment - 1)
            if !o1 {
                let start = rounded & ~(alignment - 1)
                let (end, o2) = start.addingReportingOverflow(n)
                if !o2 && end <= e.upper {
                    let below = FrameRange(lower: e.lower, upper: start)
                    let above = FrameRange(lower: end, upper: e.upper)
                    switch (above.isEmpty, below.isEmpty) {
                    case (true, true): extents.remove(at: i)
                    case (false, true): extents[i] = above
                    case (true, false): extents[i] = below
                    case (false, false):
                        extents[i] = above
                        extents.insert(below, at: i + 1)
                    }
                    count -= n
                    return start
                }
            }
            i -= 1
        }
        return nil
    }

    /// Folds the recycled stack into the extents.
    mutating func compact() {
        guard !recycled.isEmpty else { return }
        var singles = recycled
        recycled.removeAll(keepingCapacity: false)
        singles.sort()
        if tombstoneCount != 0 {
            // Each tombstone cancels one occurrence of its frame.
            var kept: [PageFrameNumber] = []
            kept.reserveCapacity(singles.count)
            for pfn in singles {
                if !consumeTombstone(pfn) { kept.append(pfn) }
            }
            singles = kept
        }
        var merged: [FrameRange] = []
        merged.reserveCapacity(extents.count + singles.count)
        var e = extents.count - 1          // ascending walk of the descending array
        var s = 0
        func append(_ r: FrameRange) {
            if let last = merged.last, last.upper == r.lower {
                merged[merged.count - 1].upper = r.upper
            } else {
                merged.append(r)
            }
        }
        while e >= 0 || s < singles.count {
            if s == singles.count || (e >= 0 && extents[e].lower < singles[s]) {
                append(extents[e]); e -= 1
            } else {
                append(FrameRange(lower: singles[s], upper: singles[s] + 1)); s += 1
            }
        }
        extents = merged.reversed()
    }

    /// Whether `pfn` is in the set: in an extent, or on the stack and not
    /// cancelled by a tombstone. O(stack) — for verification only.
    func containsSlow(_ pfn: PageFrameNumber) -> Bool {
        if extentIndex(containing: pfn) != nil { return true }
        let copies = recycled.reduce(0) { $0 + ($1 == pfn ? 1 : 0) }
        return copies > Int(tombstones[pfn] ?? 0)
    }

    /// Host bytes held by the set.
    var footprint: Int {
        extents.capacity * MemoryLayout<FrameRange>.stride
            + recycled.capacity * MemoryLayout<PageFrameNumber>.stride
            + tombstones.capacity * (MemoryLayout<PageFrameNumber>.stride + 4)
    }
}
