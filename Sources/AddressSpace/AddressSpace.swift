import Synchronization
import PhysicalMemory

/// `struct as`: an ordered set of segments, each run by a segment driver,
/// over a translation layer (``HAT``).
///
/// See the module overview for the design. Locking follows illumos: `a_lock`
/// (a reader/writer lock) guards the tree and the segments' ranges; `a_contents`
/// guards the flags and the unmap wait; the last-segment hint `a_seglast`,
/// written by `findseg` under the reader lock, is an atomic.
public final class AddressSpace: @unchecked Sendable {
    /// Kernel (`kas`) or a user address space with its `a_userlimit`.
    public enum Kind: Hashable, Sendable {
        case kernel
        case user(limit: UInt64)
    }

    /// `a_flags` bits.
    public struct Flags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// `AS_PAGLCK` (0x80): mlockall(MCL_FUTURE) is in effect.
        public static let pageLock = Flags(rawValue: 0x80)
        /// `AS_CLAIMGAP` (0x40)
        public static let claimGap = Flags(rawValue: 0x40)
        /// `AS_UNMAPWAIT` (0x20): an unmap waits for locked pages.
        public static let unmapWait = Flags(rawValue: 0x20)
        /// `AS_NEEDSPURGE` (0x10)
        public static let needsPurge = Flags(rawValue: 0x10)
        /// `AS_NOUNMAPWAIT` (0x02)
        public static let noUnmapWait = Flags(rawValue: 0x02)
    }

    /// A name for messages and renderings (`kas`).
    public let name: String
    public let kind: Kind
    /// `a_hat`
    public let hat: any HAT
    /// The `struct as *` value (`kas`'s symbol address in a model kernel).
    public let address: UInt64
    /// Addresses nothing may map (amd64: the non-canonical hole).
    public let virtualHole: Range<UInt64>?

    @usableFromInline let lock = _RWLock()
    let contents = _ContentsLock()
    @usableFromInline let tree: UnsafeMutablePointer<_SegmentTree>
    /// `a_seglast`, as a node index (0 = none).
    @usableFromInline let hint = Atomic<Int32>(0)
    let softLockFaults = Atomic<UInt64>(0)
    let protectionFaults = Atomic<UInt64>(0)
    let invalidFaults = Atomic<UInt64>(0)
    let kernelInvalidFaults = Atomic<UInt64>(0)

    // Guarded by the write lock.
    var _size: UInt64 = 0
    var _reservedSize: UInt64 = 0
    var _lastGap: Segment?
    var _lastGapInsertionHint: Segment?
    var _lockFreeFaultSegment: Segment?
    var nextSegmentAddress: UInt64
    let segmentAddressStride: UInt64

    // Guarded by `contents`.
    var _flags: Flags = []
    var callbacks: [UnmapCallback] = []
    var nextCallbackID = 1
    var _vmemLimit: UInt64?

    /// - Parameters:
    ///   - name: what renderings call the address space (`kas`, a process).
    ///   - kind: kernel or user: which rules of `as_map` and `as_fault` apply.
    ///   - hat: the translation layer pages are loaded into.
    ///   - address: the `struct as *` value renderings show.
    ///   - virtualHole: a range no segment may touch.
    ///   - segmentRecordBase: where synthetic `struct seg *` values start
    ///     (each new segment takes the next `segmentRecordStride` bytes) when a
    ///     map or attach does not name one.
    ///   - segmentRecordStride: the bytes each synthetic `struct seg *` takes.
    public init(name: String, kind: Kind, hat: any HAT, address: UInt64 = 0xFFFF_FFFF_FBC0_0000,
                virtualHole: Range<UInt64>? = nil,
                segmentRecordBase: UInt64 = 0xFFFF_FE0B_0000_0000, segmentRecordStride: UInt64 = 0x60) {
        self.name = name
        self.kind = kind
        self.hat = hat
        self.address = address
        self.virtualHole = virtualHole
        self.nextSegmentAddress = segmentRecordBase
        self.segmentAddressStride = segmentRecordStride
        tree = .allocate(capacity: 1)
        tree.initialize(to: _SegmentTree())
    }

    deinit {
        for i in 0..<tree.pointee.slotCount { tree.pointee.segments[i]?.slot = 0 }
        tree.pointee.deallocate()
        tree.deinitialize(count: 1)
        tree.deallocate()
    }

    /// The amd64 non-canonical hole, `[0x0000_8000_0000_0000, 0xFFFF_8000_0000_0000)`.
    public static let amd64Hole: Range<UInt64> = 0x0000_8000_0000_0000 ..< 0xFFFF_8000_0000_0000

    public var isKernel: Bool { kind == .kernel }

    /// `a_userlimit` (nil for the kernel).
    public var userLimit: UInt64? {
        if case .user(let limit) = kind { return limit }
        return nil
    }

    // MARK: Locking helpers

    @inline(__always)
    func withReadLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lock.readLock()
        defer { lock.readUnlock() }
        return try body()
    }

    @inline(__always)
    func withWriteLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lock.writeLock()
        defer { lock.writeUnlock() }
        return try body()
    }

    /// Whether anyone holds `a_lock` (the model's `AS_LOCK_HELD`, for
    /// drivers' sanity checks: it cannot tell who holds it).
    public var isLockHeld: Bool {
        if lock.tryWriteLock() {
            lock.writeUnlock()
            return false
        }
        return true
    }

    // MARK: Accounting

    /// `a_size`: bytes mapped, holes excluded.
    public var size: UInt64 { withReadLock { _size } }
    /// `a_resvsize`
    public var reservedSize: UInt64 { withReadLock { _reservedSize } }
    /// Number of segments.
    public var segmentCount: Int { withReadLock { tree.pointee.count } }
    /// `a_flags`
    public var flags: Flags { contents.withLock { _flags } }

    /// Sets or clears `AS_PAGLCK` (mlockall(MCL_FUTURE) / munlockall).
    public func setPageLock(_ on: Bool) {
        contents.withLock {
            if on { _flags.insert(.pageLock) } else { _flags.remove(.pageLock) }
        }
    }

    /// `RLIMIT_VMEM` for a user address space (`p_vmem_ctl`); nil for none.
    public var vmemLimit: UInt64? {
        get { contents.withLock { _vmemLimit } }
        set { contents.withLock { _vmemLimit = newValue } }
    }

    /// Adds to `a_size` for segments attached outside `map` (illumos's
    /// `segkmem_create` grows `kas.a_size` itself).
    public func accountAttachedSize(_ bytes: UInt64) throws(AddressSpaceError) {
        try withWriteLock { () throws(AddressSpaceError) in
            let (s, o) = _size.addingReportingOverflow(bytes)
            guard !o else { throw .sizeOverflow(current: _size, adding: bytes) }
            _size = s
        }
    }

    // MARK: Lookup

    /// `as_segat` with the lock held: the hint if it contains `address`, else
    /// the tree. Does not change the hint.
    ///
    /// Inlinable, like ``segat(_:)`` and the lock's reader fast path, so that
    /// a caller in another module compiles the whole lookup in place, with
    /// no call. Where no lock operation lies between the lookup and the
    /// caller's last use (``ReadView/segat(_:)`` inside ``read(_:)``), the
    /// optimizer also drops the retain and release of the segment when the
    /// caller only tests the result.
    @inlinable @inline(__always)
    func _segat(_ address: UInt64) -> Segment? {
        // Both ways yield the segment unretained and it is taken (retained)
        // once, after they join: a retain on each way and one release after
        // the join is a pair the optimizer cannot remove.
        _segatUnretained(address)?.takeUnretainedValue()
    }

    /// The lookup of ``_segat(_:)`` (lock held), the segment not retained.
    @inlinable @inline(__always)
    func _segatUnretained(_ address: UInt64) -> Unmanaged<Segment>? {
        let h = hint.load(ordering: .relaxed)
        if h != 0, address >= tree.pointee.spans[Int(h)].base && address <= tree.pointee.spans[Int(h)].last {
            return tree.pointee.unmanagedSegment(h)
        }
        return _SegmentTree.findSegment(in: tree, address)
    }

    /// `as_segat`: the segment containing `address`, or nil. Consults the
    /// last-segment hint first and does **not** update it.
    @inlinable @inline(__always)
    public func segat(_ address: UInt64) -> Segment? {
        // A slot reader (see `_RWLock`): the search takes no other lock and
        // does not block; entering is one compare-and-swap on a word of this
        // thread's own, leaving a plain store. The segment is retained before
        // the store (the fence in `slotReadUnlock` keeps it there), so the
        // caller may keep or use it after the lock is gone, as before.
        let slot = lock.slotReadLock()
        defer { lock.slotReadUnlock(slot) }
        return _segat(address)
    }

    /// `as_segat` for a caller that only looks: `body` gets the segment
    /// containing `address` (or nil) *borrowed*, valid only inside `body`,
    /// which runs with the lock held as reader — the way illumos callers use
    /// the pointer `as_segat` returns under `a_lock`. No reference is taken
    /// or dropped, so the lookup costs the slot lock and the search alone;
    /// ``segat(_:)``, which hands back a retained segment to keep, pays a
    /// retain and a release on the segment besides (about 40 % of its time
    /// among 10,000 segments; see the README). `body` must not block or take
    /// this address space's lock.
    @inlinable @inline(__always)
    public func withSegment<R>(at address: UInt64, _ body: (Segment?) -> R) -> R {
        let slot = lock.slotReadLock()
        defer { lock.slotReadUnlock(slot) }
        guard let found = _segatUnretained(address) else { return body(nil) }
        return found._withUnsafeGuaranteedRef { body($0) }
    }

    /// `as_findseg` with the lock held.
    func _findseg(_ address: UInt64, tail: Bool) -> Segment? {
        let t = tree
        let h = hint.load(ordering: .relaxed)
        if h != 0 {
            let node = t.pointee.spans[Int(h)]
            if address >= node.base && address <= node.last { return t.pointee.segments[Int(h)] }
        }
        var n = t.pointee.find(address)
        if n == 0 {
            n = t.pointee.firstAbove(address)
            if n == 0 && tail { n = t.pointee.lastNode }
        }
        hint.store(n, ordering: .relaxed)
        return n == 0 ? nil : t.pointee.segments[Int(n)]
    }

    /// `as_findseg`: the segment containing `address`, else the first one
    /// above it, else (with `tail`) the last one. **Does** store the result
    /// (even nil) in the hint.
    public func findseg(_ address: UInt64, tail: Bool = false) -> Segment? {
        withReadLock { _findseg(address, tail: tail) }
    }

    /// The segment the last-segment hint (`a_seglast`) names, if any.
    public var lastSegmentHint: Segment? {
        withReadLock {
            let h = hint.load(ordering: .relaxed)
            return h == 0 ? nil : tree.pointee.segments[Int(h)]
        }
    }

    /// `a_lastgap`: the segment above the last hole `gap` found going down.
    public var lastGap: Segment? { withReadLock { _lastGap } }

    /// All segments in ascending base order (the `seg` walker).
    public var segments: [Segment] {
        withReadLock {
            var out: [Segment] = []
            out.reserveCapacity(tree.pointee.count)
            var n = tree.pointee.first
            while n != 0 {
                if let s = tree.pointee.segments[Int(n)] { out.append(s) }
                n = tree.pointee.next(n)
            }
            return out
        }
    }

    /// `AS_SEGFIRST`
    public var firstSegment: Segment? {
        withReadLock { let n = tree.pointee.first; return n == 0 ? nil : tree.pointee.segments[Int(n)] }
    }

    /// `AS_SEGNEXT`: the segment after `segment`, or nil.
    public func segment(after segment: Segment) -> Segment? {
        withReadLock { _next(segment) }
    }

    /// `AS_SEGPREV`: the segment before `segment`, or nil.
    public func segment(before segment: Segment) -> Segment? {
        withReadLock { _previous(segment) }
    }

    func _next(_ s: Segment) -> Segment? {
        guard s.slot != 0, s.addressSpace === self else { return nil }
        let n = tree.pointee.next(s.slot)
        return n == 0 ? nil : tree.pointee.segments[Int(n)]
    }

    func _previous(_ s: Segment) -> Segment? {
        guard s.slot != 0, s.addressSpace === self else { return nil }
        let n = tree.pointee.previous(s.slot)
        return n == 0 ? nil : tree.pointee.segments[Int(n)]
    }

    // MARK: Tree edits (write lock held)

    func takeSegmentAddress(_ requested: UInt64?) -> UInt64 {
        if let requested { return requested }
        let a = nextSegmentAddress
        nextSegmentAddress &+= segmentAddressStride
        return a
    }

    /// `as_addseg`: links a segment in and points the hint at it.
    @discardableResult
    func _addSegment(base: UInt64, size: UInt64, driver: any SegmentDriver, flags: SegmentFlags,
                     sizeCode: UInt8, address: UInt64?, countsInSize: Bool) -> Segment {
        let seg = Segment(base: base, size: size, driver: driver, flags: flags, sizeCode: sizeCode,
                          address: takeSegmentAddress(address), addressSpace: self)
        seg.countsInSize = countsInSize && !flags.contains(.hole)
        seg.slot = tree.pointee.insert(seg, base: base, last: base &+ (size &- 1))
        hint.store(seg.slot, ordering: .relaxed)
        return seg
    }

    /// `as_removeseg`: unlinks a segment, clearing or moving the hints that name it.
    func _removeSegment(_ seg: Segment) {
        guard seg.slot != 0 else { return }
        if hint.load(ordering: .relaxed) == seg.slot { hint.store(0, ordering: .relaxed) }
        _lastGapInsertionHint = nil
        if let lg = _lastGap, lg === seg || seg.base > lg.base { _lastGap = _next(seg) }
        if _lockFreeFaultSegment === seg { _lockFreeFaultSegment = nil }
        tree.pointee.remove(seg.slot)
        seg.slot = 0
    }

    /// Changes a segment's range in place (no reordering is possible: the
    /// callers only shrink or grow into free space).
    func _setRange(_ seg: Segment, base: UInt64, size: UInt64) {
        seg.base = base
        seg.size = size
        tree.pointee.setRange(seg.slot, base: base, last: base &+ (size &- 1))
    }

    /// The segment overlapping `[base, last]`, if any.
    func _overlapping(_ base: UInt64, _ last: UInt64) -> Segment? {
        let n = tree.pointee.firstOverlap(base, last)
        return n == 0 ? nil : tree.pointee.segments[Int(n)]
    }

    /// The first segment overlapping `[address, address + size)`, for the
    /// overlap error.
    public func segment(overlapping address: UInt64, size: UInt64) -> Segment? {
        guard size > 0 else { return nil }
        return withReadLock { _overlapping(address, address &+ min(size - 1, UInt64.max - address)) }
    }
}


