import Synchronization

/// What a quantum cache knows about one slab.
///
/// Every object of the slab is in exactly one of three places, and the
/// record says which:
///
/// * with a user (one of its *user bytes* is 1): handed out by
///   ``QuantumCache/alloc()`` and not yet freed;
/// * free in the slab layer (bit set in `freeBits`): never handed to a
///   magazine, or given back by a reap or drain;
/// * cached in a magazine (neither): free, but owned by a CPU or the depot.
///
/// **User bytes, one line per CPU.** A checked cache writes an object's user
/// state on every allocation and free. If the CPUs shared one byte per
/// object, two CPUs holding objects of one slab would pass that slab's line
/// back and forth on most operations; and they do hold such objects, because
/// full magazines move between CPUs through the depot and, over a long run,
/// mix every slab's objects among them (measured: 58-67% of the slabs of the
/// two-thread `threads` benchmark). So each CPU slot has a line of its own:
/// an allocation sets the object's byte in the line of the CPU it runs on,
/// and a free clears the byte in its own CPU's line when that one is set,
/// which is the usual case (the thread that allocated frees, on the same
/// CPU). A free whose own byte is 0 looks at the other CPUs' lines (slow, and
/// the only time a CPU writes another's line): an object allocated on one
/// CPU and freed on another is found there. The object is with a user when
/// any line has its byte set; never more than one does.
///
/// The bytes are written with relaxed atomic stores and read with relaxed
/// loads, each under the writer's CPU lock; a byte store needs no locked
/// instruction, where flipping a bit of a shared word would. A free that finds
/// no byte set is a double free (or the address was never handed out), and
/// is refused. The one double free this misses is one that *races* with the
/// legitimate free of the same object on another CPU: both read 1 before
/// either stores 0. That is a data race in the caller's own use of the
/// address; every double free that happens after the first free is refused.
/// `freeBits` and the list links only change under the slab-layer lock.
///
/// **Layout.** A record is one cache line: the key word (`base | 1` while
/// the record describes the slab at `base`, 0 when unused), then this struct,
/// which the fast paths only read. The user bytes are elsewhere: a chunk of
/// ``SlabLayer/recordsPerChunk`` records has one *state area* per CPU line,
/// each a page of 64-byte lines, one line per record (object `i` at byte `i`).
/// So the lines one CPU writes sit next to each other, and the lines of
/// different CPUs are a page apart. Both matter: x86 fetches lines in
/// 128-byte pairs, and a CPU writing a line whose pair another CPU keeps
/// reading slows both down nearly as much as sharing the line itself would
/// (measured here: a record of a key line and two CPU lines side by side
/// gained nothing over one shared line; the same lines 128 bytes apart ran
/// the two-thread benchmark 30% faster). A free therefore reads the key's
/// line, which stays clean in every CPU's cache, and writes a line that only
/// its CPU writes. Records and state areas live in chunks that are freed only
/// with the cache (they are *type-stable*).
@usableFromInline
struct SlabRecord: ~Copyable {
    @usableFromInline var freeBits: UInt64 = 0
    /// Links on the partial list (slabs with a free object) or the unused-record list.
    @usableFromInline var next: UnsafeMutablePointer<SlabRecord>? = nil
    @usableFromInline var prev: UnsafeMutablePointer<SlabRecord>? = nil
    @usableFromInline var onPartialList = false
    /// This record's user bytes in line 0; set once, with the chunk.
    @usableFromInline let states: UnsafeMutablePointer<Atomic<UInt8>>

    init(states: UnsafeMutablePointer<Atomic<UInt8>>) { self.states = states }

    /// Bytes from the block's start to the record (the key comes first).
    @usableFromInline static let offsetInBlock = 8
    /// Bytes per record block, and per record in a state area: one line.
    @usableFromInline static let lineBytes = 64
}

