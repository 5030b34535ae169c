/// The state behind a ``PhysicalMemory``: the record slab, the two indices
/// and the run index, the free list, the cache list and the vnode table.
///
/// Kept in one struct reached through a pointer owned by the class, so that
/// the hot paths touch plain memory (no dynamic exclusivity checks, no
/// reference counting); the class's mutex serialises every use.
struct _PageFrameTable {
    // Allocated last in `init`, once nothing can throw: these hold raw
    // memory that only `deallocate()` frees, so a throwing init that had
    // made them leaked it (found by the address sanitizer's leak check).
    var slab: _RecordSlab
    var frames: _FrameIndex
    var identities: _IdentityHash
    /// Records of more than one page, for lookups inside a run.
    var runs = _RunIndex()
    var free: _FreeFrameSet
    var vnodes = _VnodeTable()
    /// Cache list: head is reclaimed first.
    var cacheHead: UInt32 = 0
    var cacheTail: UInt32 = 0
    var cacheCount: UInt64 = 0
    var bootCount: UInt64 = 0
    /// The memory list (`phys_install`), ascending.
    let present: [FrameRange]
    /// Frames excluded by `physmem`, named on `unused_pages_vp`, ascending.
    let excluded: [FrameRange]
    /// One past the highest frame.
    let frameLimit: PageFrameNumber
    let totalPages: UInt64
    let physmem: UInt64
    let backing: _HostBacking?

    init(present: [FrameRange], physmem: UInt64?, backed: Bool) throws(PhysicalMemoryError) {
        var total: UInt64 = 0
        var previousUpper: UInt64 = 0
        for (i, r) in present.enumerated() {
            guard r.lower < r.upper, r.upper <= PhysicalMemory.maximumFrameNumber,
                  i == 0 || r.lower >= previousUpper else {
                throw .invalidMemoryRange(start: r.lower, end: r.upper)
            }
            previousUpper = r.upper
            total += r.count
        }
        guard total > 0 else { throw .emptyMemory }
        let physmem = physmem ?? total
        guard physmem <= total else { throw .physmemExceedsTotal(physmem: physmem, totalPages: total) }
        guard physmem > 0 else { throw .emptyMemory }

        // Exclude the highest (total - physmem) frames, as a boot-time limit would.
        var toExclude = total - physmem
        var excluded: [FrameRange] = []
        var available: [FrameRange] = []
        for r in present.reversed() {
            if toExclude >= r.count {
                excluded.append(r)
                toExclude -= r.count
            } else if toExclude > 0 {
                excluded.append(FrameRange(lower: r.upper - toExclude, upper: r.upper))
                available.append(FrameRange(lower: r.lower, upper: r.upper - toExclude))
                toExclude = 0
            } else {
                available.append(r)
            }
        }
        self.present = present
        self.excluded = excluded.reversed()
        self.frameLimit = previousUpper
        self.totalPages = total
        self.physmem = physmem
        self.free = _FreeFrameSet(ascending: available.reversed())
        self.backing = backed ? try _HostBacking(frames: previousUpper) : nil
        slab = _RecordSlab()
        frames = _FrameIndex()
        identities = _IdentityHash()
    }

    func deallocate() {
        slab.deallocate()
        frames.deallocate()
        identities.deallocate()
        // The backing's mapping goes when the table is deinitialised.
    }

    // MARK: Frame numbers

