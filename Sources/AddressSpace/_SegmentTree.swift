/// The ordered set of segments (`a_segtree`): a B+-tree of height at most
/// two, keyed by segment base.
///
/// illumos keeps an AVL tree. A binary tree costs one dependent load and one
/// unpredictable branch per level — about fourteen of each for 10,000
/// segments, measured here at ~80 ns with hot caches and ~200 ns without,
/// four times the 50 ns budget for `as_segat`. This tree keeps the bases in
/// *leaves* of up to 64 sorted keys and a *top* array holding each leaf's
/// smallest key (a few hundred keys for 10,000 segments: it stays in L1).
///
/// A lookup has no data-dependent branch. The top array is searched as an
/// implicit 8-ary tree (see ``topNotAbove(_:)``): three dependent steps of
/// independent compares for up to 512 leaves, where binary halving took
/// seven. The leaf is searched by branch-free halving down to 16 keys, which
/// are compared independently. With the reader lock taken and the segment
/// retained around it (`segat`), the locked instructions serialize the
/// lookups, so the length of the chain of dependent steps is what a lookup
/// costs: the top array's eight-way steps measured ~10% faster on `segat`
/// at 10,000 segments than halving, the leaf's halving ~10% faster than
/// every fixed-shape alternative tried (seven line probes, three quarter
/// probes, a fixed 16-key window over sentinels).
///
/// The top array's unused tail holds `UInt64.max` (*sentinels*), which the
/// eight-way steps read; a sentinel is never below an address except
/// `UInt64.max` itself, and the count is clamped to `topCount`, which makes
/// that case exact too (a segment may end, or even start, at the top of the
/// address space).
///
/// Updates: an insertion shifts at most 63 keys in a leaf; a full leaf splits
/// in half and adds one top entry (a shift of the top array — a few KiB at
/// 100,000 segments). A deletion shifts within its leaf; an empty leaf leaves
/// the top array and a small one merges with its neighbour, so leaves stay at
/// least a quarter full and the top array at most ~n/16 entries.
///
/// Segments are named by *slot*: a stable 32-bit id (0 = none) indexing the
/// `spans` (first and last address) and `segments` arrays. The last-segment
/// hint and each `Segment` hold their slot. Keeping the *last* address rather
/// than the end lets a segment end exactly at 2^64.
///
/// The lookup (``findSegment(in:_:)`` and what it calls) is `@inlinable`, so
/// that `AddressSpace.segat` compiles in place in other modules.
@usableFromInline
struct _SegmentTree {
    @usableFromInline
    struct Span {
        @usableFromInline var base: UInt64
        @usableFromInline var last: UInt64
    }

    /// Keys per leaf.
    @inlinable static var leafCapacity: Int { 64 }

    // Slots.
    @usableFromInline private(set) var spans: UnsafeMutablePointer<Span>
    /// The segment in each slot (nil for free slots).
    @usableFromInline private(set) var segments: UnsafeMutablePointer<Segment?>
    private var slotCapacity: Int32
    private var slotHighWater: Int32 = 1
    private var freeSlots: [Int32] = []
    private(set) var count = 0

    /// What a leaf knows about the segment at one key, besides its slot: its
    /// last address and object, 16 bytes, so that a lookup reads one aligned
    /// line after the keys.
    @usableFromInline
    struct LeafEntry {
        @usableFromInline var last: UInt64
        @usableFromInline var segment: Unmanaged<Segment>?
    }

    // Leaves: `leafCapacity` keys (bases, searched), entries and slots per
    // leaf.
    @usableFromInline private(set) var leafKeys: UnsafeMutablePointer<UInt64>
    @usableFromInline private(set) var leafEntries: UnsafeMutablePointer<LeafEntry>
    private var leafSlots: UnsafeMutablePointer<Int32>
    @usableFromInline private(set) var leafCounts: UnsafeMutablePointer<Int32>
    private var leafPool: Int32
    private var leafHighWater: Int32 = 0
    private var freeLeaves: [Int32] = []

