import Synchronization

/// One mapping of a segment range at a guest-physical address (bhyve
/// `vm_mmap_memseg`), as the map reports it.
public struct GuestMapping: Hashable, Sendable, CustomStringConvertible {
    /// Guest-physical start, page aligned.
    public let gpa: UInt64
    /// Bytes, a non-zero multiple of the page size.
    public let length: UInt64
    /// The segment mapped.
    public let segmentID: Int
    /// Where in the segment the mapping starts.
    public let offset: UInt64
    public let protection: GuestProtection
    /// Populated up front (`VM_MEMMAP_F_WIRED`).
    public let wired: Bool
    /// The host address of `gpa` in the guest's reservation.
    public let hostAddress: UInt64

    /// `[gpa, gpa + length)`.
    public var range: Range<UInt64> { gpa ..< gpa + length }

    /// `map 0xGPA 0xLEN seg=ID off=0xOFF prot=PROT[ wired]` (§7's `maps`).
    public var description: String {
        "map 0x\(String(gpa, radix: 16)) 0x\(String(length, radix: 16)) seg=\(segmentID) "
            + "off=0x\(String(offset, radix: 16)) prot=\(protection.word)\(wired ? " wired" : "")"
    }
}

/// A mapping in the table, with what the access paths need at hand.
final class MappingEntry: @unchecked Sendable {
    let info: GuestMapping
    let segment: MemorySegment
    /// Page holds outstanding (an unmap refuses while any). Owned by the
    /// guest, not by the entry: a hold's lock-free fast path that raced the
    /// entry's removal may still touch it (see ``GuestMemory/hold(_:length:_:deferDirty:)``).
    let holdCounter: UnsafeMutablePointer<Atomic<Int>>

    init(info: GuestMapping, segment: MemorySegment, holdCounter: UnsafeMutablePointer<Atomic<Int>>) {
        self.info = info
        self.segment = segment
        self.holdCounter = holdCounter
    }

    /// Page holds outstanding (`holds.load(ordering:)`).
    var holds: HoldCount { HoldCount(counter: holdCounter) }

    /// A view of the hold counter.
    struct HoldCount {
        let counter: UnsafeMutablePointer<Atomic<Int>>
        /// Always an acquiring load (whatever `ordering` says: the counter
        /// guards a mapping's removal).
        /// Sequentially consistent whatever `ordering` says: it pairs with
        /// the hold fast path's increment (a Dekker handshake on the map
        /// lock's sequence).
        func load(ordering _: AtomicLoadOrdering = .acquiring) -> Int {
            counter.pointee.load(ordering: .sequentiallyConsistent)
        }
    }

    var gpa: UInt64 { info.gpa }
    var end: UInt64 { info.gpa + info.length }

    /// The segment page of guest-physical `gpa` (which must lie in the mapping).
    @inline(__always)
    func segmentPage(_ gpa: UInt64) -> UInt64 { (gpa - info.gpa + info.offset) / GuestMemory.pageSize }

    /// Marks the segment pages under `[gpa, gpa + length)` dirty.
    @inline(__always)
    func markDirty(_ gpa: UInt64, _ length: UInt64) {
        guard length > 0 else { return }
        let first = segmentPage(gpa)
        let last = segmentPage(gpa + length - 1)
        segment.dirty.mark(first: first, count: last - first + 1)
    }

    /// This entry as a row of the flat table.
    var flat: FlatMapping {
        FlatMapping(gpa: info.gpa, end: end, hostAddress: info.hostAddress,
                    pageDelta: (info.offset / GuestMemory.pageSize) &- (info.gpa / GuestMemory.pageSize),
                    holdCounter: holdCounter, bitmap: Unmanaged.passUnretained(segment.dirty),
                    protection: UInt64(info.protection.rawValue))
    }
}

/// One row of the flat mapping table the hot paths search (translate,
/// hold): plain values in one contiguous buffer, so a probe is a load from
/// the row, not a pointer chase to a class. Rebuilt under the map lock's
/// exclusive hold whenever the mappings change, each word stored
/// atomically, because the hold fast path reads rows without the lock
/// (atomically, validating with the lock's sequence). Its pointers are the
/// guest's hold counter and the segment's bitmap, which outlive the row.
struct FlatMapping {
    var gpa: UInt64
    var end: UInt64
    var hostAddress: UInt64
    /// Segment page = guest page &+ pageDelta.
    var pageDelta: UInt64
    var holdCounter: UnsafeMutablePointer<Atomic<Int>>
    var bitmap: Unmanaged<DirtyBitmap>
    var protection: UInt64

    static let words = 7

    /// Word `k` of row `row`, as an atomic.
    @inline(__always)
    static func word(_ row: UnsafeMutablePointer<FlatMapping>, _ k: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        (UnsafeMutableRawPointer(row) + 8 * k).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// Row `row` read word by word with relaxed atomic loads (it may be
    /// rewritten meanwhile: the caller validates with the lock's sequence).
    @inline(__always)
    static func loadRacing(_ row: UnsafeMutablePointer<FlatMapping>) -> FlatMapping {
        var out = FlatMapping(gpa: 0, end: 0, hostAddress: 0, pageDelta: 0,
                              holdCounter: UnsafeMutablePointer(bitPattern: 8)!, bitmap: unsafeBitCast(8, to: Unmanaged<DirtyBitmap>.self),
                              protection: 0)
        withUnsafeMutableBytes(of: &out) { raw in
            for k in 0..<words { raw.storeBytes(of: word(row, k).pointee.load(ordering: .relaxed), toByteOffset: 8 * k, as: UInt64.self) }
        }
        return out
    }

    /// Writes `value` into `row` word by word with relaxed atomic stores.
    static func store(_ value: FlatMapping, into row: UnsafeMutablePointer<FlatMapping>) {
        withUnsafeBytes(of: value) { raw in
            for k in 0..<words { word(row, k).pointee.store(raw.load(fromByteOffset: 8 * k, as: UInt64.self), ordering: .relaxed) }
        }
    }
}
