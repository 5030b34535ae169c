/// Frame number → record slot: a chained hash whose links live in the records.
///
/// Only frames that are not free have a record, so this table is what makes
/// a 2^29-page machine cost nothing until its pages are used. Fibonacci
/// hashing (multiply, keep the high bits) spreads both dense runs of frames and
/// strided ones (every 512th frame) over the buckets. The load factor is kept
/// at most 1 by doubling.
struct _FrameIndex {
    private(set) var buckets: UnsafeMutablePointer<UInt32>
    private(set) var shift: UInt64
    private(set) var count: Int = 0

    var bucketCount: Int { 1 << (64 - Int(shift)) }

    init(bucketBits: Int = 6) {
        shift = UInt64(64 - bucketBits)
        buckets = .allocate(capacity: 1 << bucketBits)
        buckets.initialize(repeating: 0, count: 1 << bucketBits)
    }

    func deallocate() { buckets.deallocate() }

    @inline(__always)
    func bucket(_ pfn: UInt64) -> Int {
        Int(truncatingIfNeeded: (pfn &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    @inline(__always)
    func find(_ pfn: UInt64, in slab: _RecordSlab) -> UInt32 {
        var slot = buckets[bucket(pfn)]
        while slot != 0 {
            if slab[slot].pfn == pfn { return slot }
            slot = slab[slot].frameNext
        }
        return 0
    }

    @inline(__always)
    mutating func insert(_ slot: UInt32, in slab: _RecordSlab) {
        if count >= bucketCount { grow(slab) }
        let b = bucket(slab[slot].pfn)
        slab[slot].frameNext = buckets[b]
        buckets[b] = slot
        count += 1
    }

    @inline(__always)
    mutating func remove(_ slot: UInt32, in slab: _RecordSlab) {
        let b = bucket(slab[slot].pfn)
        var cursor = buckets[b]
        if cursor == slot {
            buckets[b] = slab[slot].frameNext
        } else {
            while cursor != 0 {
                let next = slab[cursor].frameNext
                if next == slot {
                    slab[cursor].frameNext = slab[slot].frameNext
                    break
                }
                cursor = next
            }
        }
        slab[slot].frameNext = 0
        count -= 1
    }

    private mutating func grow(_ slab: _RecordSlab) {
        let oldCount = bucketCount
        let old = buckets
        shift -= 1
        buckets = .allocate(capacity: oldCount * 2)
        buckets.initialize(repeating: 0, count: oldCount * 2)
        for i in 0..<oldCount {
            var slot = old[i]
            while slot != 0 {
                let next = slab[slot].frameNext
                let b = bucket(slab[slot].pfn)
                slab[slot].frameNext = buckets[b]
                buckets[b] = slot
                slot = next
            }
        }
        old.deallocate()
    }

    var footprint: Int { bucketCount * MemoryLayout<UInt32>.stride }
}

/// `(vnode, offset)` → record slot: illumos's `page_hash`.
///
/// Same shape as ``_FrameIndex`` with its own link field, because a page is in
/// both tables at once. Kernel pages are named by their virtual address, so
/// consecutive pages of a vnode differ only in `offset >> 12`; that is what the
/// hash mixes with the vnode number.
struct _IdentityHash {
    private(set) var buckets: UnsafeMutablePointer<UInt32>
    private(set) var shift: UInt64
    private(set) var count: Int = 0

    var bucketCount: Int { 1 << (64 - Int(shift)) }

    init(bucketBits: Int = 6) {
        shift = UInt64(64 - bucketBits)
        buckets = .allocate(capacity: 1 << bucketBits)
        buckets.initialize(repeating: 0, count: 1 << bucketBits)
    }

    func deallocate() { buckets.deallocate() }

    @inline(__always)
    func bucket(_ vnode: UInt32, _ offset: UInt64) -> Int {
        let key = (offset >> PhysicalMemory.pageShift) &+ (UInt64(vnode) &* 0xD6E8_FEB8_6659_FD93)
        return Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    @inline(__always)
    func find(_ vnode: UInt32, _ offset: UInt64, in slab: _RecordSlab) -> UInt32 {
        var slot = buckets[bucket(vnode, offset)]
        while slot != 0 {
            if slab[slot].offset == offset && slab[slot].vnode == vnode { return slot }
            slot = slab[slot].hashNext
        }
        return 0
    }

    @inline(__always)
    mutating func insert(_ slot: UInt32, in slab: _RecordSlab) {
        if count >= bucketCount { grow(slab) }
        let b = bucket(slab[slot].vnode, slab[slot].offset)
        slab[slot].hashNext = buckets[b]
        buckets[b] = slot
        count += 1
    }

    @inline(__always)
    mutating func remove(_ slot: UInt32, in slab: _RecordSlab) {
        let b = bucket(slab[slot].vnode, slab[slot].offset)
        var cursor = buckets[b]
        if cursor == slot {
            buckets[b] = slab[slot].hashNext
        } else {
            while cursor != 0 {
                let next = slab[cursor].hashNext
                if next == slot {
                    slab[cursor].hashNext = slab[slot].hashNext
                    break
                }
                cursor = next
            }
        }
        slab[slot].hashNext = 0
        count -= 1
    }

    private mutating func grow(_ slab: _RecordSlab) {
        let oldCount = bucketCount
        let old = buckets
        shift -= 1
        buckets = .allocate(capacity: oldCount * 2)
        buckets.initialize(repeating: 0, count: oldCount * 2)
        for i in 0..<oldCount {
            var slot = old[i]
            while slot != 0 {
                let next = slab[slot].hashNext
                let b = bucket(slab[slot].vnode, slab[slot].offset)
                slab[slot].hashNext = buckets[b]
                buckets[b] = slot
                slot = next
            }
        }
        old.deallocate()
    }

    var footprint: Int { bucketCount * MemoryLayout<UInt32>.stride }
}