    // Top level: the smallest key of each leaf, in order, then sentinels
    // (`UInt64.max`) up to `topCapacity`, a power of 8 and at least 512.
    @usableFromInline private(set) var topKeys: UnsafeMutablePointer<UInt64>
    @usableFromInline private(set) var topLeaves: UnsafeMutablePointer<Int32>
    @usableFromInline private(set) var topCount = 0
    @usableFromInline private(set) var topCapacity = 512
    /// `log2(topCapacity) - 3`: the top search's first block is `1 << topShift` keys.
    @usableFromInline private(set) var topShift = 6

    init() {
        slotCapacity = 16
        spans = .allocate(capacity: Int(slotCapacity))
        spans.initialize(repeating: Span(base: 0, last: 0), count: Int(slotCapacity))
        segments = .allocate(capacity: Int(slotCapacity))
        segments.initialize(repeating: nil, count: Int(slotCapacity))
        leafPool = 4
        leafKeys = .allocate(capacity: Int(leafPool) * Self.leafCapacity)
        leafEntries = .allocate(capacity: Int(leafPool) * Self.leafCapacity)
        leafSlots = .allocate(capacity: Int(leafPool) * Self.leafCapacity)
        leafCounts = .allocate(capacity: Int(leafPool))
        leafCounts.initialize(repeating: 0, count: Int(leafPool))
        topKeys = .allocate(capacity: topCapacity)
        topKeys.initialize(repeating: .max, count: topCapacity)
        topLeaves = .allocate(capacity: topCapacity)
        topLeaves.initialize(repeating: 0, count: topCapacity)
    }

    func deallocate() {
        spans.deallocate()
        segments.deinitialize(count: Int(slotCapacity))
        segments.deallocate()
        leafKeys.deallocate()
        leafEntries.deallocate()
        leafSlots.deallocate()
        leafCounts.deallocate()
        topKeys.deallocate()
        topLeaves.deallocate()
    }

    /// Slot ids run below this bound.
    var slotCount: Int { Int(slotHighWater) }

    // MARK: Searching

    /// 1 if `key <= x`, else 0, without a branch.
    @inlinable @inline(__always)
    static func notAbove(_ key: UInt64, _ x: UInt64) -> Int {
        Int(unsafeBitCast(key <= x, to: UInt8.self))
    }

    /// How many of the eight keys at `keys` (one cache line) are `<= x`:
    /// independent compares summed in two chains.
    @inlinable @inline(__always)
    static func count8(_ keys: UnsafePointer<UInt64>, _ x: UInt64) -> Int {
        var a = 0, b = 0
        for i in stride(from: 0, to: 8, by: 2) {
            a &+= notAbove(keys[i], x)
            b &+= notAbove(keys[i &+ 1], x)
        }
        return a &+ b
    }

    /// How many top keys are `<= x` (0 to `topCount`).
    ///
    /// The top array, sentinels included, is `8^k` keys (at least 512),
    /// searched as an implicit 8-ary tree: at each level the last keys of the
    /// first seven of eight equal blocks (seven independent loads, in L1)
    /// name the block to descend into; the last block is eight keys, counted
    /// whole. Up to 512 leaves (~16,000 segments) that is three dependent
    /// steps where halving takes seven. A sentinel is never `<= x` unless
    /// `x` is `UInt64.max`, which the clamp to `topCount` answers.
    func topNotAbove(_ x: UInt64) -> Int {
        var lo = 0
        var shift = topShift
        while shift > 6 {
            lo &+= Self.block(topKeys + lo, shift, x) &<< shift
            shift &-= 3
        }
        return topNotAbove(x, from: lo)
    }

