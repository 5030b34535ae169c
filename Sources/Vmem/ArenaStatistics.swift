/// The counters of one arena (illumos kstat `vmem:<id>:<name>`).
///
/// A snapshot: reading ``Arena/statistics`` copies them under the arena lock.
public struct ArenaStatistics: Sendable, Hashable {
    /// Bytes currently allocated (`mem_inuse`).
    public var memInUse: UInt64 = 0
    /// Bytes of spans imported from the source and not yet released (`mem_import`).
    public var memImported: UInt64 = 0
    /// Bytes of all spans, added or imported (`mem_total`).
    public var memTotal: UInt64 = 0
    /// Successful allocations, including quantum-cache slab fills (`alloc`).
    public var allocCount: UInt64 = 0
    /// Frees (`free`).
    public var freeCount: UInt64 = 0
    /// Allocations that returned no address (`fail`), each counted once:
    /// exhaustion, a failed import, a `[minaddr, maxaddr)` too small for the
    /// size (illumos searches it and counts), a timeout or cancellation, an
    /// injected failure, a destroyed arena, and a cached size whose cache got
    /// no slab. Argument errors (where illumos panics) are not counted.
    public var failCount: UInt64 = 0
    /// Allocations that had to wait (`wait`).
    public var waitCount: UInt64 = 0
    /// Segments examined by constrained searches (`search`).
    public var searchCount: UInt64 = 0
    /// Hash-chain links followed by frees (`lookup`).
    public var lookupCount: UInt64 = 0
    /// Refills of this arena's boundary-tag reserve from a tag arena that
    /// had to wait for another thread's refill to finish first
    /// (`populate_wait`: illumos serialises populates on one lock, and this
    /// counts the refills that found it taken).
    public var populateWait: UInt64 = 0
    /// Refills of the boundary-tag reserve from a tag arena that got no tag
    /// memory (`populate_fail`); the arena then grows its own table.
    public var populateFail: UInt64 = 0
    /// Calls of ``Arena/contains(_:size:)`` (`contains`) and the spans they looked at.
    public var containsCount: UInt64 = 0
    public var containsSearch: UInt64 = 0
    /// Buckets in the allocated-segment hash table.
    public var hashSize: UInt64 = 0
    /// Allocated segments (hash entries).
    public var allocatedSegments: UInt64 = 0
    /// Boundary tags owned by the arena, and how many sit free in its reserve.
    public var tagsOwned: UInt64 = 0
    public var tagsFree: UInt64 = 0
    /// Spans imported and released over the arena's life.
    public var importCount: UInt64 = 0
    public var releaseCount: UInt64 = 0

    public init() {}
}

/// What an arena's metadata costs (``Arena/metadataFootprint``): the bytes
/// the arena and its quantum caches own, and the live allocations they serve.
public struct MetadataFootprint: Sendable, Hashable {
    /// Boundary tags (the whole table), hash buckets and free-list arrays.
    public var arenaBytes: Int
    /// The quantum caches' CPU slots, magazines, depot, slab records and
    /// slab directory (``QuantumCacheStatistics/metadataBytes``, summed).
    public var cacheBytes: Int
    /// Live allocations as callers see them: the arena's allocated segments
    /// other than the caches' slabs, plus the cached objects in use.
    public var allocations: Int

    public init(arenaBytes: Int = 0, cacheBytes: Int = 0, allocations: Int = 0) {
        self.arenaBytes = arenaBytes; self.cacheBytes = cacheBytes; self.allocations = allocations
    }

    public var arenaBytesPerAllocation: Double { Double(arenaBytes) / Double(max(allocations, 1)) }
    public var cacheBytesPerAllocation: Double { Double(cacheBytes) / Double(max(allocations, 1)) }
    public var bytesPerAllocation: Double { Double(arenaBytes + cacheBytes) / Double(max(allocations, 1)) }
}
