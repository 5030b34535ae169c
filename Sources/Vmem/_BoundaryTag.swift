/// Index of a boundary tag in its arena's tag table. 0 is "none".
@usableFromInline typealias TagIndex = UInt32

/// The record kept for every segment and marker (illumos `vmem_seg_t`).
///
/// Tags live in one flat table per arena and link to each other by 32-bit
/// index, which keeps a tag at 40 bytes and lets the table move when it grows.
/// Every tag is on the *segment list* (`segPrev`/`segNext`, address order within
/// a span, spans in creation order). Its other two links depend on its kind:
///
/// * free segment — on free list `floor(log2(size))`, doubly linked (`prev`/`next`);
/// * allocated segment — on a hash chain, singly linked through `next`;
/// * span marker — on the span list (`prev`/`next`), for `contains` and `add`;
/// * unused tag — on the arena's free-tag list through `next`.
@usableFromInline
struct BoundaryTag {
    @usableFromInline var start: UInt64
    @usableFromInline var end: UInt64
    @usableFromInline var segPrev: TagIndex
    @usableFromInline var segNext: TagIndex
    @usableFromInline var prev: TagIndex
    @usableFromInline var next: TagIndex
    /// `SegmentKind.rawValue`, or 0 for list sentinels and unused tags.
    @usableFromInline var kind: UInt8
    /// On span markers: the span was imported from the source.
    @usableFromInline var imported: Bool

    @inlinable init() {
        start = 0; end = 0; segPrev = 0; segNext = 0; prev = 0; next = 0; kind = 0; imported = false
    }

    @inlinable var size: UInt64 { end &- start }
}

@usableFromInline let kindSpan: UInt8 = SegmentKind.span.rawValue
@usableFromInline let kindFree: UInt8 = SegmentKind.free.rawValue
@usableFromInline let kindAlloc: UInt8 = SegmentKind.allocated.rawValue
@usableFromInline let kindRotor: UInt8 = SegmentKind.rotor.rawValue
@usableFromInline let kindWalker: UInt8 = SegmentKind.walker.rawValue

/// Fixed tags at the start of every tag table.
@usableFromInline enum ReservedTag {
    /// Sentinel of free list `i` is tag `freeList0 + i` (i in 0..<64).
    @usableFromInline static let freeList0: TagIndex = 1
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