    /// `topNotAbove` for a top array of 512 keys (`topShift == 6`), or the
    /// rest of it from the block of 512 at `start`: every probe at a fixed
    /// offset from the previous step's result. Kept apart from the loop above
    /// so that the inlined fast path has no loop and no variable shifts (a
    /// loop over a variable block size measured ~10% slower on `segat`).
    @inlinable @inline(__always)
    func topNotAbove(_ x: UInt64, from start: Int) -> Int {
        var lo = start
        lo &+= Self.block(topKeys + lo, 6, x) &<< 6
        lo &+= Self.block(topKeys + lo, 3, x) &<< 3
        return Swift.min(lo &+ Self.count8(topKeys + lo, x), topCount)
    }

    /// Which of the eight blocks of `1 << shift` keys at `keys` holds the
    /// last key `<= x` (0 to 7): how many of the last keys of the first seven
    /// are `<= x`, compared independently.
    @inlinable @inline(__always)
    static func block(_ keys: UnsafePointer<UInt64>, _ shift: Int, _ x: UInt64) -> Int {
        var c = 0
        for j in 1..<8 { c &+= notAbove(keys[(j &<< shift) &- 1], x) }
        return c
    }

    /// Below this many keys a leaf search compares them all.
    @inlinable static var linearThreshold: Int { 16 }

    /// How many keys of `leaf` are `<= x` (0 to its count).
    ///
    /// Branch-free halving narrows the range to at most ``linearThreshold``
    /// keys, which are then compared independently. Invariant: keys before
    /// `lo` are `<= x`, keys from `lo + len` on are `> x`. (Unchanged from
    /// the first version of this tree: see the type's notes on the
    /// alternatives measured.)
    @inlinable @inline(__always)
    func leafNotAbove(_ leaf: Int, _ x: UInt64) -> Int {
        let keys = leafKeys + leaf &* Self.leafCapacity
        var lo = 0, len = Int(leafCounts[leaf])
        while len > Self.linearThreshold {
            let half = len &>> 1
            let mask = 0 &- Self.notAbove(keys[lo &+ half &- 1], x)
            lo &+= half & mask
            len = half &+ ((len &- half &- half) & mask)
        }
        var c = 0
        for k in 0..<len { c &+= Self.notAbove(keys[lo &+ k], x) }
        return lo &+ c
    }

    /// The index in the leaf arrays of the last base `<= address`, or nil
    /// when every base is above it; `top` is `topNotAbove(address)`.
    @inlinable @inline(__always)
    func floorIndex(_ address: UInt64, top: Int) -> Int? {
        let t = top &- 1
        guard t >= 0 else { return nil }
        let leaf = Int(topLeaves[t])
        // At least 1: the leaf's first key is `topKeys[t] <= address`.
        return leaf &* Self.leafCapacity &+ leafNotAbove(leaf, address) &- 1
    }

    /// The slot of the segment containing `address`, or 0.
    func find(_ address: UInt64) -> Int32 {
        guard let i = floorIndex(address, top: topNotAbove(address)) else { return 0 }
        return leafEntries[i].last >= address ? leafSlots[i] : 0
    }

    /// The segment containing `address`, or nil, for any tree: `find`
    /// without the detour through the slot arrays. Reads only raw storage
    /// and returns the object unretained, so the lookup pays for nothing
    /// else. Inline for a top array of 512 keys (up to ~16,000 segments),
    /// out of line above that.
    @inlinable @inline(__always)
    static func findSegment(in tree: UnsafeMutablePointer<_SegmentTree>, _ address: UInt64) -> Unmanaged<Segment>? {
        if _fastPath(tree.pointee.topShift == 6) {
            return tree.pointee.segment(at: tree.pointee.floorIndex(address, top: tree.pointee.topNotAbove(address, from: 0)),
                                        containing: address)
        }
        return findSegmentLarge(tree, address)
    }

    @usableFromInline @inline(never)
    static func findSegmentLarge(_ tree: UnsafeMutablePointer<_SegmentTree>, _ address: UInt64) -> Unmanaged<Segment>? {
        tree.pointee.segment(at: tree.pointee.floorIndex(address, top: tree.pointee.topNotAbove(address)),
                             containing: address)
    }

