/// Index of a boundary tag in its arena's tag table. 0 is "none".
@usableFromInline typealias TagIndex = UInt32

/// The record kept for every segment and marker (illumos `vmem_seg_t`).
///
/// Tags live in one flat table per arena and link to each other by 32-bit
/// index, which keeps a tag at 32 bytes and lets the table move when it grows.
/// Every tag is on the *segment list* (`segPrev`/`segNext`, address order within
/// a span, spans in creation order). Its other two links depend on its kind:
///
/// * free segment — on free list `floor(log2(size))`, an array; `prev` holds
///   its position there (see ``FreeListArray``);
/// * allocated segment — on a hash chain, singly linked through `next`;
/// * span marker — on the span list (`prev`/`next`), for `contains` and `add`;
/// * unused tag — on the arena's free-tag list through `next`.
@usableFromInline
struct BoundaryTag {
    @usableFromInline var start: UInt64
    @usableFromInline var end: UInt64
    @usableFromInline var segPrev: TagIndex
    /// `segNext` in the low 28 bits, the kind in bits 28-30, `imported` in
    /// bit 31: packing them keeps a tag at 32 bytes, two to a cache line,
    /// which matters because a free touches three or four random tags.
    @usableFromInline var packed: UInt32
    @usableFromInline var prev: TagIndex
    @usableFromInline var next: TagIndex

    @inlinable init() {
        start = 0; end = 0; segPrev = 0; packed = 0; prev = 0; next = 0
    }

    @inlinable var size: UInt64 { end &- start }

    @inlinable var segNext: TagIndex {
        @inline(__always) get { packed & BoundaryTag.indexMask }
        @inline(__always) set { packed = (packed & ~BoundaryTag.indexMask) | newValue }
    }

    /// `SegmentKind.rawValue`, or 0 for list sentinels and unused tags.
    @inlinable var kind: UInt8 {
        @inline(__always) get { UInt8(truncatingIfNeeded: (packed >> 28) & 7) }
        @inline(__always) set { packed = (packed & ~(7 << 28)) | (UInt32(newValue & 7) << 28) }
    }

    /// On span markers: the span was imported from the source.
    @inlinable var imported: Bool {
        @inline(__always) get { packed & (1 << 31) != 0 }
        @inline(__always) set { packed = newValue ? packed | (1 << 31) : packed & ~(1 << 31) }
    }

    /// On allocated segments (the same bit as `imported`, which only span
    /// markers use): the segment is a slab a quantum cache took from the
    /// arena, which the cache, not the caller, gives back.
    @inlinable var cacheSlab: Bool {
        @inline(__always) get { packed & (1 << 31) != 0 }
        @inline(__always) set { packed = newValue ? packed | (1 << 31) : packed & ~(1 << 31) }
    }

    /// Tags per arena are limited to 2^28 (268 million segments).
    @usableFromInline static let indexMask: UInt32 = (1 << 28) - 1
}

@usableFromInline let kindSpan: UInt8 = SegmentKind.span.rawValue
@usableFromInline let kindFree: UInt8 = SegmentKind.free.rawValue
@usableFromInline let kindAlloc: UInt8 = SegmentKind.allocated.rawValue
@usableFromInline let kindRotor: UInt8 = SegmentKind.rotor.rawValue
@usableFromInline let kindWalker: UInt8 = SegmentKind.walker.rawValue

/// Fixed tags at the start of every tag table.
@usableFromInline enum ReservedTag {
    /// Tags 1...64 are unused (illumos's free-list heads were tags; ours are
    /// arrays), kept so that the fixed tags below keep their numbers.
    @usableFromInline static let unused0: TagIndex = 1
    /// The segment list's sentinel (illumos `vm_seg0`). It has kind `span` so
    /// that "both neighbours are span markers" also works for the last span.
    @usableFromInline static let seg0: TagIndex = 65
    /// The next-fit rotor (illumos `vm_rotor`), always on the segment list.
    @usableFromInline static let rotor: TagIndex = 66
    /// The span list's sentinel.
    @usableFromInline static let spans: TagIndex = 67
    /// The first tag that can hold a segment.
    @usableFromInline static let firstDynamic: TagIndex = 68
}
