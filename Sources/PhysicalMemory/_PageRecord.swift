/// One run of `page_t`s, as stored in the record slab: `count` pages at
/// consecutive frames `pfn ..< pfn + count`, named at consecutive offsets
/// `offset, offset + 4096, ...` of one vnode, all in the same state (flags,
/// page lock, lock counts). Most records are one page; a `page_create_va` of
/// many pages makes one record per physically contiguous run, and a call on
/// one page of a run splits it first (see ``_PageFrameTable/isolate(_:)``).
///
/// Records exist only for frames that are not on the free list: in use, on the
/// cache list, or boot pages. Cached and boot records are always one page. Links are 32-bit slot numbers (0 = none) rather
/// than references so that the slab is one flat, trivially-copyable buffer with
/// no reference counting on the hot paths.
struct _PageRecord {
    /// The first frame of the run.
    var pfn: UInt64
    /// Pages in the run (1 for a single page; 0 only in a free slot).
    var count: UInt64
    /// Identity offset of the first page; meaningful when `vnode != 0`.
    var offset: UInt64
    /// Identity vnode number; 0 for a page without identity (boot pages).
    var vnode: UInt32
    /// Next record in the frame-index chain; next free slot while the slot is free.
    var frameNext: UInt32
    /// Next record in the identity-hash chain (illumos `p_hash`).
    var hashNext: UInt32
    /// Cache-list links (illumos `p_prev` / `p_next`).
    var listPrev: UInt32
    var listNext: UInt32
    /// `p_lckcnt`
    var lockCount: UInt16
    /// `p_cowcnt`
    var cowCount: UInt16
    /// Number of `SE_SHARED` holders; the exclusive holder is a flag.
    var shareCount: UInt16
    var flags: Flags

    struct Flags: OptionSet {
        let rawValue: UInt8
        /// The slot holds a page (not on the slab's free-slot list).
        static let live = Flags(rawValue: 0x01)
        /// `SE_EXCL` is held.
        static let exclusive = Flags(rawValue: 0x02)
        /// On the cache list (`PP_ISFREE` with an identity).
        static let cached = Flags(rawValue: 0x04)
        /// A boot page (`PP_ISBOOTPAGES`).
        static let boot = Flags(rawValue: 0x08)
        /// `PP_ISNORELOC`
        static let noRelocate = Flags(rawValue: 0x10)
    }

    static let empty = _PageRecord(pfn: 0, count: 0, offset: 0, vnode: 0, frameNext: 0, hashNext: 0,
                                   listPrev: 0, listNext: 0, lockCount: 0, cowCount: 0,
                                   shareCount: 0, flags: [])

    var lockState: PageLockState {
        if flags.contains(.exclusive) { return .exclusive }
        if shareCount > 0 { return .shared(count: shareCount) }
        return .unlocked
    }
}

/// The slab of page records: a growable array of slots with a free-slot list.
///
/// Slot numbers are stable for a record's whole life (growth copies the
/// buffer but keeps positions), so the indices can hold them. Slot 0 is never
/// used: it is the "none" link.
struct _RecordSlab {
    private(set) var base: UnsafeMutablePointer<_PageRecord>
    private(set) var capacity: UInt32
    /// The first slot never handed out.
    private(set) var highWater: UInt32 = 1
    private var freeHead: UInt32 = 0
    private(set) var liveCount: Int = 0

    init(initialCapacity: UInt32 = 64) {
        capacity = max(initialCapacity, 2)
        base = .allocate(capacity: Int(capacity))
        base.initialize(repeating: .empty, count: Int(capacity))
    }

    func deallocate() { base.deallocate() }

    @inline(__always)
    subscript(slot: UInt32) -> _PageRecord {
        unsafeAddress { UnsafePointer(base + Int(slot)) }
        nonmutating unsafeMutableAddress { base + Int(slot) }
    }

    /// A fresh slot for a record, or nil when 2^32 - 1 records exist.
    @inline(__always)
    mutating func allocate() -> UInt32? {
        let slot: UInt32
        if freeHead != 0 {
            slot = freeHead
            freeHead = base[Int(slot)].frameNext
        } else {
            if highWater == capacity {
                guard grow() else { return nil }
            }
            slot = highWater
            highWater += 1
        }
        liveCount += 1
        return slot
    }

    @inline(__always)
    mutating func release(_ slot: UInt32) {
        base[Int(slot)] = .empty
        base[Int(slot)].frameNext = freeHead
        freeHead = slot
        liveCount -= 1
    }

    private mutating func grow() -> Bool {
        guard capacity < UInt32.max else { return false }
        let newCapacity = capacity > UInt32.max / 2 ? UInt32.max : capacity * 2
        let newBase = UnsafeMutablePointer<_PageRecord>.allocate(capacity: Int(newCapacity))
        newBase.moveInitialize(from: base, count: Int(capacity))
        (newBase + Int(capacity)).initialize(repeating: .empty, count: Int(newCapacity - capacity))
        base.deallocate()
        base = newBase
        capacity = newCapacity
        return true
    }

    /// Bytes of host memory the slab holds.
    var footprint: Int { Int(capacity) * MemoryLayout<_PageRecord>.stride }
}