    /// The segment of leaf entry `index` if it contains `address`.
    @inlinable @inline(__always)
    func segment(at index: Int?, containing address: UInt64) -> Unmanaged<Segment>? {
        guard let i = index else { return nil }
        let e = leafEntries + i
        return e.pointee.last >= address ? e.pointee.segment : nil
    }

    /// The segment in `slot`, unretained (nil for a free slot): the same
    /// word as `segments[slot]`, read as the `Unmanaged` it is laid out as.
    @inlinable @inline(__always)
    func unmanagedSegment(_ slot: Int32) -> Unmanaged<Segment>? {
        UnsafeRawPointer(segments + Int(slot)).load(as: Unmanaged<Segment>?.self)
    }

    /// A place in the order: top index and index within that leaf.
    struct Position: Equatable {
        var top: Int
        var index: Int
    }

    @inline(__always)
    private func id(_ p: Position) -> Int32 {
        leafSlots[Int(topLeaves[p.top]) * Self.leafCapacity + p.index]
    }

    @inline(__always)
    private func leafCount(_ t: Int) -> Int { Int(leafCounts[Int(topLeaves[t])]) }

    /// The position of the last base `<= address`.
    private func floor(_ address: UInt64) -> Position? {
        let t = topNotAbove(address) - 1
        guard t >= 0 else { return nil }
        return Position(top: t, index: leafNotAbove(Int(topLeaves[t]), address) - 1)
    }

    private func after(_ p: Position) -> Position? {
        if p.index + 1 < leafCount(p.top) { return Position(top: p.top, index: p.index + 1) }
        return p.top + 1 < topCount ? Position(top: p.top + 1, index: 0) : nil
    }

    private func before(_ p: Position) -> Position? {
        if p.index > 0 { return Position(top: p.top, index: p.index - 1) }
        return p.top > 0 ? Position(top: p.top - 1, index: leafCount(p.top - 1) - 1) : nil
    }

    private func position(of slot: Int32) -> Position? {
        guard let p = floor(spans[Int(slot)].base), id(p) == slot else { return nil }
        return p
    }

    /// The first segment whose base is above `address`, or 0.
    func firstAbove(_ address: UInt64) -> Int32 {
        if let p = floor(address) {
            return after(p).map(id) ?? 0
        }
        return topCount > 0 ? id(Position(top: 0, index: 0)) : 0
    }

    /// The last segment ending below `address`, or 0.
    func lastBelow(_ address: UInt64) -> Int32 {
        guard let p = floor(address) else { return 0 }
        let s = id(p)
        if spans[Int(s)].last < address { return s }
        return before(p).map(id) ?? 0
    }

    var first: Int32 { topCount > 0 ? id(Position(top: 0, index: 0)) : 0 }
    var lastNode: Int32 { topCount > 0 ? id(Position(top: topCount - 1, index: leafCount(topCount - 1) - 1)) : 0 }

    /// `AVL_NEXT`
    func next(_ slot: Int32) -> Int32 { position(of: slot).flatMap(after).map(id) ?? 0 }
    /// `AVL_PREV`
    func previous(_ slot: Int32) -> Int32 { position(of: slot).flatMap(before).map(id) ?? 0 }

    /// The first segment overlapping `[base, last]`, or 0.
    func firstOverlap(_ base: UInt64, _ last: UInt64) -> Int32 {
        let n = find(base)
        if n != 0 { return n }
        let above = firstAbove(base)
        return above != 0 && spans[Int(above)].base <= last ? above : 0
    }

    // MARK: Updating

