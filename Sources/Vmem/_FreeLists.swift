/// One free list, stored as a compact array in list order reversed: the
/// list's head is the array's last element, so "join at the head" is an
/// append. A segment that leaves the list leaves a tombstone (tag 0, size 0:
/// too small for any request, so a search need not look at its tag) that the
/// next compaction sweeps away; the array never ends in a tombstone, so the
/// head is always `entries[count - 1]`.
///
/// Why not a linked list, as illumos has: unlinking a segment touches both of
/// its list neighbours, and a best-fit walk touches every member — each a
/// random boundary tag, each a likely cache miss. Here deleting touches one
/// array slot, and a walk reads eight-byte entries in a row, looking at a
/// tag only when the size says it could fit. The order, and so every
/// address handed out, is exactly the linked list's.
@usableFromInline
struct FreeListArray {
    @usableFromInline var entries: UnsafeMutablePointer<FreeEntry>?
    @usableFromInline var count: Int = 0
    @usableFromInline var capacity: Int = 0
    /// Entries that are not tombstones.
    @usableFromInline var live: Int = 0

    @inlinable init() {}
}

/// Eight bytes, so that a walk reads eight entries per cache line and a free
/// segment costs 8 bytes of list (times the array's slack), not 16.
@usableFromInline
struct FreeEntry {
    /// The segment's size in quanta (kept current when it shrinks in place),
    /// or `UInt32.max` when it does not fit: only on a *wide* list (see
    /// ``ArenaCore/isWideList(_:)``), whose sizes are read from the tags.
    @usableFromInline var quanta: UInt32
    /// The segment's tag, or 0 for a tombstone (whose size is 0 too).
    @usableFromInline var tag: TagIndex

    @inlinable init(quanta: UInt32, tag: TagIndex) { self.quanta = quanta; self.tag = tag }
}

extension ArenaCore {
    /// Whether list `i` may hold sizes of 2^31 quanta or more, which its
    /// entries cannot carry. Every size on a narrower list is below 2^31
    /// quanta, and so is every request that starts a walk there.
    @inlinable @inline(__always)
    func isWideList(_ i: Int) -> Bool { i &- qshift >= 31 }

    /// The entry for a free segment of `size` bytes.
    @inlinable @inline(__always)
    func entryQuanta(_ size: UInt64) -> UInt32 {
        UInt32(clamping: size &>> UInt64(truncatingIfNeeded: qshift))
    }

    /// The size of the segment entry `e` of list `i` stands for (0 for a tombstone).
    @inlinable @inline(__always)
    func entrySize(_ e: FreeEntry, list i: Int) -> UInt64 {
        if isWideList(i) { return e.tag == 0 ? 0 : tags[Int(e.tag)].size }
        return UInt64(e.quanta) &<< UInt64(truncatingIfNeeded: qshift)
    }

    static func makeFreeLists() -> UnsafeMutablePointer<FreeListArray> {
        let p = UnsafeMutablePointer<FreeListArray>.allocate(capacity: 64)
        p.initialize(repeating: FreeListArray(), count: 64)
        return p
    }

    func deallocateFreeLists() {
        for i in 0..<64 { lists[i].entries?.deallocate() }
        lists.deallocate()
    }

    /// Puts free segment `t` at the head of its list. Its `prev` field records
    /// its position in the list's array.
    @inlinable @inline(__always)
    mutating func freelistInsert(_ t: TagIndex) {
        let tag = tags + Int(t)
        let size = tag.pointee.size
        let i = freeListIndex(size)
        let l = lists + i
        if l.pointee.count == l.pointee.capacity { growFreeList(i) }
        let pos = l.pointee.count
        l.pointee.entries.unsafelyUnwrapped[pos] = FreeEntry(quanta: entryQuanta(size), tag: t)
        // Counts are far below Int.max: wrapping arithmetic spares the overflow checks.
        l.pointee.count = pos &+ 1
        l.pointee.live &+= 1
        tag.pointee.kind = kindFree
        tag.pointee.prev = TagIndex(truncatingIfNeeded: pos)
        freemap |= 1 &<< UInt64(truncatingIfNeeded: i)
    }

