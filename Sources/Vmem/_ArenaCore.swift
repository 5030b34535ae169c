#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The state of one arena that the arena lock protects: tag table, segment
/// list, free lists, allocated hash and counters.
///
/// It lives at a fixed address (``Arena`` allocates it once), and every
/// algorithm is a `mutating` method reached through that pointer: the hot paths
/// then touch plain memory with no reference counting and no dynamic
/// exclusivity checks. Nothing here locks, waits, imports or throws; the
/// ``Arena`` class does those around it.
@usableFromInline
struct ArenaCore {
    @usableFromInline var tags: UnsafeMutablePointer<BoundaryTag>
    @usableFromInline var tagCapacity: UInt32
    /// Tags `[0, tagHighWater)` have been handed out at least once.
    @usableFromInline var tagHighWater: UInt32
    @usableFromInline var freeTagHead: TagIndex = 0
    @usableFromInline var freeTagCount: Int = 0
    /// Bit `i` set exactly when free list `i` is non-empty.
    @usableFromInline var freemap: UInt64 = 0
    /// The 64 free lists; see ``FreeListArray``.
    @usableFromInline var lists: UnsafeMutablePointer<FreeListArray>
    @usableFromInline var hashBuckets: UnsafeMutablePointer<TagIndex>
    @usableFromInline var hashBits: Int
    /// `64 - hashBits`, and the allocated-segment counts that trigger a
    /// rescale, kept with `hashBits` by ``setHashBits(_:)`` so that the hot
    /// paths do no overflow-checked arithmetic on them.
    @usableFromInline var hashShift: UInt64 = 0
    @usableFromInline var hashGrowAbove: UInt64 = 0
    @usableFromInline var hashShrinkBelow: UInt64 = 0
    @usableFromInline let quantum: UInt64
    @usableFromInline let qshift: Int
    @usableFromInline var stats = ArenaStatistics()
    /// Spans ever created; lets verify() check the span accounting.
    @usableFromInline var spanCount: Int = 0
    /// Guarded by the arena lock like everything else here.
    @usableFromInline var destroyed = false
    @usableFromInline var waiters = 0
    /// Where `tags` lives: 0 when in the process heap (freed here when the
    /// table moves), else the byte length of a block a tag arena handed out
    /// (``TagBacking/memory``), which the arena gives back outside its lock.
    var tagBlockBytes: Int = 0
    /// Blocks of tag-arena memory the table has moved out of, awaiting
    /// their return to the tag arena: `(address, bytes)`.
    var retiredTagBlocks: [(address: UInt64, bytes: UInt64)] = []

    @usableFromInline static let initialHashBits = 4          // 16 buckets, as illumos's vm_hash0
    @usableFromInline static let tagGrowthMinimum: UInt32 = 256

    init(quantum: UInt64) {
        self.quantum = quantum
        self.qshift = highbit(quantum) - 1
        tagCapacity = ReservedTag.firstDynamic + Self.tagGrowthMinimum
        tags = Self.allocateTags(Int(tagCapacity))
        tags.initialize(repeating: BoundaryTag(), count: Int(tagCapacity))
        tagHighWater = ReservedTag.firstDynamic
        lists = Self.makeFreeLists()
        hashBits = Self.initialHashBits
        hashBuckets = .allocate(capacity: 1 << Self.initialHashBits)
        hashBuckets.initialize(repeating: 0, count: 1 << Self.initialHashBits)
        let seg0 = Int(ReservedTag.seg0)
        tags[seg0].kind = kindSpan
        tags[seg0].segPrev = ReservedTag.seg0
        tags[seg0].segNext = ReservedTag.seg0
        tags[Int(ReservedTag.spans)].prev = ReservedTag.spans
        tags[Int(ReservedTag.spans)].next = ReservedTag.spans
        tags[Int(ReservedTag.rotor)].kind = kindRotor
        insertSeg(ReservedTag.rotor, after: ReservedTag.seg0)
        setHashBits(Self.initialHashBits)
    }

    /// Frees what the core owns. A table in tag-arena memory is left to
    /// the arena, which gives it back (``tagBlockBytes``).
    func deallocate() {
        deallocateFreeLists()
        if tagBlockBytes == 0 { UnsafeMutableRawPointer(tags).deallocate() }
        hashBuckets.deallocate()
    }

    // MARK: Tag table

