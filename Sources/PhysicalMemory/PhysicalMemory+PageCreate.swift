extension PhysicalMemory {
    /// `page_create_va` for one page: a frame named `(vnode, offset)`,
    /// returned held `SE_EXCL`, with `p_lckcnt` 0.
    ///
    /// The frame comes from the free list, or failing that from the head of the
    /// cache list (whose old identity is dropped). This is the fast path: no
    /// allocation from the Swift heap once the tables have grown.
    @inline(__always)
    public func pageCreate(vnode: Vnode, offset: UInt64,
                           flags: PageCreateFlags = .exclusive) throws(PhysicalMemoryError) -> PageFrameNumber {
        try locked { (t) throws(PhysicalMemoryError) -> PageFrameNumber in
            guard offset & (Self.pageSize - 1) == 0 else { throw .offsetNotPageAligned(offset: offset) }
            try t.checkNamable(vnode)
            let existing = t.identitySlot(vnode.id, offset)
            guard existing == 0 else {
                throw .identityExists(vnode: vnode, offset: offset, pfn: t.pfn(in: existing, offset: offset))
            }
            guard let slot = t.takeFrame() else { throw .outOfMemory(requested: 1, available: 0) }
            t.slab[slot].flags.insert(.exclusive)
            if flags.contains(.noRelocate) { t.slab[slot].flags.insert(.noRelocate) }
            t.hashIn(slot, vnode: vnode.id, offset: offset)
            return t.slab[slot].pfn
        }
    }

    /// `page_create_va` for `pageCount` pages named `(vnode, offset + i × 4096)`.
    ///
    /// All or nothing: if any identity exists, or there are not enough free and
    /// cached pages, nothing is created. With ``PageCreateFlags/physicallyContiguous``
    /// the frames are consecutive, aligned to the largest power of two not above
    /// the count, and taken from the free list only. Returns one frame per
    /// page; ``pageCreateRuns(vnode:offset:pageCount:flags:)`` returns the
    /// runs instead, which is what a caller creating millions of pages wants.
    public func pageCreate(vnode: Vnode, offset: UInt64, pageCount: UInt64,
                           flags: PageCreateFlags = .exclusive) throws(PhysicalMemoryError) -> [PageFrameNumber] {
        let runs = try pageCreateRuns(vnode: vnode, offset: offset, pageCount: pageCount, flags: flags)
        var pfns: [PageFrameNumber] = []
        pfns.reserveCapacity(Int(pageCount))
        for r in runs { for pfn in r.lower ..< r.upper { pfns.append(pfn) } }
        return pfns
    }

    /// Creates the page `(vnode, offset)` at a specific free frame, held `SE_EXCL`.
    /// For frames whose number matters (device memory, firmware tables, tests).
    @discardableResult
    public func pageCreate(at pfn: PageFrameNumber, vnode: Vnode, offset: UInt64,
                           flags: PageCreateFlags = .exclusive) throws(PhysicalMemoryError) -> PageFrameNumber {
        try locked { (t) throws(PhysicalMemoryError) -> PageFrameNumber in
            guard offset & (Self.pageSize - 1) == 0 else { throw .offsetNotPageAligned(offset: offset) }
            try t.checkNamable(vnode)
            try t.checkPresent(pfn)
            guard !t.isExcluded(pfn) else { throw .pfnNotPresent(pfn: pfn) }
            guard t.recordSlot(containing: pfn) == 0 else { throw .frameInUse(pfn: pfn) }
            let existing = t.identitySlot(vnode.id, offset)
            guard existing == 0 else {
                throw .identityExists(vnode: vnode, offset: offset, pfn: t.pfn(in: existing, offset: offset))
            }
            guard let slot = t.slab.allocate() else { throw .outOfMemory(requested: 1, available: 0) }
            t.free.claim(pfn)
            t.slab[slot].pfn = pfn
            t.slab[slot].count = 1
            t.slab[slot].flags = [.live, .exclusive]
            if flags.contains(.noRelocate) { t.slab[slot].flags.insert(.noRelocate) }
            t.frames.insert(slot, in: t.slab)
            t.hashIn(slot, vnode: vnode.id, offset: offset)
            return pfn
        }
    }

    /// `page_destroy`: drops the page's identity and returns its frame to the
    /// free list. The caller must hold it `SE_EXCL`, and `p_lckcnt` and
    /// `p_cowcnt` must be zero.
    @inline(__always)
    public func pageDestroy(_ pfn: PageFrameNumber) throws(PhysicalMemoryError) {
        try locked { (t) throws(PhysicalMemoryError) in
            let r = t.slab[try t.slot(of: pfn)]
            guard !r.flags.contains(.boot) else { throw .pageIsBootPage(pfn: pfn) }
            guard r.flags.contains(.exclusive) else { throw .notExclusivelyLocked(pfn: pfn, lock: r.lockState) }
            guard r.lockCount == 0, r.cowCount == 0 else {
                throw .pageLocked(pfn: pfn, lockCount: r.lockCount, cowCount: r.cowCount)
            }
            t.releaseFrame(try t.isolate(pfn))
        }
    }

    /// `page_free`: the page keeps its identity and goes on the cache list,
    /// unlocked, from where ``pageLookup(vnode:offset:lock:)`` can reclaim it
    /// or a new page can take its frame. With `dontNeed` it is put where it is
    /// reused first; otherwise where it is reused last.
    public func pageFree(_ pfn: PageFrameNumber, dontNeed: Bool = false) throws(PhysicalMemoryError) {
        try locked { (t) throws(PhysicalMemoryError) in
            let r = t.slab[try t.slot(of: pfn)]
            guard !r.flags.contains(.boot) else { throw .pageIsBootPage(pfn: pfn) }
            guard r.flags.contains(.exclusive) else { throw .notExclusivelyLocked(pfn: pfn, lock: r.lockState) }
            guard r.lockCount == 0, r.cowCount == 0 else {
                throw .pageLocked(pfn: pfn, lockCount: r.lockCount, cowCount: r.cowCount)
            }
            let slot = try t.isolate(pfn)
            t.slab[slot].flags.remove(.exclusive)
            t.cacheAppend(slot, atHead: dontNeed)
        }
    }

    /// `page_lookup`: the page named `(vnode, offset)`, locked in `lock` mode,
    /// or nil if no page has that name. A cached page is reclaimed from the
    /// cache list. A page held in a conflicting mode throws (illumos would wait).
    public func pageLookup(vnode: Vnode, offset: UInt64,
                           lock: PageLockMode) throws(PhysicalMemoryError) -> PageFrameNumber? {
        try locked { (t) throws(PhysicalMemoryError) -> PageFrameNumber? in
            guard offset & (Self.pageSize - 1) == 0 else { throw .offsetNotPageAligned(offset: offset) }
            guard vnode.id != 0, t.vnodes.isLive(vnode.id) else { throw .unknownVnode(vnode) }
            let found = t.identitySlot(vnode.id, offset)
            guard found != 0 else { return nil }
            let pfn = t.pfn(in: found, offset: offset)
            if t.slab[found].flags.contains(.cached) {
                // A cached page is a record of its own; reclaiming it is a
                // change even when the lock is then refused, as in illumos.
                t.cacheRemove(found)
                try t.acquire(found, lock)
                return pfn
            }
            return try t.onPage(pfn) { (t, slot) throws(PhysicalMemoryError) -> PageFrameNumber in
                try t.acquire(slot, lock)
                return pfn
            }
        }
    }

    /// `page_find`: the frame named `(vnode, offset)` without locking it or
    /// reclaiming it, or nil.
    public func pageFind(vnode: Vnode, offset: UInt64) -> PageFrameNumber? {
        locked { t in
            let slot = t.identitySlot(vnode.id, offset)
            return slot == 0 ? nil : t.pfn(in: slot, offset: offset)
        }
    }
}
