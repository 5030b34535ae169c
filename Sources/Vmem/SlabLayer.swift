import Synchronization

/// What a quantum cache knows about one slab.
///
/// Every object of the slab is in exactly one of three places, and the
/// record says which:
///
/// * with a user (its *user byte* is 1): handed out by ``QuantumCache/alloc()``
///   and not yet freed;
/// * free in the slab layer (bit set in `freeBits`): never handed to a
///   magazine, or given back by a reap or drain;
/// * cached in a magazine (neither): free, but owned by a CPU or the depot.
///
/// The user state is one byte per object, written with relaxed atomic
/// stores and read with relaxed loads: CPUs set and clear them on the
/// allocation and free fast paths, each under its own CPU lock, and a byte
/// store needs no locked instruction, where flipping a bit of a shared word
/// would (a read-modify-write costs more than the rest of the fast path).
/// A free whose object's byte is 0 is a double free (or the address was never
/// handed out), and is refused. The one double free this misses is one that
/// *races* with the legitimate free of the same object on another CPU: both
/// read 1 before either stores 0. That is a data race in the caller's own
/// use of the address; every double free that happens after the first free
/// is refused. `freeBits` and the list links only change under the
/// slab-layer lock.
///
/// **Layout.** A record is the second half of a 128-byte block whose first
/// cache line holds what the fast paths touch: the key word (`base | 1`
/// while the record describes the slab at `base`, 0 when unused) and the user
/// bytes of objects 0–55; the bytes of objects 56–63 follow the record
/// itself. A free then finds its key check and its user byte on one line
/// (the arena's caches have at most 32 objects per slab). Records live in
/// chunks that are freed only with the cache (they are *type-stable*).
@usableFromInline
struct SlabRecord: ~Copyable {
    @usableFromInline var freeBits: UInt64 = 0
    /// Links on the partial list (slabs with a free object) or the unused-record list.
    @usableFromInline var next: UnsafeMutablePointer<SlabRecord>? = nil
    @usableFromInline var prev: UnsafeMutablePointer<SlabRecord>? = nil
    @usableFromInline var onPartialList = false

    init() {}

    /// Bytes from the block's start to the record.
    @usableFromInline static let offsetInBlock = 64
    /// Bytes from the record to the user bytes of objects 56-63.
    @usableFromInline static let tailStatesOffset = 48
    /// Objects whose user bytes share the key's line.
    @usableFromInline static let headStates = 56
}

extension UnsafeMutablePointer where Pointee == SlabRecord {
    /// `base | 1` while the record describes the slab at `base`; 0 when unused.
    @inlinable @inline(__always)
    var key: UnsafeMutablePointer<Atomic<UInt64>> {
        (UnsafeMutableRawPointer(self) - SlabRecord.offsetInBlock).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    @inlinable
    var base: UInt64 { key.pointee.load(ordering: .relaxed) & ~1 }

    /// The user byte of object `index` (see ``SlabRecord``): 1 while a user
    /// holds the object.
    @inlinable @inline(__always)
    func userState(_ index: Int) -> UnsafeMutablePointer<Atomic<UInt8>> {
        let raw = UnsafeMutableRawPointer(self)
        let p = index < SlabRecord.headStates
            ? raw - SlabRecord.offsetInBlock + 8 + index
            : raw + SlabRecord.tailStatesOffset + (index - SlabRecord.headStates)
        return p.assumingMemoryBound(to: Atomic<UInt8>.self)
    }

    /// The user bytes of the first `count` objects as a bitmap (slow paths and verify).
    func userBits(count: Int) -> UInt64 {
        var bits: UInt64 = 0
        for i in 0..<count where userState(i).pointee.load(ordering: .relaxed) != 0 { bits |= 1 << UInt64(i) }
        return bits
    }

    func clearUserStates() {
        for i in 0..<SlabGeometry.maximumObjectsPerSlab { userState(i).pointee.store(0, ordering: .relaxed) }
    }
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
    /// Magazine fills served from here.
    var fills: UInt64 = 0

    /// One record block (see ``SlabRecord``): two cache lines.
    static let recordStride = 128
    static let recordsPerChunk = 64

    init(geometry: SlabGeometry) {
        self.geometry = geometry
        directory = SlabDirectory(slabShift: geometry.slabShift)
    }

    deinit {
        directory.freeAllTables()
        for c in chunks {
            for i in 0..<Self.recordsPerChunk {
                (c + i * Self.recordStride + SlabRecord.offsetInBlock).assumingMemoryBound(to: SlabRecord.self)
                    .deinitialize(count: 1)
            }
            c.deallocate()
        }
    }

    // MARK: Records and lists

    mutating func newRecord() -> UnsafeMutablePointer<SlabRecord> {
        if unusedRecords == nil {
            precondition(MemoryLayout<SlabRecord>.stride <= SlabRecord.tailStatesOffset)
            // One record per 128-byte block: CPUs writing user bytes of
            // different slabs do not share a line.
            let chunk = UnsafeMutableRawPointer.allocate(byteCount: Self.recordsPerChunk * Self.recordStride,
                                                         alignment: Self.recordStride)
            chunks.append(chunk)
            for i in (0..<Self.recordsPerChunk).reversed() {
                let block = chunk + i * Self.recordStride
                block.bindMemory(to: Atomic<UInt64>.self, capacity: 1).initialize(to: Atomic(0))
                for j in 0..<SlabRecord.headStates {
                    (block + 8 + j).bindMemory(to: Atomic<UInt8>.self, capacity: 1).initialize(to: Atomic(0))
                }
                let r = (block + SlabRecord.offsetInBlock).bindMemory(to: SlabRecord.self, capacity: 1)
                r.initialize(to: SlabRecord())
                for j in 0..<(SlabGeometry.maximumObjectsPerSlab - SlabRecord.headStates) {
                    (block + SlabRecord.offsetInBlock + SlabRecord.tailStatesOffset + j)
                        .bindMemory(to: Atomic<UInt8>.self, capacity: 1).initialize(to: Atomic(0))
                }
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
        r.clearUserStates()
        r.key.pointee.store(base | 1, ordering: .releasing)
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
            let base = cur.base
            unlinkPartial(cur)
            directory.remove(base: base)
            cur.key.pointee.store(0, ordering: .releasing)
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
            let base = r.base
            while n < limit && bits != 0 {
                let i = bits.trailingZeroBitCount
                bits &= bits &- 1
                magazine.setRound(start + n, address: geometry.address(slab: base, index: i), state: r.userState(i))
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
              r.userState(i).pointee.load(ordering: .relaxed) == 0 else { return false }
        r.pointee.freeBits |= bit
        if !r.pointee.onPartialList { linkPartial(r) }
        freeObjects += 1
        return true
    }
}