    /// Inserts a segment covering `[base, last]`; the caller has checked
    /// that nothing overlaps. Returns its slot.
    mutating func insert(_ segment: Segment, base: UInt64, last: UInt64) -> Int32 {
        let slot = allocateSlot()
        spans[Int(slot)] = Span(base: base, last: last)
        segments[Int(slot)] = segment
        count += 1
        let entry = LeafEntry(last: last, segment: .passUnretained(segment))
        if topCount == 0 {
            let leaf = Int(allocateLeaf())
            leafKeys[leaf * Self.leafCapacity] = base
            leafEntries[leaf * Self.leafCapacity] = entry
            leafSlots[leaf * Self.leafCapacity] = slot
            leafCounts[leaf] = 1
            insertTop(at: 0, key: base, leaf: Int32(leaf))
            return slot
        }
        var t = max(topNotAbove(base) - 1, 0)
        var leaf = Int(topLeaves[t])
        var j = leafNotAbove(leaf, base)
        if Int(leafCounts[leaf]) == Self.leafCapacity {
            let half = Self.leafCapacity / 2
            let right = Int(allocateLeaf())
            (leafKeys + right * Self.leafCapacity).update(from: leafKeys + leaf * Self.leafCapacity + half, count: half)
            (leafEntries + right * Self.leafCapacity).update(from: leafEntries + leaf * Self.leafCapacity + half, count: half)
            (leafSlots + right * Self.leafCapacity).update(from: leafSlots + leaf * Self.leafCapacity + half, count: half)
            leafCounts[right] = Int32(half)
            leafCounts[leaf] = Int32(half)
            insertTop(at: t + 1, key: leafKeys[right * Self.leafCapacity], leaf: Int32(right))
            if j > half {
                t += 1
                leaf = right
                j -= half
            }
        }
        let keys = leafKeys + leaf * Self.leafCapacity
        let entries = leafEntries + leaf * Self.leafCapacity
        let slots = leafSlots + leaf * Self.leafCapacity
        let n = Int(leafCounts[leaf])
        if j < n {
            (keys + j + 1).update(from: keys + j, count: n - j)
            (entries + j + 1).update(from: entries + j, count: n - j)
            (slots + j + 1).update(from: slots + j, count: n - j)
        }
        keys[j] = base
        entries[j] = entry
        slots[j] = slot
        leafCounts[leaf] = Int32(n + 1)
        if j == 0 { topKeys[t] = base }
        return slot
    }

    /// Removes the segment in `slot`.
    mutating func remove(_ slot: Int32) {
        guard let p = position(of: slot) else { return }
        let leaf = Int(topLeaves[p.top])
        let keys = leafKeys + leaf * Self.leafCapacity
        let entries = leafEntries + leaf * Self.leafCapacity
        let slots = leafSlots + leaf * Self.leafCapacity
        let n = Int(leafCounts[leaf])
        if p.index + 1 < n {
            (keys + p.index).update(from: keys + p.index + 1, count: n - p.index - 1)
            (entries + p.index).update(from: entries + p.index + 1, count: n - p.index - 1)
            (slots + p.index).update(from: slots + p.index + 1, count: n - p.index - 1)
        }
        leafCounts[leaf] = Int32(n - 1)
        if n - 1 == 0 {
            removeTop(at: p.top)
            freeLeaves.append(Int32(leaf))
        } else {
            if p.index == 0 { topKeys[p.top] = keys[0] }
            mergeIfSmall(p.top)
        }
        releaseSlot(slot)
        count -= 1
    }

    /// Changes a segment's range in place; the caller guarantees the order
    /// and disjointness still hold (the segment only shrinks, or grows into
    /// free space).
    mutating func setRange(_ slot: Int32, base: UInt64, last: UInt64) {
        if let p = position(of: slot) {
            let leaf = Int(topLeaves[p.top])
            leafKeys[leaf * Self.leafCapacity + p.index] = base
            leafEntries[leaf * Self.leafCapacity + p.index].last = last
            if p.index == 0 { topKeys[p.top] = base }
        }
        spans[Int(slot)] = Span(base: base, last: last)
    }

