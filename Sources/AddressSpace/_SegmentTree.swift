/// The ordered set of segments (`a_segtree`): a B+-tree of height at most
/// two, keyed by segment base.
///
/// illumos keeps an AVL tree. A binary tree costs one dependent load and one
/// unpredictable branch per level — about fourteen of each for 10,000
/// segments, measured here at ~80 ns with hot caches and ~200 ns without,
/// four times the 50 ns budget for `as_segat`. This tree keeps the bases in
/// *leaves* of up to 64 sorted keys and a *top* array holding each leaf's
/// smallest key. A lookup is two branch-free binary searches over contiguous
/// keys (the top array of a 10,000-segment space is a few hundred keys, 2 KiB;
/// a leaf is 512 bytes), so it touches two or three cache lines per level and
/// mispredicts nothing.
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
@usableFromInline
struct _SegmentTree {
    @usableFromInline
    struct Span {
        @usableFromInline var base: UInt64
        @usableFromInline var last: UInt64
    }

    @inlinable static var leafCapacity: Int { 64 }

    // Slots.
    @usableFromInline private(set) var spans: UnsafeMutablePointer<Span>
    /// The segment in each slot (nil for free slots).
    @usableFromInline private(set) var segments: UnsafeMutablePointer<Segment?>
    private var slotCapacity: Int32
    private var slotHighWater: Int32 = 1
    private var freeSlots: [Int32] = []
    private(set) var count = 0

    /// What a leaf knows about the segment at one key: its last address,
    /// slot and object, side by side so that a lookup reads one more cache
    /// line after the keys, not three.
    @usableFromInline
    struct LeafEntry {
        @usableFromInline var last: UInt64
        @usableFromInline var segment: Unmanaged<Segment>?
        @usableFromInline var slot: Int32
    }

    // Leaves: `leafCapacity` keys (bases, searched) and entries per leaf.
    @usableFromInline private(set) var leafKeys: UnsafeMutablePointer<UInt64>
    @usableFromInline private(set) var leafEntries: UnsafeMutablePointer<LeafEntry>
    @usableFromInline private(set) var leafCounts: UnsafeMutablePointer<Int32>
    private var leafPool: Int32
    private var leafHighWater: Int32 = 0
    private var freeLeaves: [Int32] = []

    // Top level: the smallest key of each leaf, in order.
    @usableFromInline private(set) var topKeys: UnsafeMutablePointer<UInt64>
    @usableFromInline private(set) var topLeaves: UnsafeMutablePointer<Int32>
    @usableFromInline private(set) var topCount = 0
    private var topCapacity = 16

    init() {
        slotCapacity = 16
        spans = .allocate(capacity: Int(slotCapacity))
        spans.initialize(repeating: Span(base: 0, last: 0), count: Int(slotCapacity))
        segments = .allocate(capacity: Int(slotCapacity))
        segments.initialize(repeating: nil, count: Int(slotCapacity))
        leafPool = 4
        leafKeys = .allocate(capacity: Int(leafPool) * Self.leafCapacity)
        leafEntries = .allocate(capacity: Int(leafPool) * Self.leafCapacity)
        leafCounts = .allocate(capacity: Int(leafPool))
        leafCounts.initialize(repeating: 0, count: Int(leafPool))
        topKeys = .allocate(capacity: topCapacity)
        topLeaves = .allocate(capacity: topCapacity)
    }

    func deallocate() {
        spans.deallocate()
        segments.deinitialize(count: Int(slotCapacity))
        segments.deallocate()
        leafKeys.deallocate()
        leafEntries.deallocate()
        leafCounts.deallocate()
        topKeys.deallocate()
        topLeaves.deallocate()
    }

    /// Slot ids run below this bound.
    var slotCount: Int { Int(slotHighWater) }

    // MARK: Searching

    /// Below this many keys a search compares them all at once.
    @inlinable static var linearThreshold: Int { 16 }

    /// How many of the `n` sorted keys are `<= x`.
    ///
    /// Branch-free halving narrows the range to at most ``linearThreshold``
    /// keys, which are then compared independently. A binary search is a
    /// chain of dependent load-compare steps (~8 cycles each even in L1); the
    /// final independent compares overlap in the pipeline, so the chain is
    /// about half as long. Invariant: keys before `lo` are `<= x`, keys from
    /// `lo + len` on are `> x`.
    @inlinable @inline(__always)
    static func countNotAbove(_ keys: UnsafePointer<UInt64>, _ n: Int, _ x: UInt64) -> Int {
        var lo = 0, len = n
        while len > linearThreshold {
            let half = len >> 1
            let notAbove = Int(unsafeBitCast(keys[lo &+ half &- 1] <= x, to: UInt8.self))
            let mask = 0 &- notAbove
            lo &+= half & mask
            len = half &+ ((len &- half &- half) & mask)
        }
        var c = 0
        for k in 0..<len { c &+= Int(unsafeBitCast(keys[lo &+ k] <= x, to: UInt8.self)) }
        return lo &+ c
    }

    /// The slot of the segment containing `address`, or 0. Reads only raw
    /// storage, so the lock-held fast path pays for nothing else.
    @inline(__always)
    func find(_ address: UInt64) -> Int32 {
        let t = Self.countNotAbove(topKeys, topCount, address) - 1
        guard t >= 0 else { return 0 }
        let leaf = Int(topLeaves[t])
        let keys = leafKeys + leaf * Self.leafCapacity
        let j = leaf * Self.leafCapacity + Self.countNotAbove(keys, Int(leafCounts[leaf]), address) - 1
        return leafEntries[j].last >= address ? leafEntries[j].slot : 0
    }