    /// Takes free segment `t` off its list (its size must still be the one
    /// that chose the list).
    @inlinable @inline(__always)
    mutating func freelistDelete(_ t: TagIndex) {
        let i = freeListIndex(tags[Int(t)].size)
        let l = lists + i
        let pos = Int(tags[Int(t)].prev)
        if pos == l.pointee.count &- 1 {
            freelistPopHead(i)
            return
        }
        l.pointee.entries.unsafelyUnwrapped[pos] = FreeEntry(quanta: 0, tag: 0)
        // Not the head, which is live: the list keeps at least that.
        let live = l.pointee.live &- 1
        l.pointee.live = live
        if l.pointee.count > live &+ (live &>> 1) &+ 32 {
            // Sweep once a third of the list is tombstones. An array's
            // capacity follows the highest count it ever reaches, so this
            // threshold sets the metadata of a long run: sweeping at half
            // left instant fit at 64.8 bytes per allocated segment after 40
            // million pairs (63.5 after 2 million); at a third it stays at
            // 61.0. It costs instant fit 11 instructions per pair and no
            // time that paired runs could see (ratios 0.98-1.01).
            compactFreeList(i)
        }
    }

    /// Takes the head off non-empty list `i`: no tombstone (the slot falls
    /// outside the list), and any tombstones it uncovers go with it, so that
    /// the list never ends in one.
    @inlinable @inline(__always)
    mutating func freelistPopHead(_ i: Int) {
        let l = lists + i
        let live = l.pointee.live &- 1
        l.pointee.live = live
        if live == 0 {
            l.pointee.count = 0
            freemap &= ~(1 &<< UInt64(truncatingIfNeeded: i))
            return
        }
        let e = l.pointee.entries.unsafelyUnwrapped
        var c = l.pointee.count &- 1
        while e[c &- 1].tag == 0 { c &-= 1 }
        l.pointee.count = c
    }

    /// Records that free segment `t` shrank in place (still on the same list).
    @inlinable @inline(__always)
    mutating func freelistResized(_ t: TagIndex) {
        let i = freeListIndex(tags[Int(t)].size)
        lists[i].entries.unsafelyUnwrapped[Int(tags[Int(t)].prev)].quanta = entryQuanta(tags[Int(t)].size)
    }

    /// The head of non-empty list `i`.
    @inlinable @inline(__always)
    func freelistHead(_ i: Int) -> TagIndex {
        lists[i].entries.unsafelyUnwrapped[lists[i].count - 1].tag
    }

    @usableFromInline
    mutating func growFreeList(_ i: Int) {
        // Sweep when at least half are tombstones, otherwise grow: a sweep
        // rewrites the position in every moved member's tag, a likely cache
        // miss each, so it must free at least as many slots as it moves
        // entries (at a quarter it moved three entries per slot it freed).
        if (lists[i].count - lists[i].live) * 2 >= lists[i].count && lists[i].count > 0 {
            compactFreeList(i)
            return
        }
        // A quarter more, not double: an array at its plateau then carries
        // an eighth spare on average instead of a half. Growth is rare (the
        // list's highest count so far), so the extra copies cost nothing
        // measurable in steady state.
        let newCapacity = max(16, lists[i].capacity + lists[i].capacity / 4)
        let fresh = UnsafeMutablePointer<FreeEntry>.allocate(capacity: newCapacity)
        if let old = lists[i].entries {
            fresh.moveInitialize(from: old, count: lists[i].count)
            old.deallocate()
        }
        lists[i].entries = fresh
        lists[i].capacity = newCapacity
    }

    @usableFromInline
    mutating func compactFreeList(_ i: Int) {
        guard let e = lists[i].entries else { return }
        let count = lists[i].count
        // Entries before the first tombstone stay where they are.
        var w = 0
        while w < count && e[w].tag != 0 { w &+= 1 }
        // Without a branch: whether an entry is a tombstone is a coin toss
        // the predictor loses. A tombstone is copied too and then written
        // over; its "position" lands in tag 0, the none tag, which no one reads.
        var r = w
        let tags = self.tags
        while r < count {
            let entry = e[r]
            e[w] = entry
            tags[Int(entry.tag)].prev = TagIndex(truncatingIfNeeded: w)
            w &+= entry.tag != 0 ? 1 : 0
            r &+= 1
        }
        lists[i].count = w
    }
}
