// The map operations (vm_map_findspace, vm_map_insert, vm_map_delete) and the
// entry allocation path of D26851: ordinary items first, then the reserve
// with MAP_REPLENISH, and the slab allocator that refills the zone.

extension KernelMap {
    // MARK: Locked operations

    /// `vm_map_findspace(map, vm_map_min(map), size)`: the lowest address of
    /// a free range of `size` bytes. The caller holds the lock.
    public func findSpace(size: UInt64) throws(KernelMapError) -> UInt64 {
        try requireLock("findspace")
        try checkSize(size)
        return try _findSpace(size)
    }

    /// `vm_map_insert`: maps `[start, start + size)` as a new entry. The
    /// caller holds the lock. Taking the entry may use the reserve and set
    /// `MAP_REPLENISH`.
    public func insert(start: UInt64, size: UInt64) throws(KernelMapError) {
        try requireLock("insert")
        try checkRange(start, size)
        try _insert(start, size, kind: .allocation, noFault: false)
    }

    /// `vm_map_delete`: unmaps `[start, start + size)`, which must be covered
    /// by allocation entries without holes (the model refuses what FreeBSD
    /// would silently skip). Entries are trimmed at both ends; punching a
    /// hole in the middle of one entry splits it and creates one entry.
    /// Slab entries cannot be deleted: their items may be in use.
    public func delete(start: UInt64, size: UInt64) throws(KernelMapError) {
        try requireLock("delete")
        try checkRange(start, size)
        try _delete(start, start + size)
    }

    /// The entry containing `address`, if any (`vm_map_lookup_entry`).
    public func entry(containing address: UInt64) -> KernelMapEntry? {
        inspecting {
            let i = firstIndex(endingAfter: address)
            return i < entryList.count && entryList[i].start <= address ? entryList[i] : nil
        }
    }

    // MARK: One-call helpers

    /// `kva_alloc`: lock, find space, insert, unlock. Returns the address.
    public func allocate(size: UInt64) throws(KernelMapError) -> UInt64 {
        try checkSize(size)
        try lock()
        let address: UInt64
        do throws(KernelMapError) {
            address = try _findSpace(size)
            try _insert(address, size, kind: .allocation, noFault: false)
        } catch {
            try? unlock()
            throw error
        }
        try unlock()
        return address
    }

    /// `kva_free`: lock, delete, unlock.
    public func free(start: UInt64, size: UInt64) throws(KernelMapError) {
        try checkRange(start, size)
        try lock()
        do throws(KernelMapError) {
            try _delete(start, start + size)
        } catch {
            try? unlock()
            throw error
        }
        try unlock()
    }

    /// `uma_prealloc(kmapentzone, items)`: adds enough slabs for `items`
    /// more entries. Locks the map only if the caller does not hold it,
    /// as `kmapent_alloc` does.
    public func prealloc(items: Int) throws(KernelMapError) {
        guard items > 0, items <= 1 << 20 else {
            throw .invalidConfiguration(reason: "prealloc of \(items) items is outside [1, 2^20]")
        }
        let slabs = (items + zone.itemsPerSlab - 1) / zone.itemsPerSlab
        let mine = mutex.isHeldByCurrentThread
        if !mine { try lock() }
        var failure: KernelMapError?
        for _ in 0..<slabs {
            do throws(KernelMapError) { try allocateSlab() } catch { failure = error; break }
        }
        if !mine {
            do throws(KernelMapError) { try unlock() } catch { failure = failure ?? error }
        }
        if let failure { throw failure }
    }

    // MARK: Validation

    func requireLock(_ operation: String) throws(KernelMapError) {
        guard mutex.isHeldByCurrentThread else { throw .notLocked(operation: operation) }
    }

    func checkSize(_ size: UInt64) throws(KernelMapError) {
        guard size != 0 else { throw .zeroSize }
        guard size & (pageSize - 1) == 0 else { throw .unaligned(parameter: "size", value: size, pageSize: pageSize) }
    }

    func checkRange(_ start: UInt64, _ size: UInt64) throws(KernelMapError) {
        try checkSize(size)
        guard start & (pageSize - 1) == 0 else { throw .unaligned(parameter: "start", value: start, pageSize: pageSize) }
        let (end, o) = start.addingReportingOverflow(size)
        guard !o else { throw .overflow(start: start, size: size) }
        guard start >= min, end <= max else { throw .outOfRange(start: start, size: size, min: min, max: max) }
    }

