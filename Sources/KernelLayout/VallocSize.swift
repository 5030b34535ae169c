/// `valloc_sz`: the boot-time allocations of `startup_memlist()` that sit at
/// `valloc_base` (page_t array, page hash, and the "other" parts).
///
/// Each part is rounded up to a page (`ADD_TO_ALLOCATIONS`), the total to a
/// large page (`ROUND_UP_LPAGE`). The model derives the two parts that scale
/// with memory and takes the rest (memsegs, memlists, page colouring, page
/// counters, the pse mutex table) as one configured number.
public struct VallocSize: Sendable, Hashable {
    /// `sizeof (page_t) × npages`, page-rounded.
    public var pageStructs: UInt64
    /// `sizeof (page_t *) × (1 << highbit(npages / PAGE_HASHAVELEN))`, page-rounded.
    public var pageHash: UInt64
    /// The configured remainder, page-rounded.
    public var other: UInt64
    /// The sum rounded up to the large page: `valloc_sz`.
    public var total: UInt64

    /// `PAGE_HASHAVELEN`.
    public static let pageHashAverageLength: UInt64 = 4

    public init(pageStructs: UInt64, pageHash: UInt64, other: UInt64, total: UInt64) {
        self.pageStructs = pageStructs
        self.pageHash = pageHash
        self.other = other
        self.total = total
    }

    @inlinable
    init(npages: UInt64, pageStructSize: UInt64, hashEntrySize: UInt64, other: UInt64,
         largePage: UInt64, tracker: inout OverflowTracker) {
        let page = AMD64.pageSize
        pageStructs = tracker.roundUp(tracker.mul(pageStructSize, npages), page)
        let buckets = highbit(npages / Self.pageHashAverageLength)
        // buckets <= 64 - 2 for any npages, and the entry size is 4 or 8, so
        // the shift stays inside 64 bits unless npages is absurd; check anyway.
        let hashBytes = buckets >= 61 ? UInt64.max : hashEntrySize << buckets
        if buckets >= 61 { tracker.wrapped = true }
        pageHash = tracker.roundUp(hashBytes, page)
        self.other = tracker.roundUp(other, page)
        total = tracker.roundUp(tracker.add(tracker.add(pageStructs, pageHash), self.other), largePage)
    }

    /// The amd64 `valloc_sz` for `npages` pages (120-byte page_t, 8-byte buckets).
    public static func amd64(npages: UInt64, other: UInt64 = 1 << 20) -> VallocSize {
        var tracker = OverflowTracker()
        return VallocSize(npages: npages, pageStructSize: AMD64.pageStructSize,
                          hashEntrySize: AMD64.pageHashEntrySize, other: other,
                          largePage: AMD64.largePageSize, tracker: &tracker)
    }

    /// The i386 model's `valloc_sz` (80-byte page_t, 4-byte buckets).
    public static func i386(npages: UInt64, other: UInt64 = 1 << 20) -> VallocSize {
        var tracker = OverflowTracker()
        return VallocSize(npages: npages, pageStructSize: I386.pageStructSize,
                          hashEntrySize: I386.pageHashEntrySize, other: other,
                          largePage: I386.largePageSize, tracker: &tracker)
    }
}