    /// Joins the leaf at top index `t` with a neighbour when both fit in
    /// three quarters of a leaf, so that leaves stay reasonably full.
    private mutating func mergeIfSmall(_ t: Int) {
        let quarter = Self.leafCapacity / 4
        guard leafCount(t) < quarter else { return }
        var left = t, right = t + 1
        if right >= topCount || leafCount(left) + leafCount(right) > 3 * quarter {
            left = t - 1
            right = t
            guard left >= 0, leafCount(left) + leafCount(right) <= 3 * quarter else { return }
        }
        let l = Int(topLeaves[left]), r = Int(topLeaves[right])
        let ln = Int(leafCounts[l]), rn = Int(leafCounts[r])
        (leafKeys + l * Self.leafCapacity + ln).update(from: leafKeys + r * Self.leafCapacity, count: rn)
        (leafEntries + l * Self.leafCapacity + ln).update(from: leafEntries + r * Self.leafCapacity, count: rn)
        (leafSlots + l * Self.leafCapacity + ln).update(from: leafSlots + r * Self.leafCapacity, count: rn)
        leafCounts[l] = Int32(ln + rn)
        leafCounts[r] = 0
        removeTop(at: right)
        freeLeaves.append(Int32(r))
    }

    private mutating func insertTop(at t: Int, key: UInt64, leaf: Int32) {
        if topCount == topCapacity {
            // A power of 8, so that the search's blocks divide it evenly.
            let newCapacity = topCapacity * 8
            let k = UnsafeMutablePointer<UInt64>.allocate(capacity: newCapacity)
            let l = UnsafeMutablePointer<Int32>.allocate(capacity: newCapacity)
            k.initialize(from: topKeys, count: topCount)
            (k + topCount).initialize(repeating: .max, count: newCapacity - topCount)
            l.initialize(from: topLeaves, count: topCount)
            (l + topCount).initialize(repeating: 0, count: newCapacity - topCount)
            topKeys.deallocate()
            topLeaves.deallocate()
            topKeys = k
            topLeaves = l
            topCapacity = newCapacity
            topShift += 3
        }
        if t < topCount {
            // Over the first sentinel.
            (topKeys + t + 1).update(from: topKeys + t, count: topCount - t)
            (topLeaves + t + 1).update(from: topLeaves + t, count: topCount - t)
        }
        topKeys[t] = key
        topLeaves[t] = leaf
        topCount += 1
    }

    private mutating func removeTop(at t: Int) {
        if t + 1 < topCount {
            (topKeys + t).update(from: topKeys + t + 1, count: topCount - t - 1)
            (topLeaves + t).update(from: topLeaves + t + 1, count: topCount - t - 1)
        }
        topCount -= 1
        topKeys[topCount] = .max
    }

    private mutating func allocateLeaf() -> Int32 {
        let leaf: Int32
        if let l = freeLeaves.popLast() {
            leaf = l
        } else {
            if leafHighWater == leafPool {
                let newPool = leafPool * 2
                let k = UnsafeMutablePointer<UInt64>.allocate(capacity: Int(newPool) * Self.leafCapacity)
                let e = UnsafeMutablePointer<LeafEntry>.allocate(capacity: Int(newPool) * Self.leafCapacity)
                let s = UnsafeMutablePointer<Int32>.allocate(capacity: Int(newPool) * Self.leafCapacity)
                let c = UnsafeMutablePointer<Int32>.allocate(capacity: Int(newPool))
                k.update(from: leafKeys, count: Int(leafPool) * Self.leafCapacity)
                e.update(from: leafEntries, count: Int(leafPool) * Self.leafCapacity)
                s.update(from: leafSlots, count: Int(leafPool) * Self.leafCapacity)
                c.update(from: leafCounts, count: Int(leafPool))
                (c + Int(leafPool)).initialize(repeating: 0, count: Int(newPool - leafPool))
                leafKeys.deallocate()
                leafEntries.deallocate()
                leafSlots.deallocate()
                leafCounts.deallocate()
                leafKeys = k
                leafEntries = e
                leafSlots = s
                leafCounts = c
                leafPool = newPool
            }
            leaf = leafHighWater
            leafHighWater += 1
        }
        leafCounts[Int(leaf)] = 0
        return leaf
    }