    static func search(_ ranges: [FrameRange], _ pfn: PageFrameNumber) -> Bool {
        var lo = 0, hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].upper <= pfn { lo = mid + 1 } else { hi = mid }
        }
        return lo < ranges.count && ranges[lo].contains(pfn)
    }

    func checkPresent(_ pfn: PageFrameNumber) throws(PhysicalMemoryError) {
        guard pfn < frameLimit else { throw .pfnOutOfRange(pfn: pfn, limit: frameLimit) }
        guard present.count == 1 || Self.search(present, pfn) else { throw .pfnNotPresent(pfn: pfn) }
    }

    func isExcluded(_ pfn: PageFrameNumber) -> Bool {
        !excluded.isEmpty && Self.search(excluded, pfn)
    }

    /// The record whose frames include `pfn`, or 0: the hash finds a record
    /// that starts there, the run index one that starts below.
    @inline(__always)
    func recordSlot(containing pfn: PageFrameNumber) -> UInt32 {
        let slot = frames.find(pfn, in: slab)
        if slot != 0 || runs.isEmpty { return slot }
        return runs.find(pfn: pfn, in: slab)
    }

    /// The record naming `(vnode, offset)` (as its first page or inside its run), or 0.
    @inline(__always)
    func identitySlot(_ vnode: UInt32, _ offset: UInt64) -> UInt32 {
        let slot = identities.find(vnode, offset, in: slab)
        if slot != 0 || runs.isEmpty || offset & (PhysicalMemory.pageSize - 1) != 0 { return slot }
        return runs.find(vnode: vnode, offset: offset, in: slab)
    }

    /// The frame of the page named `(vnode, offset)` in the record `slot`.
    @inline(__always)
    func pfn(in slot: UInt32, offset: UInt64) -> PageFrameNumber {
        slab[slot].pfn + (offset &- slab[slot].offset) >> PhysicalMemory.pageShift
    }

    /// The record slot of an existing page, or a typed reason why there is none.
    @inline(__always)
    func slot(of pfn: PageFrameNumber) throws(PhysicalMemoryError) -> UInt32 {
        let slot = recordSlot(containing: pfn)
        if slot != 0 { return slot }
        try checkPresent(pfn)
        if isExcluded(pfn) { throw .pfnNotPresent(pfn: pfn) }
        throw .pageNotFound(pfn: pfn)
    }

    func checkNamable(_ vnode: Vnode) throws(PhysicalMemoryError) {
        guard vnode.id != 0, vnodes.isLive(vnode.id) else { throw .unknownVnode(vnode) }
        guard vnode != .unusedPages else { throw .reservedVnode(vnode) }
    }

    // MARK: Cache list

    mutating func cacheAppend(_ slot: UInt32, atHead: Bool) {
        slab[slot].flags.insert(.cached)
        if cacheHead == 0 {
            slab[slot].listPrev = 0
            slab[slot].listNext = 0
            cacheHead = slot
            cacheTail = slot
        } else if atHead {
            slab[slot].listPrev = 0
            slab[slot].listNext = cacheHead
            slab[cacheHead].listPrev = slot
            cacheHead = slot
        } else {
            slab[slot].listNext = 0
            slab[slot].listPrev = cacheTail
            slab[cacheTail].listNext = slot
            cacheTail = slot
        }
        cacheCount += 1
    }

    mutating func cacheRemove(_ slot: UInt32) {
        let prev = slab[slot].listPrev, next = slab[slot].listNext
        if prev != 0 { slab[prev].listNext = next } else { cacheHead = next }
        if next != 0 { slab[next].listPrev = prev } else { cacheTail = prev }
        slab[slot].listPrev = 0
        slab[slot].listNext = 0
        slab[slot].flags.remove(.cached)
        cacheCount -= 1
    }

    // MARK: Identity

    @inline(__always)
    mutating func hashIn(_ slot: UInt32, vnode: UInt32, offset: UInt64) {
        slab[slot].vnode = vnode
        slab[slot].offset = offset
        identities.insert(slot, in: slab)
        vnodes.addPages(vnode, slab[slot].count)
    }

    /// Drops the record's name. A run must already be out of the run index.
    @inline(__always)
    mutating func hashOut(_ slot: UInt32) {
        let v = slab[slot].vnode
        guard v != 0 else { return }
        identities.remove(slot, in: slab)
        vnodes.removePages(v, slab[slot].count)
        slab[slot].vnode = 0
        slab[slot].offset = 0
    }

    // MARK: Frames in and out

    /// A record for a new page: from the free list, else by reclaiming the
    /// oldest cache-list page (its identity is dropped). The record is live,
    /// unnamed and unlocked.
    @inline(__always)
    mutating func takeFrame() -> UInt32? {
        if let pfn = free.take() {
            guard let slot = slab.allocate() else {
                free.put(pfn)
                return nil
            }
            slab[slot].pfn = pfn
            slab[slot].count = 1
            slab[slot].flags = .live
            frames.insert(slot, in: slab)
            return slot
        }
        guard cacheHead != 0 else { return nil }
        let slot = cacheHead
        cacheRemove(slot)
        hashOut(slot)
        slab[slot].flags = .live
        backing?.discard(slab[slot].pfn)
        return slot
    }

    /// Sends a record's frames back to the free list and retires the record.
    @inline(__always)
    mutating func releaseFrame(_ slot: UInt32) {
        let pfn = slab[slot].pfn
        let count = slab[slot].count
        if count > 1 { runs.remove(slot, in: slab) }
        hashOut(slot)
        frames.remove(slot, in: slab)
        slab.release(slot)
        backing?.discard(pfn, count: count)
        if count == 1 { free.put(pfn) } else { free.putRange(FrameRange(lower: pfn, upper: pfn + count)) }
        if free.recycled.count > 65_536 && free.recycled.count > 2 * slab.liveCount {
            free.compact()
        }
    }

    var available: UInt64 { free.count + cacheCount }

    // MARK: Snapshots

    /// The `page_t` of frame `pfn` (default: the first) of the record in `slot`.
    func page(_ slot: UInt32, pfn: PageFrameNumber? = nil) -> Page {
        let r = slab[slot]
        let pfn = pfn ?? r.pfn
        let state: PageState = r.flags.contains(.boot) ? .boot : r.flags.contains(.cached) ? .cached : .inUse
        let offset = r.vnode == 0 ? r.offset : r.offset &+ (pfn &- r.pfn) << PhysicalMemory.pageShift
        return Page(pfn: pfn, vnode: r.vnode == 0 ? nil : Vnode(id: r.vnode), offset: offset,
                    state: state, lock: r.lockState, lockCount: r.lockCount, cowCount: r.cowCount,
                    noRelocate: r.flags.contains(.noRelocate))
    }

    func forEachSlot(_ body: (UInt32) -> Void) {
        var slot: UInt32 = 1
        while slot < slab.highWater {
            if slab[slot].flags.contains(.live) { body(slot) }
            slot += 1
        }
    }
}
