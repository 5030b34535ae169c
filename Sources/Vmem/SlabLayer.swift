import Synchronization

/// What a quantum cache knows about one slab.
///
/// Every object of the slab is in exactly one of three places, and the two
/// bitmaps say which:
///
/// * with a user (bit set in `userBits`): handed out by ``QuantumCache/alloc()``
///   and not yet freed;
/// * free in the slab layer (bit set in `freeBits`): never handed to a
///   magazine, or given back by a reap or drain;
/// * cached in a magazine (neither bit): free, but owned by a CPU or the depot.
///
/// `userBits` is atomic because CPUs flip its bits on the allocation and
/// free fast paths, each under its own CPU lock; `freeBits` and the list
/// links only change under the slab-layer lock. A free whose object does not
/// have its user bit set is a double free (or the address was never handed
/// out), and is refused.
///
/// Records live in chunks that are freed only with the cache (they are
/// *type-stable*): a record on the free list has `key == 0`.
@usableFromInline
struct SlabRecord: ~Copyable {
    // Layout note (thread sanitizer): Swift reports a mutating access to a
    // struct reached through a pointer (a mutating method, `+=`) as a write
    // of the struct's first byte. An atomic there would be "raced" by every
    // such write, so the atomics of this struct are declared after a plain
    // field (stored properties are laid out in declaration order).
    @usableFromInline var freeBits: UInt64 = 0
    /// Links on the partial list (slabs with a free object) or the unused-record list.
    @usableFromInline var next: UnsafeMutablePointer<SlabRecord>? = nil
    @usableFromInline var prev: UnsafeMutablePointer<SlabRecord>? = nil
    @usableFromInline var onPartialList = false
    /// `base | 1` while the record describes the slab at `base`; 0 when unused.
    @usableFromInline let key: Atomic<UInt64>
    @usableFromInline let userBits: Atomic<UInt64>

    init() {
        key = Atomic(0)
        userBits = Atomic(0)
    }

    @inlinable
    var base: UInt64 { key.load(ordering: .relaxed) & ~1 }
}

/// The bottom layer of a quantum cache: the slabs it has obtained from the
/// arena, and the objects free in them.
///
/// The magazine layer fills from here when the depot has no full magazine,
/// and a reap or drain returns objects here; a slab whose objects are all
/// back is *wholly free* and goes back to the arena on the next reap or
/// drain (not at once, so that a cache that breathes in and out around a
/// slab boundary does not call the arena every time).
///
/// Everything but the directory's read side is protected by the slab-layer
/// lock, which is the sleeping arena lock type (sections can be long: a fill walks slabs,
/// a reap returns whole magazines).
@usableFromInline
struct SlabLayer: ~Copyable {
    @usableFromInline let geometry: SlabGeometry
    @usableFromInline var directory: SlabDirectory
    /// Slabs with at least one free object; filled from the head.
    var partialHead: UnsafeMutablePointer<SlabRecord>? = nil
    var unusedRecords: UnsafeMutablePointer<SlabRecord>? = nil
    var chunks: [UnsafeMutableRawPointer] = []
    /// Slabs held, and objects free in them.
    var slabCount = 0
    var freeObjects = 0
    var slabsCreated: UInt64 = 0
    var slabsReleased: UInt64 = 0
    /// Backend calls that returned no slab (or an unusable one).
    var slabFailures: UInt64 = 0
    /// Magazine fills served from here.
    var fills: UInt64 = 0

    static let recordStride = 64
    static let recordsPerChunk = 64

    init(geometry: SlabGeometry) {
        self.geometry = geometry
        directory = SlabDirectory(slabShift: geometry.slabShift)
    }

    deinit {
        directory.freeAllTables()
        for c in chunks {
            for i in 0..<Self.recordsPerChunk {
                (c + i * Self.recordStride).assumingMemoryBound(to: SlabRecord.self).deinitialize(count: 1)
            }
            c.deallocate()
        }
    }

    // MARK: Records and lists

