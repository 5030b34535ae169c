extension PhysicalMemory {
    /// Checks every invariant of the tables and throws
    /// ``PhysicalMemoryError/invariantViolated(_:)`` naming the first broken one.
    /// Linear in the pages with records (and in the recycled free frames).
    public func verify() throws(PhysicalMemoryError) {
        try locked { (t) throws(PhysicalMemoryError) in try t.verify() }
    }
}

extension _PageFrameTable {
    func verify() throws(PhysicalMemoryError) {
        func fail(_ s: String) -> PhysicalMemoryError { .invariantViolated(s) }
        var live = 0, boot: UInt64 = 0, cached: UInt64 = 0, named = 0
        var perVnode: [UInt32: UInt64] = [:]
        var slot: UInt32 = 1
        while slot < slab.highWater {
            let r = slab[slot]
            defer { slot += 1 }
            guard r.flags.contains(.live) else { continue }
            live += 1
            let hex = "0x" + String(r.pfn, radix: 16)
            guard r.pfn < frameLimit, present.count == 1 || Self.search(present, r.pfn) else {
                throw fail("record pfn \(hex) is not installed memory")
            }
            guard !isExcluded(r.pfn) else { throw fail("record pfn \(hex) is excluded by physmem") }
            guard frames.find(r.pfn, in: slab) == slot else { throw fail("pfn \(hex) not found in frame index at slot \(slot)") }
            if r.flags.contains(.boot) {
                boot += 1
                guard r.vnode == 0 else { throw fail("boot page \(hex) has a vnode") }
            }
            if r.flags.contains(.cached) {
                cached += 1
                guard r.vnode != 0 else { throw fail("cached page \(hex) has no identity") }
                guard r.lockState == .unlocked else { throw fail("cached page \(hex) is \(r.lockState)") }
            }
            if r.flags.contains(.exclusive) && r.shareCount != 0 {
                throw fail("page \(hex) is both exclusive and shared")
            }
            if r.vnode != 0 {
                named += 1
                perVnode[r.vnode, default: 0] += 1
                guard vnodes.isLive(r.vnode) else { throw fail("page \(hex) names dead vnode \(r.vnode)") }
                guard identities.find(r.vnode, r.offset, in: slab) == slot else {
                    throw fail("page \(hex) identity (\(r.vnode), 0x\(String(r.offset, radix: 16))) not hashed to it")
                }
            }
        }
        guard live == slab.liveCount else { throw fail("slab counts \(slab.liveCount) live, walk found \(live)") }
        guard frames.count == live else { throw fail("frame index holds \(frames.count), \(live) records") }
        guard identities.count == named else { throw fail("identity hash holds \(identities.count), \(named) named") }
        guard boot == bootCount else { throw fail("boot count \(bootCount), walk found \(boot)") }
        guard cached == cacheCount else { throw fail("cache count \(cacheCount), walk found \(cached)") }
        for id in vnodes.liveIDs where id != Vnode.unusedPages.id {
            guard vnodes.pageCount(id) == (perVnode[id] ?? 0) else {
                throw fail("vnode \(id) counts \(vnodes.pageCount(id)) pages, walk found \(perVnode[id] ?? 0)")
            }
        }
        // The cache list, forwards and backwards.
        var n: UInt64 = 0, prev: UInt32 = 0, cursor = cacheHead
        while cursor != 0 {
            guard slab[cursor].flags.contains(.cached) else { throw fail("cache list slot \(cursor) not flagged cached") }
            guard slab[cursor].listPrev == prev else { throw fail("cache list back link broken at slot \(cursor)") }
            n += 1
            guard n <= cacheCount else { throw fail("cache list longer than its count (cycle?)") }
            prev = cursor
            cursor = slab[cursor].listNext
        }
        guard prev == cacheTail, n == cacheCount else { throw fail("cache list tail or length wrong") }
        // Conservation of frames.
        let excludedCount = excluded.reduce(0) { $0 + $1.count }
        guard free.count + UInt64(live) + excludedCount == totalPages else {
            throw fail("free \(free.count) + records \(live) + excluded \(excludedCount) != total_pages \(totalPages)")
        }
        // Free extents: ordered, disjoint, non-adjacent, installed, record-free.
        var previousLower = UInt64.max
        var extentFrames: UInt64 = 0
        for e in free.extents {
            guard !e.isEmpty, e.upper < previousLower else { throw fail("free extent \(e) out of order or adjacent") }
            previousLower = e.lower
            extentFrames += e.count
        }
        guard extentFrames + UInt64(free.recycled.count) - UInt64(free.tombstoneCount) == free.count else {
            throw fail("free list parts do not add up to its count \(free.count)")
        }
        for pfn in free.recycled where free.tombstones[pfn] == nil {
            guard frames.find(pfn, in: slab) == 0 else { throw fail("recycled pfn 0x\(String(pfn, radix: 16)) has a record") }
        }
    }
}
