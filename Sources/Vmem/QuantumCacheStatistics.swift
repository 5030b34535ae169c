/// A snapshot of one quantum cache (the counters kmem keeps per cache, as
/// `::kmem_cache` and kstat `kmem_cache:<name>` print them).
///
/// Taken with every lock of the cache held, so the numbers agree with each
/// other: `slabs · objectsPerSlab == objectsInUse + objectsInCPUMagazines +
/// objectsInDepot + objectsFreeInSlabs`.
@usableFromInline
struct QuantumCacheStatistics: Sendable, Hashable {
    @usableFromInline var objectSize: UInt64 = 0
    @usableFromInline var slabSize: UInt64 = 0
    @usableFromInline var objectsPerSlab = 0
    @usableFromInline var magazineRounds = 0
    @usableFromInline var cpuCount = 0
    /// Successful allocations and frees over the cache's life.
    @usableFromInline var allocs: UInt64 = 0
    @usableFromInline var frees: UInt64 = 0
    /// Allocations that returned nil (the backend had no slab).
    @usableFromInline var allocFailures: UInt64 = 0
    /// Frees refused: not an object of this cache, or not allocated.
    @usableFromInline var badFrees: UInt64 = 0
    /// Slabs held now, obtained and given back over the cache's life.
    @usableFromInline var slabs = 0
    @usableFromInline var slabsCreated: UInt64 = 0
    @usableFromInline var slabsReleased: UInt64 = 0
    /// Objects with users (`allocs - frees`).
    @usableFromInline var objectsInUse = 0
    /// Objects cached in the CPUs' loaded and previous magazines.
    @usableFromInline var objectsInCPUMagazines = 0
    /// Objects cached in the depot's full magazines.
    @usableFromInline var objectsInDepot = 0
    /// Objects free in the slab layer (no magazine holds them).
    @usableFromInline var objectsFreeInSlabs = 0
    /// Magazines on the depot's lists, and in existence.
    @usableFromInline var depotFullMagazines = 0
    @usableFromInline var depotEmptyMagazines = 0
    @usableFromInline var magazines = 0
    /// Depot exchanges (a CPU traded an empty magazine for a full one, and
    /// a full one for an empty one), and magazine fills from the slab layer.
    @usableFromInline var depotFullExchanges: UInt64 = 0
    @usableFromInline var depotEmptyExchanges: UInt64 = 0
    @usableFromInline var slabFills: UInt64 = 0

    /// Every object the cache has cached, in magazines anywhere.
    @usableFromInline var objectsCached: Int { objectsInCPUMagazines + objectsInDepot }

    @usableFromInline init() {}
}