    mutating func newRecord() -> UnsafeMutablePointer<SlabRecord> {
        if unusedRecords == nil {
            precondition(MemoryLayout<SlabRecord>.stride <= Self.recordStride)
            // One record per 64-byte line: CPUs flipping user bits of
            // different slabs do not share a line.
            let chunk = UnsafeMutableRawPointer.allocate(byteCount: Self.recordsPerChunk * Self.recordStride,
                                                         alignment: Self.recordStride)
            chunks.append(chunk)
            for i in (0..<Self.recordsPerChunk).reversed() {
                let r = (chunk + i * Self.recordStride).bindMemory(to: SlabRecord.self, capacity: 1)
                r.initialize(to: SlabRecord())
                r.pointee.next = unusedRecords
                unusedRecords = r
            }
        }
        let r = unusedRecords.unsafelyUnwrapped
        unusedRecords = r.pointee.next
        r.pointee.next = nil
        return r
    }

    mutating func linkPartial(_ r: UnsafeMutablePointer<SlabRecord>) {
        r.pointee.prev = nil
        r.pointee.next = partialHead
        partialHead?.pointee.prev = r
        partialHead = r
        r.pointee.onPartialList = true
    }

    mutating func unlinkPartial(_ r: UnsafeMutablePointer<SlabRecord>) {
        if let p = r.pointee.prev { p.pointee.next = r.pointee.next } else { partialHead = r.pointee.next }
        r.pointee.next?.pointee.prev = r.pointee.prev
        r.pointee.next = nil
        r.pointee.prev = nil
        r.pointee.onPartialList = false
    }

    // MARK: Slabs

    enum Adoption { case adopted, misaligned, alreadyHeld }

    /// Adopts a slab from the backend, all of its objects free. Refuses a
    /// misaligned or wrapping address, or a slab it already holds: a broken
    /// backend must not make the cache hand out an object twice.
    mutating func addSlab(_ base: UInt64) -> Adoption {
        guard base & geometry.offsetMask == 0,
              !base.addingReportingOverflow(geometry.slabSize - 1).overflow else { return .misaligned }
        guard directory.lookup(base: base) == nil else { return .alreadyHeld }
        let r = newRecord()
        r.pointee.freeBits = geometry.allObjects
        r.pointee.userBits.store(0, ordering: .relaxed)
        r.pointee.key.store(base | 1, ordering: .releasing)
        directory.insert(base: base, record: r)
        linkPartial(r)
        slabCount += 1
        freeObjects += geometry.objectsPerSlab
        slabsCreated += 1
        return .adopted
    }

    /// Takes the wholly free slabs out of the layer and returns their bases;
    /// the caller gives them back to the backend after dropping the lock.
    mutating func removeWhollyFreeSlabs() -> [UInt64] {
        var released: [UInt64] = []
        var r = partialHead
        while let cur = r {
            r = cur.pointee.next
            guard cur.pointee.freeBits == geometry.allObjects else { continue }
            let base = cur.pointee.base
            unlinkPartial(cur)
            directory.remove(base: base)
            cur.pointee.key.store(0, ordering: .releasing)
            cur.pointee.freeBits = 0
            cur.pointee.next = unusedRecords
            unusedRecords = cur
            slabCount -= 1
            freeObjects -= geometry.objectsPerSlab
            slabsReleased += 1
            released.append(base)
        }
        return released
    }

    // MARK: Objects

    /// Moves up to `limit` free objects into `magazine` from index `start`
    /// on, taking from the slabs at the head of the partial list. Returns how
    /// many it moved (0 only when no slab has a free object).
    mutating func take(into magazine: Magazine, from start: Int, limit: Int) -> Int {
        var n = 0
        while n < limit, let r = partialHead {
            var bits = r.pointee.freeBits
            let base = r.pointee.base
            while n < limit && bits != 0 {
                let i = bits.trailingZeroBitCount
                bits &= bits &- 1
                magazine[start + n] = geometry.address(slab: base, index: i)
                n += 1
            }
            r.pointee.freeBits = bits
            if bits == 0 { unlinkPartial(r) }
        }
        freeObjects -= n
        if n > 0 { fills += 1 }
        return n
    }

    /// Returns an object that a magazine held. Returns false (and changes
    /// nothing) when the address is not a cached object of a slab here.
    @discardableResult
    mutating func give(_ address: UInt64) -> Bool {
        guard let r = directory.lookup(base: geometry.slabBase(address)),
              let i = geometry.objectIndex(address) else { return false }
        let bit: UInt64 = 1 << UInt64(i)
        guard r.pointee.freeBits & bit == 0,
              r.pointee.userBits.load(ordering: .relaxed) & bit == 0 else { return false }
        r.pointee.freeBits |= bit
        if !r.pointee.onPartialList { linkPartial(r) }
        freeObjects += 1
        return true
    }
}