    /// Uninitialized room for `count` tags, cache-line aligned: malloc's
    /// 16-byte alignment would let every other 32-byte tag straddle two
    /// lines, and a tag is usually a cache miss, so that is two misses.
    static func allocateTags(_ count: Int) -> UnsafeMutablePointer<BoundaryTag> {
        UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<BoundaryTag>.stride, alignment: 64)
            .bindMemory(to: BoundaryTag.self, capacity: count)
    }

    /// Grows the tag table by at least `count` tags and puts them on the free-tag list.
    @usableFromInline
    mutating func growTags(by count: UInt32) {
        let limit = BoundaryTag.indexMask + 1
        if tagCapacity >= limit { return }
        let newCapacity = UInt32(min(UInt64(limit), UInt64(tagCapacity) + UInt64(max(count, Self.tagGrowthMinimum, tagCapacity / 8))))
        moveTable(to: Self.allocateTags(Int(newCapacity)), capacity: newCapacity, blockBytes: 0)
    }

    /// Moves the table into `fresh` (room for `capacity` tags, no fewer than
    /// now) and retires the old one: freed if it was the heap's, queued for
    /// its tag arena otherwise. `blockBytes` is 0 for heap memory, else the
    /// length of the tag-arena block `fresh` starts.
    mutating func moveTable(to fresh: UnsafeMutablePointer<BoundaryTag>, capacity: UInt32, blockBytes: Int) {
        fresh.moveInitialize(from: tags, count: Int(tagCapacity))
        (fresh + Int(tagCapacity)).initialize(repeating: BoundaryTag(), count: Int(capacity - tagCapacity))
        if tagBlockBytes == 0 {
            UnsafeMutableRawPointer(tags).deallocate()
        } else {
            retiredTagBlocks.append((UInt64(UInt(bitPattern: tags)), UInt64(tagBlockBytes)))
        }
        tags = fresh
        tagCapacity = capacity
        tagBlockBytes = blockBytes
    }

    /// Ensures at least `count` tags are free without growing later; false
    /// only when the table is at its 2^28-tag limit.
    @usableFromInline @discardableResult
    mutating func reserveTags(_ count: Int) -> Bool {
        let unused = Int(tagCapacity - tagHighWater)
        if freeTagCount + unused < count {
            growTags(by: UInt32(count - freeTagCount - unused))
        }
        return availableTags >= count
    }

    /// Free tags available without growing the table.
    @inlinable var availableTags: Int { freeTagCount &+ Int(truncatingIfNeeded: tagCapacity &- tagHighWater) }

    // Not written as `getReservedTag()` behind a growth check: that measured
    // 17 more instructions per best-fit pair (callgrind).
    @inlinable @inline(__always)
    mutating func getTag() -> TagIndex {
        let t = freeTagHead
        if t != 0 {
            freeTagHead = tags[Int(t)].next
            freeTagCount &-= 1          // > 0 here: no overflow check needed
            return t
        }
        if tagHighWater == tagCapacity { growTags(by: Self.tagGrowthMinimum) }
        let n = tagHighWater
        tagHighWater &+= 1              // < tagCapacity <= 2^28
        return n
    }

    /// ``getTag()`` where the caller has made sure a tag is available
    /// (``availableTags`` > 0), so the table does not grow or move.
    @inlinable @inline(__always)
    mutating func getReservedTag() -> TagIndex {
        let t = freeTagHead
        if t != 0 {
            freeTagHead = tags[Int(t)].next
            freeTagCount &-= 1
            return t
        }
        assert(tagHighWater < tagCapacity, "getReservedTag without a reserve")
        let n = tagHighWater
        tagHighWater &+= 1
        return n
    }

    @inlinable @inline(__always)
    mutating func putTag(_ t: TagIndex) {
        tags[Int(t)].kind = 0
        tags[Int(t)].next = freeTagHead
        freeTagHead = t
        freeTagCount &+= 1              // at most the table's 2^28 tags
    }

    // MARK: Segment list

    @inlinable @inline(__always)
    mutating func insertSeg(_ t: TagIndex, after p: TagIndex) {
        let n = tags[Int(p)].segNext
        tags[Int(t)].segPrev = p
        tags[Int(t)].segNext = n
        tags[Int(p)].segNext = t
        tags[Int(n)].segPrev = t
    }

    @inlinable @inline(__always)
    mutating func removeSeg(_ t: TagIndex) {
        let p = tags[Int(t)].segPrev, n = tags[Int(t)].segNext
        tags[Int(p)].segNext = n
        tags[Int(n)].segPrev = p
    }

    /// Makes a tag for `[start, end)` of `kind` and links it after `p`
    /// (illumos `vmem_seg_create`).
    @inlinable @inline(__always)
    mutating func createSeg(after p: TagIndex, start: UInt64, end: UInt64, kind: UInt8) -> TagIndex {
        let t = getTag()
        initSeg(t, start: start, end: end, kind: kind, after: p, in: tags)
        return t
    }

    @inlinable @inline(__always)
    mutating func destroySeg(_ t: TagIndex) {
        removeSeg(t)
        putTag(t)
    }

    // MARK: Allocated hash

    @inlinable @inline(__always)
    func hashIndex(_ address: UInt64) -> Int {
        // Fibonacci hashing of the quantum number: cheap and well spread even
        // when allocations share low-order patterns.
        Int(truncatingIfNeeded: ((address &>> UInt64(truncatingIfNeeded: qshift)) &* 0x9E37_79B9_7F4A_7C15) &>> hashShift)
    }

    /// The bucket `address` hashes to.
    @inlinable @inline(__always)
    func hashBucket(_ address: UInt64) -> UnsafeMutablePointer<TagIndex> { hashBuckets + hashIndex(address) }

    /// Sets the table size and what derives from it (the caller resizes the buckets).
    @usableFromInline
    mutating func setHashBits(_ bits: Int) {
        hashBits = bits
        hashShift = UInt64(64 - bits)
        hashGrowAbove = UInt64(2) << UInt64(bits)
        hashShrinkBelow = bits > Self.initialHashBits ? UInt64(1) << UInt64(bits - 3) : 0
        stats.hashSize = UInt64(1) << UInt64(bits)
    }

    @inlinable @inline(__always)
    mutating func hashInsert(_ t: TagIndex) {
        let tag = tags + Int(t)
        tag.pointee.kind = kindAlloc
        let b = hashBucket(tag.pointee.start)
        tag.pointee.next = b.pointee
        b.pointee = t
        stats.allocCount &+= 1
        stats.memInUse &+= tag.pointee.size
        stats.allocatedSegments &+= 1
        if stats.allocatedSegments > hashGrowAbove { rescaleHash() }
    }

    @usableFromInline
    enum HashLookup { case found(TagIndex), missing, wrongSize(UInt64) }

    /// Removes the allocated segment that starts at `address` if its size is
    /// `size` (illumos `vmem_hash_delete`, which panics where this reports).
    @inlinable @inline(__always)
    mutating func hashDelete(_ address: UInt64, size: UInt64) -> HashLookup {
        let b = hashBucket(address)
        var prev: TagIndex = 0
        var t = b.pointee
        // Counted in a local: one store to the statistics instead of one per step.
        var steps: UInt64 = 0
        while t != 0 {
            steps &+= 1
            if tags[Int(t)].start == address { break }
            prev = t
            t = tags[Int(t)].next
        }
        stats.lookupCount &+= steps
        if t == 0 { return .missing }
        let actual = tags[Int(t)].size
        if actual != size { return .wrongSize(actual) }
        if prev == 0 { b.pointee = tags[Int(t)].next } else { tags[Int(prev)].next = tags[Int(t)].next }
        stats.freeCount &+= 1
        stats.memInUse &-= size
        stats.allocatedSegments &-= 1
        if stats.allocatedSegments < hashShrinkBelow { rescaleHash() }
        return .found(t)
    }

    /// Finds the allocated segment starting at `address` without removing it.
    func hashFind(_ address: UInt64) -> TagIndex {
        var t = hashBuckets[hashIndex(address)]
        while t != 0 && tags[Int(t)].start != address { t = tags[Int(t)].next }
        return t
    }

    /// Resizes the table to between 0.75 and 1.5 buckets per allocated
    /// segment (the power of two illumos `vmem_hash_rescale` picks), on
    /// demand rather than from a timer; the grow-at-2x / shrink-at-1/8
    /// hysteresis keeps the cost amortised O(1). Twice that many buckets
    /// measured no faster on the benchmarks (chains were shorter, but the
    /// larger table missed the L2 more often) and cost 3.3 more bytes per
    /// allocated segment.
    @usableFromInline
    mutating func rescaleHash() {
        let n = stats.allocatedSegments
        let target = max(Self.initialHashBits, highbit(3 &* n &+ 4) - 2)
        if target == hashBits { return }
        let old = hashBuckets, oldCount = 1 << hashBits
        setHashBits(target)
        hashBuckets = .allocate(capacity: 1 << target)
        hashBuckets.initialize(repeating: 0, count: 1 << target)
        for b in 0..<oldCount {
            var t = old[b]
            while t != 0 {
                let next = tags[Int(t)].next
                let nb = hashIndex(tags[Int(t)].start)
                tags[Int(t)].next = hashBuckets[nb]
                hashBuckets[nb] = t
                t = next
            }
        }
        old.deallocate()
    }
}
