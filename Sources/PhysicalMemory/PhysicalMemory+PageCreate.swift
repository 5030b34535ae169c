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
            let existing = t.identities.find(vnode.id, offset, in: t.slab)
            guard existing == 0 else {
                throw .identityExists(vnode: vnode, offset: offset, pfn: t.slab[existing].pfn)
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
    /// the count, and taken from the free list only.
    public func pageCreate(vnode: Vnode, offset: UInt64, pageCount: UInt64,
                           flags: PageCreateFlags = .exclusive) throws(PhysicalMemoryError) -> [PageFrameNumber] {
        try locked { (t) throws(PhysicalMemoryError) -> [PageFrameNumber] in
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
            for i in 0..<pageCount {
                let off = offset + i << Self.pageShift
                let existing = t.identities.find(vnode.id, off, in: t.slab)
                guard existing == 0 else {
                    throw .identityExists(vnode: vnode, offset: off, pfn: t.slab[existing].pfn)
                }
            }
            var pfns: [PageFrameNumber] = []
            pfns.reserveCapacity(Int(pageCount))
            if flags.contains(.physicallyContiguous) {
                let alignment = UInt64(1) << (63 - UInt64(pageCount.leadingZeroBitCount))
                guard let first = t.free.takeContiguous(pageCount, alignment: alignment) else {
                    throw .noContiguousRun(pageCount: pageCount, alignment: alignment)
                }
                for i in 0..<pageCount {
                    guard let slot = t.slab.allocate() else {
                        // Undo: the records made so far and the untouched frames.
                        for made in pfns { t.releaseFrame(t.frames.find(made, in: t.slab)) }
                        for rest in i..<pageCount { t.free.put(first + rest) }
                        throw .outOfMemory(requested: pageCount, available: i)
                    }
                    t.slab[slot].pfn = first + i
                    t.slab[slot].flags = .live
                    t.frames.insert(slot, in: t.slab)
                    t.slab[slot].flags.insert(.exclusive)
                    if flags.contains(.noRelocate) { t.slab[slot].flags.insert(.noRelocate) }
                    t.hashIn(slot, vnode: vnode.id, offset: offset + i << Self.pageShift)
                    pfns.append(first + i)
                }
                return pfns
            }
            guard t.available >= pageCount else {
                throw .outOfMemory(requested: pageCount, available: t.available)
            }
            for i in 0..<pageCount {
                guard let slot = t.takeFrame() else {
                    for made in pfns { t.releaseFrame(t.frames.find(made, in: t.slab)) }
                    throw .outOfMemory(requested: pageCount, available: i)
                }
                t.slab[slot].flags.insert(.exclusive)
                if flags.contains(.noRelocate) { t.slab[slot].flags.insert(.noRelocate) }
                t.hashIn(slot, vnode: vnode.id, offset: offset + i << Self.pageShift)
                pfns.append(t.slab[slot].pfn)
            }
            return pfns
        }
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
            guard t.frames.find(pfn, in: t.slab) == 0 else { throw .frameInUse(pfn: pfn) }
            let existing = t.identities.find(vnode.id, offset, in: t.slab)
            guard existing == 0 else {
                throw .identityExists(vnode: vnode, offset: offset, pfn: t.slab[existing].pfn)
            }
            guard let slot = t.slab.allocate() else { throw .outOfMemory(requested: 1, available: 0) }
            t.free.claim(pfn)
            t.slab[slot].pfn = pfn
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
            let slot = try t.slot(of: pfn)
            let r = t.slab[slot]
            guard !r.flags.contains(.boot) else { throw .pageIsBootPage(pfn: pfn) }
            guard r.flags.contains(.exclusive) else { throw .notExclusivelyLocked(pfn: pfn, lock: r.lockState) }
            guard r.lockCount == 0, r.cowCount == 0 else {
                throw .pageLocked(pfn: pfn, lockCount: r.lockCount, cowCount: r.cowCount)
            }
            t.releaseFrame(slot)
        }
    }

    /// `page_free`: the page keeps its identity and goes on the cache list,
    /// unlocked, from where ``pageLookup(vnode:offset:lock:)`` can reclaim it
    /// or a new page can take its frame. With `dontNeed` it is put where it is
    /// reused first; otherwise where it is reused last.
    public func pageFree(_ pfn: PageFrameNumber, dontNeed: Bool = false) throws(PhysicalMemoryError) {
        try locked { (t) throws(PhysicalMemoryError) in
            let slot = try t.slot(of: pfn)
            let r = t.slab[slot]
            guard !r.flags.contains(.boot) else { throw .pageIsBootPage(pfn: pfn) }
            guard r.flags.contains(.exclusive) else { throw .notExclusivelyLocked(pfn: pfn, lock: r.lockState) }
            guard r.lockCount == 0, r.cowCount == 0 else {
                throw .pageLocked(pfn: pfn, lockCount: r.lockCount, cowCount: r.cowCount)
            }
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
            let slot = t.identities.find(vnode.id, offset, in: t.slab)
            guard slot != 0 else { return nil }
            if t.slab[slot].flags.contains(.cached) { t.cacheRemove(slot) }
            try t.acquire(slot, lock)
            return t.slab[slot].pfn
        }
    }

    /// `page_find`: the frame named `(vnode, offset)` without locking it or
    /// reclaiming it, or nil.
    public func pageFind(vnode: Vnode, offset: UInt64) -> PageFrameNumber? {
        locked { t in
            let slot = t.identities.find(vnode.id, offset, in: t.slab)
            return slot == 0 ? nil : t.slab[slot].pfn
        }
    }
}
