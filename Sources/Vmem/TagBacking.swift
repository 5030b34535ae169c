/// What a tag arena's addresses are to the arenas that take their boundary
/// tags from it (``Arena/useTags(from:backing:)``).
public enum TagBacking: Sendable, Hashable {
    /// The tag arena's addresses are this process's memory (an arena over
    /// a ``ReservedAddressRange`` whose source commits pages, as segkmem
    /// backs illumos's `heap`). The tag table lives in a block the tag arena
    /// hands out; when it must grow, a larger block is allocated, the table
    /// moves, and the old block is given back. Refilling can then truly
    /// recurse — the tag arena's own allocation may need tags, and its
    /// import may need tags from the arena being refilled — and the reserve
    /// is what lets it finish.
    case memory
    /// The tag arena's addresses belong to a model (a simulated kernel):
    /// each refill charges it a slab, as a kernel's would be charged, while
    /// the table itself stays in the process heap.
    case accounting
}
