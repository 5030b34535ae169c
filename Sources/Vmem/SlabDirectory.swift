import Synchronization

/// Finds the record of the slab holding an address, with no lock on the read
/// side, so that every free can check its address (and every allocation can
/// mark its object) without touching a shared lock.
///
/// An open-addressing hash table with linear probing keyed by the slab's base
/// address. Readers are the allocation and free fast paths of any thread;
/// the writer is whoever holds the slab-layer lock (slab creation and
/// release). The rules that make unlocked reads safe:
///
/// * A key is never `0` (empty) or `2` (tombstone): keys are `base | 1`, and
///   a slab is at least 2 bytes, so its base is even.
/// * An entry is published value first, then key with release ordering; a
///   reader that loads the key with acquire ordering sees the value.
/// * A removed entry becomes a tombstone, so probe chains stay intact.
/// * The table never fills (at most half its entries are in use or
///   tombstones), so every probe ends at an empty entry.
/// * Growing (or rebuilding to drop tombstones) publishes a new table and
///   *retires* the old one. Every lookup runs inside some CPU cache's lock,
///   so once the owner has taken and released each CPU lock after the
///   publication, no reader can still be probing a retired table and the
///   owner frees it (``freeRetired()``): an RCU grace period made of the
///   locks the fast path takes anyway.
/// * Records are type-stable (never freed while the cache lives), and a
///   reader re-checks the record's own key after the lookup: a record that
///   was recycled for another slab is recognised as such.
///
/// A legitimate free can never race with the removal of its slab (a slab is
/// released only when none of its objects is allocated), so the only lookups
/// that can see a stale entry are bad frees, which then fail as they should.
@usableFromInline
struct SlabDirectory: ~Copyable {
    // Layout note (thread sanitizer): Swift reports a mutating access to a
    // struct reached through a pointer (a mutating method, `+=`) as a write
    // of the struct's first byte. An atomic there would be "raced" by every
    // such write, so the atomics of this struct are declared after a plain
    // field (stored properties are laid out in declaration order).
    /// Entries holding a key, and holding a key or a tombstone (writer side).
    var live = 0
    var used = 0
    var retired: [UnsafeMutablePointer<Atomic<UInt64>>] = []
    @usableFromInline let slabShift: Int
    /// The current table, as the bit pattern of its address.
    @usableFromInline let table: Atomic<UInt>

    @usableFromInline static var emptyKey: UInt64 { 0 }
    @usableFromInline static var tombstone: UInt64 { 2 }
    static let initialBits = 4
    /// Header words before the entries: the index mask and the hash shift.
    @usableFromInline static var header: Int { 2 }

    init(slabShift: Int) {
        self.slabShift = slabShift
        table = Atomic(UInt(bitPattern: Self.makeTable(bits: Self.initialBits)))
    }

    /// Frees every table; the directory is unusable afterwards. (An
    /// explicit call rather than a `deinit`: the optimiser of Swift 6.3
    /// crashes inlining a non-inlinable `deinit` into the setter of a
    /// `@usableFromInline` property of this type.)
    func freeAllTables() {
        Self.freeTable(currentTable)
        for t in retired { Self.freeTable(t) }
    }

