/// A run of pages that share one `page_t` record: consecutive frames named at
/// consecutive offsets of one vnode, all in the state of ``first``.
public struct PageRun: Hashable, Sendable, CustomStringConvertible {
    /// The first page of the run; every other page has the same state, vnode,
    /// locks and counts, at the next frame and the next offset.
    public let first: Page
    /// Pages in the run (at least 1).
    public let count: UInt64

    public init(first: Page, count: UInt64) {
        self.first = first
        self.count = count
    }

    /// The frames of the run.
    public var frames: FrameRange { FrameRange(lower: first.pfn, upper: first.pfn + count) }

    /// The page at frame `pfn` of the run.
    public func page(at pfn: PageFrameNumber) -> Page {
        let delta = pfn &- first.pfn
        return Page(pfn: pfn, vnode: first.vnode,
                    offset: first.vnode == nil ? first.offset : first.offset &+ delta << PhysicalMemory.pageShift,
                    state: first.state, lock: first.lock, lockCount: first.lockCount, cowCount: first.cowCount,
                    noRelocate: first.noRelocate)
    }

    public var description: String { "\(first) ×\(count)" }
}

extension _PageFrameTable {
    /// The run of the record in `slot`, clipped to `[lower, lower + count)`.
    func run(_ slot: UInt32, lower: PageFrameNumber? = nil, count: UInt64? = nil) -> PageRun {
        let lower = lower ?? slab[slot].pfn
        return PageRun(first: page(slot, pfn: lower), count: count ?? slab[slot].pfn + slab[slot].count - lower)
    }

    /// The lowest identity in `vnode`'s `[offset, offset + pageCount pages)`
    /// that names a page, with its record: per-offset probes when the range
    /// is smaller than the record count, else one pass over the records — so
    /// the cost is min(pages, records).
    func firstNamed(_ vnode: UInt32, from offset: UInt64, pageCount: UInt64) -> (offset: UInt64, slot: UInt32)? {
        let shift = PhysicalMemory.pageShift
        if pageCount <= UInt64(slab.liveCount) {
            for i in 0..<pageCount {
                let off = offset &+ i << shift
                let slot = identitySlot(vnode, off)
                if slot != 0 { return (off, slot) }
            }
            return nil
        }
        var best: (offset: UInt64, slot: UInt32)?
        let end = offset &+ (pageCount - 1) << shift  // the last identity (no overflow: checked by callers)
        forEachSlot { slot in
            let r = slab[slot]
            guard r.vnode == vnode else { return }
            let last = r.offset &+ (r.count - 1) << shift
            guard r.offset <= end, last >= offset else { return }
            let first = max(r.offset, offset)
            if best == nil || first < best!.offset { best = (first, slot) }
        }
        return best
    }

    /// Runs `check` on every record holding a frame of `range` (all must
    /// exist and be in use), then cuts the records at the range's edges,
    /// applies `apply` to each record inside, and merges what now agrees.
    /// Nothing changes when a check throws.
    mutating func onRun(_ range: FrameRange,
                        check: (_PageRecord, PageFrameNumber) throws(PhysicalMemoryError) -> Void,
                        apply: (inout _PageRecord) -> Void) throws(PhysicalMemoryError) {
        guard !range.isEmpty else { throw .zeroPageCount }
        for r in try records(in: range) {
            if slab[r.slot].flags.contains(.cached) { throw .pageIsCached(pfn: r.lower) }
            try check(slab[r.slot], r.lower)
        }
        try cut(range)
        var pfn = range.lower
        while pfn < range.upper {
            let slot = recordSlot(containing: pfn)
            apply(&slab[slot])
            pfn = slab[slot].pfn + slab[slot].count
        }
        pfn = range.lower
        while pfn < range.upper {
            let slot = coalesce(recordSlot(containing: pfn))
            pfn = slab[slot].pfn + slab[slot].count
        }
    }

