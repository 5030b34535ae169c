/// A snapshot of one quantum cache of an arena (the counters kmem keeps per
/// cache, as `::kmem_cache` and kstat `kmem_cache:<name>` print them).
///
/// Taken with every lock of the cache held, so the numbers agree with each
/// other: `slabs · objectsPerSlab == objectsInUse + objectsInCPUMagazines +
/// objectsInDepot + objectsFreeInSlabs`.
public struct QuantumCacheStatistics: Sendable, Hashable {
    public internal(set) var objectSize: UInt64 = 0
    public internal(set) var slabSize: UInt64 = 0
    public internal(set) var objectsPerSlab = 0
    public internal(set) var magazineRounds = 0
    public internal(set) var cpuCount = 0
    /// Successful allocations and frees over the cache's life.
    public internal(set) var allocs: UInt64 = 0
    public internal(set) var frees: UInt64 = 0
    /// Allocations that returned nil (the backend had no slab).
    public internal(set) var allocFailures: UInt64 = 0
    /// Frees refused: not an object of this cache, or not allocated. (The
    /// arena then tries the address itself, so a refusal here is not
    /// necessarily a bad free of the arena: it may be `xalloc`'d memory.)
    public internal(set) var badFrees: UInt64 = 0
    /// Slabs held now, obtained and given back over the cache's life.
    public internal(set) var slabs = 0
    public internal(set) var slabsCreated: UInt64 = 0
    public internal(set) var slabsReleased: UInt64 = 0
    /// Objects with users (`allocs - frees`).
    public internal(set) var objectsInUse = 0
    /// Objects cached in the CPUs' loaded and previous magazines.
    public internal(set) var objectsInCPUMagazines = 0
    /// Objects cached in the depot's full magazines.
    public internal(set) var objectsInDepot = 0
    /// Objects free in the slab layer (no magazine holds them).
    public internal(set) var objectsFreeInSlabs = 0
    /// Magazines on the depot's lists, and in existence.
    public internal(set) var depotFullMagazines = 0
    public internal(set) var depotEmptyMagazines = 0
    public internal(set) var magazines = 0
    /// Depot exchanges (a CPU traded an empty magazine for a full one, and
    /// a full one for an empty one), and magazine fills from the slab layer.
    public internal(set) var depotFullExchanges: UInt64 = 0
    public internal(set) var depotEmptyExchanges: UInt64 = 0
    /// Full-magazine exchanges served from another CPU's depot list (the
    /// objects moved between CPUs); see `Depot`'s affinity.
    public internal(set) var depotCrossCPUExchanges: UInt64 = 0
    public internal(set) var slabFills: UInt64 = 0
    /// Bytes of the cache's own metadata: its CPU slots, every magazine,
    /// the depot, the slab records (allocated in chunks) and the slab
    /// directory's tables (retired ones included until freed).
    public internal(set) var metadataBytes = 0

    /// Every object the cache has cached, in magazines anywhere.
    public var objectsCached: Int { objectsInCPUMagazines + objectsInDepot }

    init() {}
}