    static func makeTable(bits: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        let capacity = 1 << bits
        let words = header + 2 * capacity
        let t = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: words)
        (t + 0).initialize(to: Atomic(UInt64(capacity - 1)))
        (t + 1).initialize(to: Atomic(UInt64(64 - bits)))
        for i in header..<words { (t + i).initialize(to: Atomic(0)) }
        return t
    }

    static func freeTable(_ t: UnsafeMutablePointer<Atomic<UInt64>>) {
        let capacity = Int(t[0].load(ordering: .relaxed)) + 1
        t.deinitialize(count: header + 2 * capacity)
        t.deallocate()
    }

    @inlinable @inline(__always)
    var currentTable: UnsafeMutablePointer<Atomic<UInt64>> {
        // Never null: a table exists from init to deinit.
        UnsafeMutablePointer(bitPattern: table.load(ordering: .acquiring)).unsafelyUnwrapped
    }

    @inlinable @inline(__always)
    func home(_ key: UInt64, in t: UnsafeMutablePointer<Atomic<UInt64>>) -> Int {
        let shift = t[1].load(ordering: .relaxed)
        let slabNumber = key &>> UInt64(truncatingIfNeeded: slabShift)
        return Int(truncatingIfNeeded: (slabNumber &* 0x9E37_79B9_7F4A_7C15) &>> shift)
    }

    /// The record registered for the slab at `base`, or nil.
    @inlinable @inline(__always)
    func lookup(base: UInt64) -> UnsafeMutablePointer<SlabRecord>? {
        let key = base | 1
        let t = currentTable
        let mask = Int(truncatingIfNeeded: t[0].load(ordering: .relaxed))
        var i = home(key, in: t)
        while true {
            let e = Self.header &+ 2 &* i
            let k = t[e].load(ordering: .acquiring)
            if k == key {
                let value = t[e &+ 1].load(ordering: .relaxed)
                guard let record = UnsafeMutablePointer<SlabRecord>(bitPattern: UInt(value)),
                      record.key.pointee.load(ordering: .acquiring) == key else { return nil }
                return record
            }
            if k == Self.emptyKey { return nil }
            i = (i &+ 1) & mask
        }
    }

    /// Registers `record` for the slab at `base`, which must not be registered.
    mutating func insert(base: UInt64, record: UnsafeMutablePointer<SlabRecord>) {
        var t = currentTable
        var capacity = Int(t[0].load(ordering: .relaxed)) + 1
        if 2 * (used + 1) > capacity {
            grow(minimumCapacity: 4 * (live + 1))
            t = currentTable
            capacity = Int(t[0].load(ordering: .relaxed)) + 1
        }
        let key = base | 1
        var i = home(key, in: t)
        while true {
            let e = Self.header + 2 * i
            let k = t[e].load(ordering: .relaxed)
            if k == Self.emptyKey || k == Self.tombstone {
                t[e + 1].store(UInt64(UInt(bitPattern: record)), ordering: .relaxed)
                t[e].store(key, ordering: .releasing)
                live += 1
                if k == Self.emptyKey { used += 1 }
                return
            }
            i = (i + 1) & (capacity - 1)
        }
    }

    /// Unregisters the slab at `base`; returns false when it was not registered.
    @discardableResult
    mutating func remove(base: UInt64) -> Bool {
        let t = currentTable
        let mask = Int(t[0].load(ordering: .relaxed))
        let key = base | 1
        var i = home(key, in: t)
        while true {
            let e = Self.header + 2 * i
            let k = t[e].load(ordering: .relaxed)
            if k == key {
                t[e].store(Self.tombstone, ordering: .releasing)
                live -= 1
                return true
            }
            if k == Self.emptyKey { return false }
            i = (i + 1) & mask
        }
    }

    /// Rebuilds into a table of at least `minimumCapacity` entries (dropping
    /// tombstones), publishes it and retires the old one.
    mutating func grow(minimumCapacity: Int) {
        let old = currentTable
        let oldCapacity = Int(old[0].load(ordering: .relaxed)) + 1
        var bits = Self.initialBits
        while 1 << bits < minimumCapacity { bits += 1 }
        let new = Self.makeTable(bits: bits)
        let mask = (1 << bits) - 1
        for j in 0..<oldCapacity {
            let k = old[Self.header + 2 * j].load(ordering: .relaxed)
            guard k != Self.emptyKey && k != Self.tombstone else { continue }
            var i = home(k, in: new)
            while new[Self.header + 2 * i].load(ordering: .relaxed) != Self.emptyKey { i = (i + 1) & mask }
            new[Self.header + 2 * i + 1].store(old[Self.header + 2 * j + 1].load(ordering: .relaxed), ordering: .relaxed)
            new[Self.header + 2 * i].store(k, ordering: .relaxed)
        }
        used = live
        table.store(UInt(bitPattern: new), ordering: .releasing)
        retired.append(old)
    }

    /// Bytes of the current table and of the retired ones not yet freed.
    var tableBytes: Int {
        func bytes(_ t: UnsafeMutablePointer<Atomic<UInt64>>) -> Int {
            (Self.header + 2 * (Int(t[0].load(ordering: .relaxed)) + 1)) * MemoryLayout<UInt64>.stride
        }
        return retired.reduce(bytes(currentTable)) { $0 + bytes($1) }
    }

    /// Whether retired tables wait for a grace period.
    var hasRetired: Bool { !retired.isEmpty }

    /// Frees the retired tables. Only after every reader that might have
    /// loaded one has finished (see the type's documentation).
    mutating func freeRetired() {
        for t in retired { Self.freeTable(t) }
        retired.removeAll(keepingCapacity: true)
    }

    /// Every registered (base, record) pair, in table order (writer side).
    func forEach(_ body: (UInt64, UnsafeMutablePointer<SlabRecord>) -> Void) {
        let t = currentTable
        let capacity = Int(t[0].load(ordering: .relaxed)) + 1
        for j in 0..<capacity {
            let k = t[Self.header + 2 * j].load(ordering: .relaxed)
            guard k != Self.emptyKey && k != Self.tombstone else { continue }
            let v = t[Self.header + 2 * j + 1].load(ordering: .relaxed)
            if let r = UnsafeMutablePointer<SlabRecord>(bitPattern: UInt(v)) { body(k & ~1, r) }
        }
    }
}
