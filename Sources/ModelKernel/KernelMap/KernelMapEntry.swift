/// One entry of a ``KernelMap`` (FreeBSD `struct vm_map_entry`), as the
/// public API reports it.
public struct KernelMapEntry: Hashable, Sendable, CustomStringConvertible {
    /// What the entry maps.
    public enum Kind: Hashable, Sendable {
        /// The first slab of map entries, made at startup and mapped by an
        /// entry drawn from its own items (FreeBSD uses boot pages instead;
        /// either way the first slab cannot come through the map).
        case bootSlab
        /// A slab of map entries that `kmapent_alloc` took from the map.
        case entrySlab
        /// An ordinary kernel allocation.
        case allocation
    }

    public var start: UInt64
    /// Exclusive end.
    public var end: UInt64
    public var kind: Kind
    /// `MAP_NOFAULT`: the range is never faulted on (slab entries).
    public var noFault: Bool
    /// The kernel address of the entry record itself: an item of some slab.
    public var record: UInt64

    public var size: UInt64 { end - start }

    public var description: String {
        "[0x\(String(start, radix: 16)), 0x\(String(end, radix: 16))) \(kind)\(noFault ? " nofault" : "")"
            + " record 0x\(String(record, radix: 16))"
    }
}

/// Counters of a ``KernelMap``: how the entry reserve behaved.
///
/// "Reserve level" is the number of free entries up to the reserve size:
/// 2 when the reserve is whole, 0 when it is empty.
public struct KernelMapStatistics: Hashable, Sendable {
    /// Entries in the map, slabs of entries, and the zone's items.
    public var entries = 0
    public var slabs = 0
    public var freeItems = 0
    public var itemsInUse = 0
    /// The reserve size (`KMAPENT_RESERVE + 1` by default) and its level now.
    public var reserve = 0
    public var reserveLevel = 0
    /// Entries created (inserts and clips).
    public var entriesCreated: UInt64 = 0
    /// Entries that had to come from the reserve (`M_USE_RESERVE`).
    public var reserveTakes: UInt64 = 0
    /// Refills at unlock (`MAP_REPLENISH` handled), and slabs made in all.
    public var replenishes: UInt64 = 0
    public var slabsAllocated: UInt64 = 0
    /// The lowest reserve level seen at the moment an entry was needed. At
    /// least 1 means no request ever found the reserve empty.
    public var lowestLevelBeforeTake = Int.max
    /// The lowest reserve level seen when the map lock was acquired: the
    /// reserve is whole (== reserve) at the start of every locked section
    /// when the refill-at-unlock works.
    public var lowestLevelAtLock = Int.max
    /// The lowest reserve level ever, after any take (the refill's own entry
    /// may take the last item: that is what the "+ 1" is for).
    public var lowestReserveLevel = Int.max
    /// The most reserve items taken by operations in one lock hold (not
    /// counting the refill's own). FreeBSD's bound is 1.
    public var mostReserveTakesPerHold = 0
    /// Requests that found the zone empty (FreeBSD would panic).
    public var exhaustions: UInt64 = 0

    public init() {}
}