    /// A new record of `count` frames from `pfn`, named from `offset`.
    mutating func makeRecord(pfn: PageFrameNumber, count: UInt64, vnode: UInt32, offset: UInt64,
                             flags: _PageRecord.Flags) -> UInt32? {
        guard let slot = slab.allocate() else { return nil }
        slab[slot].pfn = pfn
        slab[slot].count = count
        slab[slot].flags = flags
        frames.insert(slot, in: slab)
        hashIn(slot, vnode: vnode, offset: offset)
        if count > 1 { runs.insert(slot, in: slab) }
        return slot
    }
}

extension PhysicalMemory {
    /// Pages a large `page_create_va` lines up with its offsets: 1 GiB and 2 MiB.
    static let largeRunAlignments: [UInt64] = [1 << 18, 1 << 9]

    /// `page_create_va` for `pageCount` pages named `(vnode, offset + i × 4096)`,
    /// returned held `SE_EXCL` as runs of consecutive frames (in offset order).
    ///
    /// The same contract as ``pageCreate(vnode:offset:pageCount:flags:)``, but
    /// its cost is in runs, not pages: a request of 2 MiB or more takes whole
    /// free ranges, preferring frames whose number is congruent to the
    /// offset's modulo 1 GiB (or 2 MiB), so that a kernel VA named by its
    /// offset can be mapped with large pages; smaller requests take frames
    /// one by one exactly as the per-page path does. Each run is one record.
    public func pageCreateRuns(vnode: Vnode, offset: UInt64, pageCount: UInt64,
                               flags: PageCreateFlags = .exclusive) throws(PhysicalMemoryError) -> [FrameRange] {
        try locked { (t) throws(PhysicalMemoryError) -> [FrameRange] in
            guard pageCount > 0 else { throw .zeroPageCount }
            guard offset & (Self.pageSize - 1) == 0 else { throw .offsetNotPageAligned(offset: offset) }
            // The product first: a count of 2^52 pages wraps to 0 bytes.
            let (bytes, o1) = pageCount.multipliedReportingOverflow(by: Self.pageSize)
            guard !o1, !offset.addingReportingOverflow(bytes - 1).overflow else {
                throw .offsetOverflow(offset: offset, pageCount: pageCount)
            }
            try t.checkNamable(vnode)
            // Bound the request before any work proportional to it.
            guard pageCount <= t.available else {
                throw .outOfMemory(requested: pageCount, available: t.available)
            }
            if let hit = t.firstNamed(vnode.id, from: offset, pageCount: pageCount) {
                throw .identityExists(vnode: vnode, offset: hit.offset, pfn: t.pfn(in: hit.slot, offset: hit.offset))
            }
            var recordFlags: _PageRecord.Flags = [.live, .exclusive]
            if flags.contains(.noRelocate) { recordFlags.insert(.noRelocate) }

            if flags.contains(.physicallyContiguous) {
                let alignment = UInt64(1) << (63 - UInt64(pageCount.leadingZeroBitCount))
                guard let first = t.free.takeContiguous(pageCount, alignment: alignment) else {
                    throw .noContiguousRun(pageCount: pageCount, alignment: alignment)
                }
                guard t.makeRecord(pfn: first, count: pageCount, vnode: vnode.id, offset: offset,
                                   flags: recordFlags) != nil else {
                    t.free.putRange(FrameRange(lower: first, upper: first + pageCount))
                    throw .outOfMemory(requested: pageCount, available: 0)
                }
                return [FrameRange(lower: first, upper: first + pageCount)]
            }

            var made: [FrameRange] = []
            var last: UInt32 = 0
            func undo(_ t: inout _PageFrameTable) {
                for r in made { t.releaseFrame(t.recordSlot(containing: r.lower)) }
            }
            var done: UInt64 = 0
            let alignment = Self.largeRunAlignments.first { pageCount >= $0 }
            while done < pageCount {
                let name = offset + done << Self.pageShift
                var slot: UInt32 = 0
                if let alignment, t.free.count > 0,
                   let run = t.free.takeRun(pageCount - done, alignment: alignment, phase: name >> Self.pageShift) {
                    guard let s = t.makeRecord(pfn: run.lower, count: run.count, vnode: vnode.id, offset: name,
                                               flags: recordFlags) else {
                        t.free.putRange(run)
                        undo(&t)
                        throw .outOfMemory(requested: pageCount, available: done)
                    }
                    slot = s
                } else {
                    guard let s = t.takeFrame() else {
                        undo(&t)
                        throw .outOfMemory(requested: pageCount, available: done)
                    }
                    t.slab[s].flags = recordFlags
                    t.hashIn(s, vnode: vnode.id, offset: name)
                    slot = s
                }
                let count = t.slab[slot].count
                let pfn = t.slab[slot].pfn
                if last != 0, t.continues(last, slot) {
                    t.absorb(last, slot)
                    made[made.count - 1].upper += count
                } else {
                    made.append(FrameRange(lower: pfn, upper: pfn + count))
                    last = slot
                }
                done += count
            }
            return made
        }
    }