    private mutating func allocateSlot() -> Int32 {
        if let s = freeSlots.popLast() { return s }
        if slotHighWater == slotCapacity {
            let newCapacity = slotCapacity * 2
            let sp = UnsafeMutablePointer<Span>.allocate(capacity: Int(newCapacity))
            sp.moveInitialize(from: spans, count: Int(slotCapacity))
            (sp + Int(slotCapacity)).initialize(repeating: Span(base: 0, last: 0), count: Int(newCapacity - slotCapacity))
            spans.deallocate()
            spans = sp
            let sg = UnsafeMutablePointer<Segment?>.allocate(capacity: Int(newCapacity))
            sg.moveInitialize(from: segments, count: Int(slotCapacity))
            (sg + Int(slotCapacity)).initialize(repeating: nil, count: Int(newCapacity - slotCapacity))
            segments.deallocate()
            segments = sg
            slotCapacity = newCapacity
        }
        let s = slotHighWater
        slotHighWater += 1
        return s
    }

    private mutating func releaseSlot(_ slot: Int32) {
        segments[Int(slot)] = nil
        spans[Int(slot)] = Span(base: 0, last: 0)
        freeSlots.append(slot)
    }

    // MARK: Checking

    /// Every structural invariant, or a message naming the first broken one.
    func check() -> String? {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        var power = 512
        while power < topCapacity { power *= 8 }
        guard power == topCapacity, 8 << topShift == topCapacity, topCount <= topCapacity else {
            return "top array holds \(topCount) of \(topCapacity), which is not a power of 8"
        }
        for t in topCount..<topCapacity where topKeys[t] != .max {
            return "top key \(t) past the count is \(hex(topKeys[t])), not a sentinel"
        }
        var seen = 0
        var previousLast: UInt64? = nil
        for t in 0..<topCount {
            let leaf = Int(topLeaves[t])
            let n = Int(leafCounts[leaf])
            guard n > 0, n <= Self.leafCapacity else { return "leaf \(leaf) at top \(t) holds \(n) keys" }
            guard topKeys[t] == leafKeys[leaf * Self.leafCapacity] else {
                return "top key \(t) is \(hex(topKeys[t])), leaf minimum \(hex(leafKeys[leaf * Self.leafCapacity]))"
            }
            for j in 0..<n {
                let entry = leafEntries[leaf * Self.leafCapacity + j]
                let slot = leafSlots[leaf * Self.leafCapacity + j]
                let key = leafKeys[leaf * Self.leafCapacity + j]
                guard slot > 0, slot < slotHighWater, let seg = segments[Int(slot)] else {
                    return "leaf \(leaf) entry \(j) names empty slot \(slot)"
                }
                let span = spans[Int(slot)]
                guard span.base == key, span.last == entry.last, entry.segment?.takeUnretainedValue() === seg else {
                    return "slot \(slot) range [\(hex(span.base)), \(hex(span.last))] disagrees with its leaf entry"
                }
                guard span.last >= span.base else { return "slot \(slot) range reversed" }
                if let p = previousLast, span.base <= p {
                    return "segment at \(hex(span.base)) overlaps or precedes one ending at \(hex(p))"
                }
                previousLast = span.last
                guard seg.slot == slot, seg.base == span.base, seg.size &- 1 == span.last &- span.base else {
                    return "segment \(hex(seg.base)) disagrees with its slot \(slot)"
                }
                seen += 1
            }
        }
        return seen == count ? nil : "tree holds \(seen) segments, count says \(count)"
    }
}
