/// A chained hash from a key of a page record to its slot, with the chain
/// links inside the records themselves, so that an index costs one 4-byte
/// bucket per record and nothing per free frame.
///
/// Two instances exist, because a page is found both ways at once: by frame
/// number (``_FrameIndex``) and by identity `(vnode, offset)` — illumos's
/// `page_hash` (``_IdentityHash``). Each names its key and its link field
/// through a ``_ChainKind``; the table itself is shared. Fibonacci hashing
/// (multiply, keep the high bits) spreads both dense runs of keys and strided
/// ones (every 512th frame) over the buckets; the load factor is kept at
/// most 1 by doubling.
struct _SlotChain<Kind: _ChainKind> {
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
    func bucket(forKey key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// The first slot in `key`'s chain whose record satisfies `matches`, or 0.
    @inline(__always)
    func first(key: UInt64, in slab: _RecordSlab, where matches: (UInt32) -> Bool) -> UInt32 {
        var slot = buckets[bucket(forKey: key)]
        while slot != 0 {
            if matches(slot) { return slot }
            slot = Kind.next(slot, slab)
        }
        return 0
    }

    @inline(__always)
    mutating func insert(_ slot: UInt32, in slab: _RecordSlab) {
        if count >= bucketCount { grow(slab) }
        let b = bucket(forKey: Kind.key(slot, slab))
        Kind.setNext(slot, buckets[b], slab)
        buckets[b] = slot
        count += 1
    }

    @inline(__always)
    mutating func remove(_ slot: UInt32, in slab: _RecordSlab) {
        let b = bucket(forKey: Kind.key(slot, slab))
        var cursor = buckets[b]
        if cursor == slot {
            buckets[b] = Kind.next(slot, slab)
        } else {
            while cursor != 0 {
                let next = Kind.next(cursor, slab)
                if next == slot {
                    Kind.setNext(cursor, Kind.next(slot, slab), slab)
                    break
                }
                cursor = next
            }
        }
        Kind.setNext(slot, 0, slab)
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
                let next = Kind.next(slot, slab)
                let b = bucket(forKey: Kind.key(slot, slab))
                Kind.setNext(slot, buckets[b], slab)
                buckets[b] = slot
                slot = next
            }
        }
        old.deallocate()
    }

    var footprint: Int { bucketCount * MemoryLayout<UInt32>.stride }
}

/// What one ``_SlotChain`` hashes and which record field links its chains.
protocol _ChainKind {
    /// The unmixed hash key of the record in `slot`.
    static func key(_ slot: UInt32, _ slab: _RecordSlab) -> UInt64
    static func next(_ slot: UInt32, _ slab: _RecordSlab) -> UInt32
    static func setNext(_ slot: UInt32, _ next: UInt32, _ slab: _RecordSlab)
}

/// Chains by frame number, linked through `frameNext`.
enum _ByFrame: _ChainKind {
    @inline(__always) static func key(_ slot: UInt32, _ slab: _RecordSlab) -> UInt64 { slab[slot].pfn }
    @inline(__always) static func next(_ slot: UInt32, _ slab: _RecordSlab) -> UInt32 { slab[slot].frameNext }
    @inline(__always) static func setNext(_ slot: UInt32, _ next: UInt32, _ slab: _RecordSlab) { slab[slot].frameNext = next }
}

/// Chains by `(vnode, offset)`, linked through `hashNext`. Kernel pages are
/// named by their virtual address, so consecutive pages of a vnode differ only
/// in `offset >> 12`; that is what the key mixes with the vnode number.
enum _ByIdentity: _ChainKind {
    @inline(__always) static func key(vnode: UInt32, offset: UInt64) -> UInt64 {
        (offset >> PhysicalMemory.pageShift) &+ (UInt64(vnode) &* 0xD6E8_FEB8_6659_FD93)
    }
    @inline(__always) static func key(_ slot: UInt32, _ slab: _RecordSlab) -> UInt64 {
        key(vnode: slab[slot].vnode, offset: slab[slot].offset)
    }
    @inline(__always) static func next(_ slot: UInt32, _ slab: _RecordSlab) -> UInt32 { slab[slot].hashNext }
    @inline(__always) static func setNext(_ slot: UInt32, _ next: UInt32, _ slab: _RecordSlab) { slab[slot].hashNext = next }
}

/// Frame number → record slot. Only frames that are not free have a record,
/// so this index is what makes a 2^29-page machine cost nothing until its
/// pages are used.
typealias _FrameIndex = _SlotChain<_ByFrame>

extension _SlotChain where Kind == _ByFrame {
    @inline(__always)
    func find(_ pfn: UInt64, in slab: _RecordSlab) -> UInt32 {
        first(key: pfn, in: slab) { slab[$0].pfn == pfn }
    }
}

/// `(vnode, offset)` → record slot: illumos's `page_hash`.
typealias _IdentityHash = _SlotChain<_ByIdentity>

extension _SlotChain where Kind == _ByIdentity {
    @inline(__always)
    func find(_ vnode: UInt32, _ offset: UInt64, in slab: _RecordSlab) -> UInt32 {
        first(key: _ByIdentity.key(vnode: vnode, offset: offset), in: slab) {
            slab[$0].offset == offset && slab[$0].vnode == vnode
        }
    }
}
