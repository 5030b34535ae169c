extension PhysicalMemory {
    /// Checks every invariant of the tables and throws
    /// ``PhysicalMemoryError/invariantViolated(_:)`` naming the first broken one.
    /// Linear in the pages with records (and in the recycled free frames).
    public func verify() throws(PhysicalMemoryError) {
        try locked { (t) throws(PhysicalMemoryError) in try t.verify() }
    }
}

extension _PageFrameTable {
    /// Whether every frame of `[pfn, pfn + count)` is installed memory in
    /// one memory-list range and none is excluded by `physmem`.
    func isUsable(_ pfn: PageFrameNumber, _ count: UInt64) -> Bool {
        let (end, o) = pfn.addingReportingOverflow(count)
        guard !o, count > 0, end <= frameLimit else { return false }
        if present.count > 1 {
            guard let r = present.first(where: { $0.contains(pfn) }), end <= r.upper else { return false }
        }
        return !excluded.contains { $0.lower < end && pfn < $0.upper }
    }

    func verify() throws(PhysicalMemoryError) {
        func fail(_ s: String) -> PhysicalMemoryError { .invariantViolated(s) }
        var live = 0, boot: UInt64 = 0, cached: UInt64 = 0, named = 0, multi = 0
        var pages: UInt64 = 0
        var perVnode: [UInt32: UInt64] = [:]
        var byFrame: [(lower: UInt64, upper: UInt64)] = []
        var byName: [(vnode: UInt32, lower: UInt64, last: UInt64)] = []
        byFrame.reserveCapacity(slab.liveCount)
        var slot: UInt32 = 1
        while slot < slab.highWater {
            let r = slab[slot]
            defer { slot += 1 }
            guard r.flags.contains(.live) else { continue }
            live += 1
            let hex = "0x" + String(r.pfn, radix: 16)
            guard r.count >= 1 else { throw fail("record at pfn \(hex) covers no pages") }
            pages += r.count
            guard isUsable(r.pfn, r.count) else {
                throw fail("record pfn \(hex) ×\(r.count) is not installed memory or is excluded by physmem")
            }
            guard frames.find(r.pfn, in: slab) == slot else { throw fail("pfn \(hex) not found in frame index at slot \(slot)") }
            byFrame.append((r.pfn, r.pfn + r.count))
            if r.count > 1 {
                multi += 1
                guard runs.find(pfn: r.pfn + r.count - 1, in: slab) == slot else {
                    throw fail("run at pfn \(hex) ×\(r.count) is not in the run index")
                }
                guard !r.flags.contains(.boot), !r.flags.contains(.cached) else {
                    throw fail("run at pfn \(hex) ×\(r.count) is a boot or cached record (those are single pages)")
                }
            }
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
                perVnode[r.vnode, default: 0] += r.count
                guard vnodes.isLive(r.vnode) else { throw fail("page \(hex) names dead vnode \(r.vnode)") }
                guard identities.find(r.vnode, r.offset, in: slab) == slot else {
                    throw fail("page \(hex) identity (\(r.vnode), 0x\(String(r.offset, radix: 16))) not hashed to it")
                }
                let (last, o) = r.offset.addingReportingOverflow((r.count - 1) << PhysicalMemory.pageShift)
                guard !o else { throw fail("run at pfn \(hex) ×\(r.count) names offsets past 2^64") }
                if r.count > 1 {
                    guard runs.find(vnode: r.vnode, offset: last, in: slab) == slot else {
                        throw fail("run at pfn \(hex) ×\(r.count) is not in the run identity index")
                    }
                }
                byName.append((r.vnode, r.offset, last))
            }
        }
        guard live == slab.liveCount else { throw fail("slab counts \(slab.liveCount) live, walk found \(live)") }
        guard frames.count == live else { throw fail("frame index holds \(frames.count), \(live) records") }
        guard identities.count == named else { throw fail("identity hash holds \(identities.count), \(named) named") }
        guard runs.count == multi, runs.identities.count == multi else {
            throw fail("run index holds \(runs.count)/\(runs.identities.count), \(multi) runs")
        }
        // No two records share a frame, and no two share a name.
        byFrame.sort { $0.lower < $1.lower }
        for i in byFrame.indices.dropFirst() where byFrame[i].lower < byFrame[i - 1].upper {
            throw fail("records at pfn 0x\(String(byFrame[i - 1].lower, radix: 16)) and 0x\(String(byFrame[i].lower, radix: 16)) overlap")
        }
        byName.sort { ($0.vnode, $0.lower) < ($1.vnode, $1.lower) }
        for i in byName.indices.dropFirst() where byName[i].vnode == byName[i - 1].vnode && byName[i].lower <= byName[i - 1].last {
            throw fail("two records of vnode \(byName[i].vnode) name offset 0x\(String(byName[i].lower, radix: 16))")
        }
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
        guard free.count + pages + excludedCount == totalPages else {
            throw fail("free \(free.count) + pages in records \(pages) + excluded \(excludedCount) != total_pages \(totalPages)")
        }
        // Free extents: ordered, disjoint, non-adjacent, and no record holds their frames.
        var previousLower = UInt64.max
        var extentFrames: UInt64 = 0
        for e in free.extents {
            guard !e.isEmpty, e.upper < previousLower else { throw fail("free extent \(e) out of order or adjacent") }
            previousLower = e.lower
            extentFrames += e.count
        }
        var k = 0
        for e in free.extents.reversed() {
            while k < byFrame.count && byFrame[k].upper <= e.lower { k += 1 }
            if k < byFrame.count && byFrame[k].lower < e.upper {
                throw fail("free extent \(e) overlaps the record at pfn 0x\(String(byFrame[k].lower, radix: 16))")
            }
        }
        guard extentFrames + UInt64(free.recycled.count) - UInt64(free.tombstoneCount) == free.count else {
            throw fail("free list parts do not add up to its count \(free.count)")
        }
        for pfn in free.recycled where free.tombstones[pfn] == nil {
            guard recordSlot(containing: pfn) == 0 else { throw fail("recycled pfn 0x\(String(pfn, radix: 16)) has a record") }
        }
    }
}