    // MARK: Internals (lock held)

    /// Index of the first entry whose end lies above `address`.
    func firstIndex(endingAfter address: UInt64) -> Int {
        var lo = 0, hi = entryList.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if entryList[mid].end <= address { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    func _findSpace(_ size: UInt64) throws(KernelMapError) -> UInt64 {
        var cursor = min
        for e in entryList {
            if e.start >= cursor && e.start - cursor >= size { return cursor }
            cursor = Swift.max(cursor, e.end)
        }
        if max - cursor >= size { return cursor }
        throw .noSpace(size: size)
    }

    func _insert(_ start: UInt64, _ size: UInt64, kind: KernelMapEntry.Kind, noFault: Bool) throws(KernelMapError) {
        let end = start + size
        let i = firstIndex(endingAfter: start)
        if i < entryList.count && entryList[i].start < end {
            throw .overlap(start: start, size: size, entryStart: entryList[i].start, entryEnd: entryList[i].end)
        }
        let record = try createEntry()
        entryList.insert(KernelMapEntry(start: start, end: end, kind: kind, noFault: noFault, record: record), at: i)
    }

    func _delete(_ start: UInt64, _ end: UInt64) throws(KernelMapError) {
        // Check the whole range before changing anything.
        let first = firstIndex(endingAfter: start)
        var i = first
        var cursor = start
        while cursor < end {
            guard i < entryList.count, entryList[i].start <= cursor else {
                throw .notMapped(start: start, size: end - start, hole: cursor)
            }
            guard entryList[i].kind == .allocation else {
                throw .overlap(start: start, size: end - start, entryStart: entryList[i].start, entryEnd: entryList[i].end)
            }
            cursor = entryList[i].end
            i += 1
        }
        let last = i - 1
        let head = entryList[first], tail = entryList[last]
        if first == last && head.start < start && end < head.end {
            // The one operation that creates an entry: a hole in the middle.
            let record = try createEntry()
            entryList[first].end = start
            entryList.insert(KernelMapEntry(start: end, end: head.end, kind: .allocation, noFault: false,
                                            record: record), at: first + 1)
            return
        }
        var removeFrom = first, removeTo = last   // inclusive range of entries to drop
        if head.start < start {
            entryList[first].end = start
            removeFrom = first + 1
        }
        if tail.end > end {
            entryList[last].start = end
            removeTo = last - 1
        }
        if removeFrom <= removeTo {
            for k in removeFrom...removeTo { zone.release(entryList[k].record) }
            entryList.removeSubrange(removeFrom...removeTo)
        }
    }

    /// `vm_map_entry_create` for the kernel map: `M_NOWAIT | M_NOVM` first
    /// (never builds a slab), then `M_USE_RESERVE`, which sets `MAP_REPLENISH`.
    func createEntry() throws(KernelMapError) -> UInt64 {
        stats.lowestLevelBeforeTake = Swift.min(stats.lowestLevelBeforeTake, zone.reserveLevel)
        if let item = zone.allocate(useReserve: false) {
            stats.entriesCreated += 1
            return item
        }
        guard let item = zone.allocate(useReserve: true) else {
            stats.exhaustions += 1
            throw .entryZoneExhausted(reserve: zone.reserve)
        }
        stats.entriesCreated += 1
        stats.reserveTakes += 1
        stats.lowestReserveLevel = Swift.min(stats.lowestReserveLevel, zone.reserveLevel)
        if !replenishing {
            takesThisHold += 1
            stats.mostReserveTakesPerHold = Swift.max(stats.mostReserveTakesPerHold, takesThisHold)
        }
        mapFlags.insert(.replenish)
        return item
    }

    /// The refill at unlock: one slab, then `MAP_REPLENISH` is cleared (the
    /// slab's own entry may have set it again; the new slab covers that).
    func replenish() throws(KernelMapError) {
        try allocateSlab()
        stats.replenishes += 1
        mapFlags.remove(.replenish)
    }

    /// `kmapent_alloc`: a slab's VA straight from this map (findspace, then
    /// insert with `MAP_NOFAULT`), bypassing every other allocator. The lock
    /// is held.
    func allocateSlab() throws(KernelMapError) {
        replenishing = true
        defer { replenishing = false }
        let base = try _findSpace(slabBytes)
        try _insert(base, slabBytes, kind: .entrySlab, noFault: true)
        zone.addSlab(base: base, isBoot: false)
        stats.slabsAllocated += 1
    }
}