    /// The segment containing `address`, or nil: `find` without the detour
    /// through the slot arrays.
    @inlinable @inline(__always)
    func findSegment(_ address: UInt64) -> Segment? {
        let t = Self.countNotAbove(topKeys, topCount, address) - 1
        guard t >= 0 else { return nil }
        let leaf = Int(topLeaves[t])
        let keys = leafKeys + leaf * Self.leafCapacity
        let e = leafEntries + (leaf * Self.leafCapacity + Self.countNotAbove(keys, Int(leafCounts[leaf]), address) - 1)
        return e.pointee.last >= address ? e.pointee.segment?.takeUnretainedValue() : nil
    }

    /// A place in the order: top index and index within that leaf.
    struct Position: Equatable {
        var top: Int
        var index: Int
    }

    @inline(__always)
    private func id(_ p: Position) -> Int32 {
        leafEntries[Int(topLeaves[p.top]) * Self.leafCapacity + p.index].slot
    }

    @inline(__always)
    private func leafCount(_ t: Int) -> Int { Int(leafCounts[Int(topLeaves[t])]) }

    /// The position of the last base `<= address`.
    private func floor(_ address: UInt64) -> Position? {
        let t = Self.countNotAbove(topKeys, topCount, address) - 1
        guard t >= 0 else { return nil }
        let leaf = Int(topLeaves[t])
        let j = Self.countNotAbove(leafKeys + leaf * Self.leafCapacity, Int(leafCounts[leaf]), address) - 1
        return Position(top: t, index: j)
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
        if topCount == 0 {
            let leaf = allocateLeaf()
            leafKeys[Int(leaf) * Self.leafCapacity] = base
            leafEntries[Int(leaf) * Self.leafCapacity] = LeafEntry(last: last, segment: .passUnretained(segment), slot: slot)
            leafCounts[Int(leaf)] = 1
            insertTop(at: 0, key: base, leaf: leaf)
            return slot
        }
        var t = max(Self.countNotAbove(topKeys, topCount, base) - 1, 0)
        var leaf = Int(topLeaves[t])
        var j = Self.countNotAbove(leafKeys + leaf * Self.leafCapacity, Int(leafCounts[leaf]), base)
        if Int(leafCounts[leaf]) == Self.leafCapacity {
            let half = Self.leafCapacity / 2
            let right = Int(allocateLeaf())
            (leafKeys + right * Self.leafCapacity).update(from: leafKeys + leaf * Self.leafCapacity + half, count: half)
            (leafEntries + right * Self.leafCapacity).update(from: leafEntries + leaf * Self.leafCapacity + half, count: half)
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
        let n = Int(leafCounts[leaf])
        if j < n {
            (keys + j + 1).update(from: keys + j, count: n - j)
            (entries + j + 1).update(from: entries + j, count: n - j)
        }
        keys[j] = base
        entries[j] = LeafEntry(last: last, segment: .passUnretained(segment), slot: slot)
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
        let n = Int(leafCounts[leaf])
        if p.index + 1 < n {
            (keys + p.index).update(from: keys + p.index + 1, count: n - p.index - 1)
            (entries + p.index).update(from: entries + p.index + 1, count: n - p.index - 1)
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
        leafCounts[l] = Int32(ln + rn)
        leafCounts[r] = 0
        removeTop(at: right)
        freeLeaves.append(Int32(r))
    }

    private mutating func insertTop(at t: Int, key: UInt64, leaf: Int32) {
        if topCount == topCapacity {
            let newCapacity = topCapacity * 2
            let k = UnsafeMutablePointer<UInt64>.allocate(capacity: newCapacity)
            let l = UnsafeMutablePointer<Int32>.allocate(capacity: newCapacity)
            k.update(from: topKeys, count: topCount)
            l.update(from: topLeaves, count: topCount)
            topKeys.deallocate()
            topLeaves.deallocate()
            topKeys = k
            topLeaves = l
            topCapacity = newCapacity
        }
        if t < topCount {
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
    }

    private mutating func allocateLeaf() -> Int32 {
        if let l = freeLeaves.popLast() { return l }
        if leafHighWater == leafPool {
            let newPool = leafPool * 2
            let k = UnsafeMutablePointer<UInt64>.allocate(capacity: Int(newPool) * Self.leafCapacity)
            let e = UnsafeMutablePointer<LeafEntry>.allocate(capacity: Int(newPool) * Self.leafCapacity)
            let c = UnsafeMutablePointer<Int32>.allocate(capacity: Int(newPool))
            k.update(from: leafKeys, count: Int(leafPool) * Self.leafCapacity)
            e.update(from: leafEntries, count: Int(leafPool) * Self.leafCapacity)
            c.update(from: leafCounts, count: Int(leafPool))
            (c + Int(leafPool)).initialize(repeating: 0, count: Int(newPool - leafPool))
            leafKeys.deallocate()
            leafEntries.deallocate()
            leafCounts.deallocate()
            leafKeys = k
            leafEntries = e
            leafCounts = c
            leafPool = newPool
        }
        let l = leafHighWater
        leafHighWater += 1
        return l
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
                let slot = entry.slot
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