    /// `page_downgrade` of every page of `frames` (all held `SE_EXCL`).
    /// All or nothing, in O(records).
    public func pageDowngrade(_ frames: FrameRange) throws(PhysicalMemoryError) {
        try locked { (t) throws(PhysicalMemoryError) in
            try t.onRun(frames, check: { (r, pfn) throws(PhysicalMemoryError) in
                guard r.flags.contains(.exclusive) else { throw .notExclusivelyLocked(pfn: pfn, lock: r.lockState) }
            }, apply: { r in
                r.flags.remove(.exclusive)
                r.shareCount = 1
            })
        }
    }

    /// `page_unlock` of every page of `frames`: each drops its exclusive hold
    /// or one shared hold. All or nothing.
    public func pageUnlock(_ frames: FrameRange) throws(PhysicalMemoryError) {
        try locked { (t) throws(PhysicalMemoryError) in
            try t.onRun(frames, check: { (r, pfn) throws(PhysicalMemoryError) in
                guard r.flags.contains(.exclusive) || r.shareCount > 0 else { throw .notLocked(pfn: pfn) }
            }, apply: { r in
                if r.flags.contains(.exclusive) { r.flags.remove(.exclusive) } else { r.shareCount -= 1 }
            })
        }
    }

    /// `page_tryupgrade` of every page of `frames`: true when each page was
    /// held shared once (or already exclusive) and is now `SE_EXCL`; false,
    /// changing nothing, when any page has other shared holders.
    public func pageTryUpgrade(_ frames: FrameRange) throws(PhysicalMemoryError) -> Bool {
        try locked { (t) throws(PhysicalMemoryError) -> Bool in
            var contended = false
            for r in try t.records(in: frames) where t.slab[r.slot].shareCount > 1 { contended = true }
            if contended { return false }
            try t.onRun(frames, check: { (r, pfn) throws(PhysicalMemoryError) in
                guard r.shareCount == 1 || r.flags.contains(.exclusive) else { throw .notLocked(pfn: pfn) }
            }, apply: { r in
                r.shareCount = 0
                r.flags.insert(.exclusive)
            })
            return true
        }
    }

    /// Sets `p_lckcnt` of every page of `frames`. All or nothing.
    public func setLockCount(_ frames: FrameRange, to count: UInt16) throws(PhysicalMemoryError) {
        try locked { (t) throws(PhysicalMemoryError) in
            try t.onRun(frames, check: { (_, _) throws(PhysicalMemoryError) in }, apply: { $0.lockCount = count })
        }
    }