extension UnsafeMutablePointer where Pointee == SlabRecord {
    /// `base | 1` while the record describes the slab at `base`; 0 when unused.
    @inlinable @inline(__always)
    var key: UnsafeMutablePointer<Atomic<UInt64>> {
        (UnsafeMutableRawPointer(self) - SlabRecord.offsetInBlock).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    @inlinable
    var base: UInt64 { key.pointee.load(ordering: .relaxed) & ~1 }

    /// Object `index`'s user byte in line 0: what a magazine round keeps (see
    /// ``Magazine/userState(_:)``); the byte of line `s` is
    /// ``SlabLayer/stateLineOffset(_:)`` bytes further on.
    @inlinable @inline(__always)
    func userState(_ index: Int) -> UnsafeMutablePointer<Atomic<UInt8>> {
        pointee.states + index
    }

    /// Object `index`'s user byte in line `line`.
    @inlinable @inline(__always)
    func userState(_ index: Int, line: Int) -> UnsafeMutablePointer<Atomic<UInt8>> {
        userState(index) + line &* SlabLayer.stateAreaBytes
    }

    /// Whether a user holds object `index`: its byte is set in one of the
    /// first `lines` lines.
    func isAllocated(_ index: Int, lines: Int) -> Bool {
        for s in 0..<lines where userState(index, line: s).pointee.load(ordering: .relaxed) != 0 { return true }
        return false
    }

    /// The objects of the first `count` that a user holds, as a bitmap (slow
    /// paths and verify), and those whose byte is set in more than one line.
    func userBits(count: Int, lines: Int) -> (held: UInt64, twice: UInt64) {
        var bits: UInt64 = 0, twice: UInt64 = 0
        for s in 0..<lines {
            for i in 0..<count where userState(i, line: s).pointee.load(ordering: .relaxed) != 0 {
                let bit: UInt64 = 1 << UInt64(i)
                if bits & bit != 0 { twice |= bit }
                bits |= bit
            }
        }
        return (bits, twice)
    }

    func clearUserStates(lines: Int) {
        for s in 0..<lines {
            for i in 0..<SlabGeometry.maximumObjectsPerSlab { userState(i, line: s).pointee.store(0, ordering: .relaxed) }
        }
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

    /// State areas per chunk (user-byte lines per record): one per CPU
    /// slot, up to ``maximumStateLines`` (CPU slot `c` writes line
    /// `c % stateLines`).
    let stateLines: Int
    var stateChunks: [UnsafeMutableRawPointer] = []
    static let recordsPerChunk = 64
    /// Bytes of one state area: a line per record of a chunk (a page).
    @usableFromInline static let stateAreaBytes = recordsPerChunk * SlabRecord.lineBytes
    /// Past eight CPUs, CPU slots share lines (each line is shared by
    /// `cpus / 8` of them) rather than making every slab's metadata larger
    /// still: 576 bytes per slab at most.
    static let maximumStateLines = 8

    init(geometry: SlabGeometry, cpuCount: Int = 1) {
        self.geometry = geometry
        directory = SlabDirectory(slabShift: geometry.slabShift)
        stateLines = min(max(cpuCount, 1), Self.maximumStateLines)
    }

    /// What CPU slot `slot` adds to a round's user-byte pointer to reach its
    /// own line.
    func stateLineOffset(_ slot: Int) -> Int { (slot % stateLines) * Self.stateAreaBytes }

    /// Bytes of metadata per chunk of records: the records and their state areas.
    var chunkBytes: Int { Self.recordsPerChunk * SlabRecord.lineBytes + stateLines * Self.stateAreaBytes }

    deinit {
        directory.freeAllTables()
        for c in chunks {
            for i in 0..<Self.recordsPerChunk {
                (c + i * SlabRecord.lineBytes + SlabRecord.offsetInBlock).assumingMemoryBound(to: SlabRecord.self)
                    .deinitialize(count: 1)
            }
            c.deallocate()
        }
        for c in stateChunks { c.deallocate() }
    }

    // MARK: Records and lists

    mutating func newRecord() -> UnsafeMutablePointer<SlabRecord> {
        if unusedRecords == nil {
            precondition(SlabRecord.offsetInBlock + MemoryLayout<SlabRecord>.stride <= SlabRecord.lineBytes)
            let chunk = UnsafeMutableRawPointer.allocate(byteCount: Self.recordsPerChunk * SlabRecord.lineBytes,
                                                         alignment: 2 * SlabRecord.lineBytes)
            // Page-aligned, so that each CPU's area starts a line pair of its own.
            let states = UnsafeMutableRawPointer.allocate(byteCount: stateLines * Self.stateAreaBytes,
                                                          alignment: Self.stateAreaBytes)
            states.initializeMemory(as: UInt8.self, repeating: 0, count: stateLines * Self.stateAreaBytes)
            let stateBytes = states.bindMemory(to: Atomic<UInt8>.self, capacity: stateLines * Self.stateAreaBytes)
            chunks.append(chunk)
            stateChunks.append(states)
            for i in (0..<Self.recordsPerChunk).reversed() {
                let block = chunk + i * SlabRecord.lineBytes
                block.bindMemory(to: Atomic<UInt64>.self, capacity: 1).initialize(to: Atomic(0))
                let r = (block + SlabRecord.offsetInBlock).bindMemory(to: SlabRecord.self, capacity: 1)
                r.initialize(to: SlabRecord(states: stateBytes + i * SlabRecord.lineBytes))
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
        r.clearUserStates(lines: stateLines)
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
        guard r.pointee.freeBits & bit == 0, !r.isAllocated(i, lines: stateLines) else { return false }
        r.pointee.freeBits |= bit
        if !r.pointee.onPartialList { linkPartial(r) }
        freeObjects += 1
        return true
    }
}
