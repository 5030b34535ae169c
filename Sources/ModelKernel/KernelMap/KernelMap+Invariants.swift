extension KernelMap {
    /// Checks every invariant and throws ``KernelMapError/invariantViolated(_:)``
    /// naming the first broken one:
    ///
    /// * entries are page aligned, non-empty, inside `[min, max)`, sorted and
    ///   disjoint;
    /// * every entry's record is an item of some slab, no two share one, and
    ///   no record is also on the free list; free plus used items equal the
    ///   slabs' capacity;
    /// * every slab is mapped by exactly one `MAP_NOFAULT` slab entry;
    /// * `MAP_REPLENISH` is clear whenever the map is unlocked.
    public func verify() throws(KernelMapError) {
        let wasHeld = mutex.isHeldByCurrentThread
        if !wasHeld { mutex.lock() }
        defer { if !wasHeld { mutex.unlock() } }
        func fail(_ s: String) -> KernelMapError { .invariantViolated(s) }
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

        if !wasHeld && mapFlags.contains(.replenish) { throw fail("MAP_REPLENISH set while the map is unlocked") }
        var previousEnd = min
        var records = Set<UInt64>()
        for e in entryList {
            guard e.start < e.end else { throw fail("entry \(e) is empty") }
            guard (e.start | e.end) & (pageSize - 1) == 0 else { throw fail("entry \(e) is not page aligned") }
            guard e.start >= previousEnd else { throw fail("entry \(e) overlaps or precedes the entry before it") }
            guard e.end <= max else { throw fail("entry \(e) ends above the map's max \(hex(max))") }
            previousEnd = e.end
            guard zone.slabBase(holding: e.record) != nil else { throw fail("entry \(e) has a record outside every slab") }
            guard records.insert(e.record).inserted else { throw fail("record \(hex(e.record)) is used by two entries") }
        }
        guard records.count == zone.inUse else {
            throw fail("zone counts \(zone.inUse) items in use, the map has \(records.count) entries")
        }
        var freeSet = Set<UInt64>()
        for item in zone.free {
            guard zone.slabBase(holding: item) != nil else { throw fail("free item \(hex(item)) is outside every slab") }
            guard freeSet.insert(item).inserted else { throw fail("free item \(hex(item)) is listed twice") }
            guard !records.contains(item) else { throw fail("item \(hex(item)) is both free and an entry's record") }
        }
        guard zone.free.count + zone.inUse == zone.capacity else {
            throw fail("free \(zone.free.count) + in use \(zone.inUse) != capacity \(zone.capacity)")
        }
        var slabEntries: [UInt64: KernelMapEntry] = [:]
        for e in entryList where e.kind != .allocation { slabEntries[e.start] = e }
        for slab in zone.slabs {
            guard let e = slabEntries[slab.base], e.end == slab.base + slabBytes, e.noFault,
                  e.kind == (slab.isBoot ? .bootSlab : .entrySlab) else {
                throw fail("slab at \(hex(slab.base)) is not mapped by a no-fault slab entry of its size")
            }
        }
        guard slabEntries.count == zone.slabs.count else {
            throw fail("\(slabEntries.count) slab entries for \(zone.slabs.count) slabs")
        }
    }
}