    /// `page_destroy` of every page of `frames`: each must be held `SE_EXCL`
    /// with `p_lckcnt` and `p_cowcnt` zero. All or nothing.
    public func pageDestroy(_ frames: FrameRange) throws(PhysicalMemoryError) {
        try locked { (t) throws(PhysicalMemoryError) in
            guard !frames.isEmpty else { throw .zeroPageCount }
            for r in try t.records(in: frames) {
                let rec = t.slab[r.slot]
                guard !rec.flags.contains(.boot) else { throw .pageIsBootPage(pfn: r.lower) }
                guard rec.flags.contains(.exclusive) else { throw .notExclusivelyLocked(pfn: r.lower, lock: rec.lockState) }
                guard rec.lockCount == 0, rec.cowCount == 0 else {
                    throw .pageLocked(pfn: r.lower, lockCount: rec.lockCount, cowCount: rec.cowCount)
                }
            }
            try t.cut(frames)
            var pfn = frames.lower
            while pfn < frames.upper {
                let slot = t.recordSlot(containing: pfn)
                pfn = t.slab[slot].pfn + t.slab[slot].count
                t.releaseFrame(slot)
            }
        }
    }

    /// The runs holding the pages named on `vnode` in `[offset, offset +
    /// pageCount × 4096)`, clipped to it, ascending by offset; names with no
    /// page are skipped. Costs min(pages, records), never more.
    public func pageRuns(of vnode: Vnode, offset: UInt64, pageCount: UInt64) throws(PhysicalMemoryError) -> [PageRun] {
        try locked { (t) throws(PhysicalMemoryError) -> [PageRun] in
            guard offset & (Self.pageSize - 1) == 0 else { throw .offsetNotPageAligned(offset: offset) }
            guard vnode.id != 0, t.vnodes.isLive(vnode.id) else { throw .unknownVnode(vnode) }
            guard pageCount > 0 else { return [] }
            let (bytes, o1) = pageCount.multipliedReportingOverflow(by: Self.pageSize)
            guard !o1, !offset.addingReportingOverflow(bytes - 1).overflow else {
                throw .offsetOverflow(offset: offset, pageCount: pageCount)
            }
            let last = offset + (bytes - 1)
            var out: [PageRun] = []
            func clipped(_ slot: UInt32) -> PageRun {
                let r = t.slab[slot]
                let lo = max(r.offset, offset)
                let hi = min(r.offset &+ (r.count - 1) << Self.pageShift, last & ~(Self.pageSize - 1))
                let pfn = r.pfn + (lo - r.offset) >> Self.pageShift
                return t.run(slot, lower: pfn, count: (hi - lo) >> Self.pageShift + 1)
            }
            if pageCount <= UInt64(t.slab.liveCount) {
                var i: UInt64 = 0
                while i < pageCount {
                    let off = offset + i << Self.pageShift
                    let slot = t.identitySlot(vnode.id, off)
                    if slot == 0 { i += 1; continue }
                    let run = clipped(slot)
                    out.append(run)
                    i += run.count
                }
                return out
            }
            t.forEachSlot { slot in
                let r = t.slab[slot]
                guard r.vnode == vnode.id, r.offset <= last, r.offset &+ (r.count - 1) << Self.pageShift >= offset else { return }
                out.append(clipped(slot))
            }
            return out.sorted { $0.first.offset < $1.first.offset }
        }
    }

    /// The runs holding the frames of `frames` (every frame must have a page),
    /// clipped to it, ascending.
    public func pageRuns(in frames: FrameRange) throws(PhysicalMemoryError) -> [PageRun] {
        try locked { (t) throws(PhysicalMemoryError) -> [PageRun] in
            guard !frames.isEmpty else { return [] }
            return try t.records(in: frames).map { t.run($0.slot, lower: $0.lower, count: $0.count) }
        }
    }

    /// Every record as a run, in no particular order: the pages of
    /// ``forEachPage(_:)`` without expanding runs into pages.
    public func forEachRun(_ body: (PageRun) -> Void) {
        let runs = locked { t in
            var out: [PageRun] = []
            out.reserveCapacity(t.slab.liveCount)
            t.forEachSlot { out.append(t.run($0)) }
            return out
        }
        runs.forEach(body)
    }

    /// `page_t` records in use: one per run of pages that share a state, so
    /// this grows with the runs, not with the pages.
    public var recordCount: Int { locked { $0.slab.liveCount } }
}