extension AddressSpace {
    /// The address space seen with `a_lock` held as reader: what illumos code
    /// between `AS_LOCK_ENTER(RW_READER)` and `AS_LOCK_EXIT` sees. It cannot
    /// be copied or kept (it is handed to ``read(_:)``'s closure borrowed).
    public struct ReadView: ~Copyable {
        @usableFromInline let space: AddressSpace

        /// `as_segat` (the caller holds the lock): the hint, then the tree;
        /// the hint is not updated.
        @inlinable @inline(__always)
        public func segat(_ address: UInt64) -> Segment? { space._segat(address) }

        /// `as_findseg`; updates the hint.
        public func findseg(_ address: UInt64, tail: Bool = false) -> Segment? {
            space._findseg(address, tail: tail)
        }

        /// `AS_SEGFIRST`
        public var first: Segment? {
            let n = space.tree.pointee.first
            return n == 0 ? nil : space.tree.pointee.segments[Int(n)]
        }

        /// `AS_SEGNEXT`
        public func segment(after s: Segment) -> Segment? { space._next(s) }

        /// `AS_SEGPREV`
        public func segment(before s: Segment) -> Segment? { space._previous(s) }
    }

    /// Runs `body` with `a_lock` held as reader, for several lookups under
    /// one acquisition (as `as_fault` and the drivers do).
    ///
    /// Not `@inlinable`: Swift 6.3's generic specializer crashes ("Cannot
    /// initialize a nonCopyable type with a guaranteed value") on callers in
    /// other modules when it is. The lookups inside `body` are inlined
    /// (``ReadView/segat(_:)`` is), which is what matters.
    @inline(__always)
    public func read<R, E: Error>(_ body: (borrowing ReadView) throws(E) -> R) throws(E) -> R {
        lock.readLock()
        defer { lock.readUnlock() }
        return try body(ReadView(space: self))
    }
}
