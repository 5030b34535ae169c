extension _PageFrameTable {
    /// Takes `SE_SHARED` or `SE_EXCL` on a page, or throws if illumos would wait.
    mutating func acquire(_ slot: UInt32, _ mode: PageLockMode) throws(PhysicalMemoryError) {
        let r = slab[slot]
        switch mode {
        case .exclusive:
            guard !r.flags.contains(.exclusive), r.shareCount == 0 else {
                throw .lockConflict(pfn: r.pfn, held: r.lockState, requested: mode)
            }
            slab[slot].flags.insert(.exclusive)
        case .shared:
            guard !r.flags.contains(.exclusive) else {
                throw .lockConflict(pfn: r.pfn, held: r.lockState, requested: mode)
            }
            guard r.shareCount < UInt16.max else { throw .lockCountOverflow(pfn: r.pfn) }
            slab[slot].shareCount += 1
        }
    }

    /// The slot of an in-use page (not cached), given a record of its own
    /// (a run is split around it; ``settle(_:)`` merges it back).
    mutating func inUseSlot(_ pfn: PageFrameNumber) throws(PhysicalMemoryError) -> UInt32 {
        let slot = try self.slot(of: pfn)
        if slab[slot].flags.contains(.cached) { throw .pageIsCached(pfn: pfn) }
        return try isolate(pfn)
    }

    /// Runs `body` on the isolated in-use page at `pfn`, then merges its
    /// record with its neighbours again where their states now agree —
    /// also when `body` refuses, so a refused call leaves the records as
    /// they were.
    @inline(__always)
    mutating func onPage<R>(_ pfn: PageFrameNumber,
                            _ body: (inout _PageFrameTable, UInt32) throws(PhysicalMemoryError) -> R) throws(PhysicalMemoryError) -> R {
        let slot = try inUseSlot(pfn)
        do {
            let result = try body(&self, slot)
            coalesce(slot)
            return result
        } catch {
            coalesce(slot)
            throw error
        }
    }
}

extension PhysicalMemory {
    /// `page_trylock`: takes the page lock if it is available now.
    public func pageTryLock(_ pfn: PageFrameNumber, _ mode: PageLockMode) throws(PhysicalMemoryError) -> Bool {
        try locked { (t) throws(PhysicalMemoryError) -> Bool in
            try t.onPage(pfn) { (t, slot) throws(PhysicalMemoryError) -> Bool in
                do throws(PhysicalMemoryError) {
                    try t.acquire(slot, mode)
                    return true
                } catch {
                    if case .lockConflict = error { return false }
                    throw error
                }
            }
        }
    }

    /// `page_unlock`: drops the exclusive hold, or one shared hold.
    public func pageUnlock(_ pfn: PageFrameNumber) throws(PhysicalMemoryError) {
        try locked { (t) throws(PhysicalMemoryError) in
            try t.onPage(pfn) { (t, slot) throws(PhysicalMemoryError) in
                if t.slab[slot].flags.contains(.exclusive) {
                    t.slab[slot].flags.remove(.exclusive)
                } else if t.slab[slot].shareCount > 0 {
                    t.slab[slot].shareCount -= 1
                } else {
                    throw .notLocked(pfn: pfn)
                }
            }
        }
    }

    /// `page_downgrade`: `SE_EXCL` becomes one `SE_SHARED` hold (segkmem does
    /// this on x86 after loading a kernel page).
    public func pageDowngrade(_ pfn: PageFrameNumber) throws(PhysicalMemoryError) {
        try locked { (t) throws(PhysicalMemoryError) in
            try t.onPage(pfn) { (t, slot) throws(PhysicalMemoryError) in
                guard t.slab[slot].flags.contains(.exclusive) else {
                    throw .notExclusivelyLocked(pfn: pfn, lock: t.slab[slot].lockState)
                }
                t.slab[slot].flags.remove(.exclusive)
                t.slab[slot].shareCount = 1
            }
        }
    }

    /// `page_tryupgrade`: the sole shared holder becomes the exclusive holder.
    /// False when others share the page; throws when the caller holds no
    /// shared lock.
    public func pageTryUpgrade(_ pfn: PageFrameNumber) throws(PhysicalMemoryError) -> Bool {
        try locked { (t) throws(PhysicalMemoryError) -> Bool in
            try t.onPage(pfn) { (t, slot) throws(PhysicalMemoryError) -> Bool in
                let r = t.slab[slot]
                guard r.shareCount > 0 else {
                    if r.flags.contains(.exclusive) { return true }
                    throw .notLocked(pfn: pfn)
                }
                guard r.shareCount == 1 else { return false }
                t.slab[slot].shareCount = 0
                t.slab[slot].flags.insert(.exclusive)
                return true
            }
        }
    }

    /// Sets `p_lckcnt` (segkmem sets it to 1 on each kernel page it loads,
    /// and to 0 before destroying it).
    public func setLockCount(_ pfn: PageFrameNumber, to count: UInt16) throws(PhysicalMemoryError) {
        try locked { (t) throws(PhysicalMemoryError) in
            try t.onPage(pfn) { (t, slot) throws(PhysicalMemoryError) in t.slab[slot].lockCount = count }
        }
    }

    /// `page_pp_lock`: one more `p_lckcnt` (mlock). Returns the new count.
    @discardableResult
    public func addLockCount(_ pfn: PageFrameNumber) throws(PhysicalMemoryError) -> UInt16 {
        try locked { (t) throws(PhysicalMemoryError) -> UInt16 in
            try t.onPage(pfn) { (t, slot) throws(PhysicalMemoryError) -> UInt16 in
                guard t.slab[slot].lockCount < UInt16.max else { throw .lockCountOverflow(pfn: pfn) }
                t.slab[slot].lockCount += 1
                return t.slab[slot].lockCount
            }
        }
    }

    /// `page_pp_unlock`: one less `p_lckcnt`. Returns the new count.
    @discardableResult
    public func removeLockCount(_ pfn: PageFrameNumber) throws(PhysicalMemoryError) -> UInt16 {
        try locked { (t) throws(PhysicalMemoryError) -> UInt16 in
            try t.onPage(pfn) { (t, slot) throws(PhysicalMemoryError) -> UInt16 in
                guard t.slab[slot].lockCount > 0 else { throw .lockCountUnderflow(pfn: pfn) }
                t.slab[slot].lockCount -= 1
                return t.slab[slot].lockCount
            }
        }
    }

    /// Adjusts `p_cowcnt` by `delta` (copy-on-write locks of private mappings).
    @discardableResult
    public func adjustCowCount(_ pfn: PageFrameNumber, by delta: Int) throws(PhysicalMemoryError) -> UInt16 {
        try locked { (t) throws(PhysicalMemoryError) -> UInt16 in
            try t.onPage(pfn) { (t, slot) throws(PhysicalMemoryError) -> UInt16 in
                let new = Int(t.slab[slot].cowCount) + delta
                guard new >= 0 else { throw .lockCountUnderflow(pfn: pfn) }
                guard new <= Int(UInt16.max) else { throw .lockCountOverflow(pfn: pfn) }
                t.slab[slot].cowCount = UInt16(new)
                return UInt16(new)
            }
        }
    }
}
