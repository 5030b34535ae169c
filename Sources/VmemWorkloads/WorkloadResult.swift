/// What one run measured.
public struct WorkloadResult: Sendable {
    public var workload: String
    public var threads: Int
    public var opsTimed: Int
    public var nsPerPair: Double
    public var opsPerSecond: Double
    public var highWaterRatio: Double
    public var mallocsPerOp: Double?
    /// Bytes of metadata per live allocation at the end of the timed phase:
    /// the arena's share (boundary tags, hash buckets, free-list arrays) plus
    /// the quantum caches' (CPU slots, magazines, depot, slab records and
    /// directory); see `Vmem.MetadataFootprint`.
    public var metadataBytesPerSegment: Double
    /// The arena's and the quantum caches' shares of ``metadataBytesPerSegment``.
    public var arenaMetadataBytesPerSegment: Double
    public var cacheMetadataBytesPerSegment: Double
    /// Whether the quantum caches refused double frees (`ArenaDebugging.checkCachedFrees`).
    public var checkedCacheFrees: Bool = true
    /// Whether each thread had an arena of its own (the control run).
    public var arenaPerThread: Bool = false
    /// Threads sharing one arena with quantum caches: of the slabs holding
    /// live objects at the end, the fraction holding objects of more than one
    /// thread. (With one user byte per object a shared slab was a line both
    /// CPUs wrote; the caches now give each CPU its own line.)
    public var sharedSlabFraction: Double? = nil
    /// Rounds in which one and two threads were timed turn about (see
    /// ``WorkloadRunner/runInterleaved(_:ops:warmup:rounds:debugging:arenaPerThread:)``);
    /// 1 for a run timed in one piece.
    public var rounds: Int = 1
    /// Timed blocks of `opsTimed` pairs, one after another in one run (see
    /// ``WorkloadRunner/run(_:threads:ops:warmup:debugging:arenaPerThread:repeats:)``);
    /// with more than one, `nsPerPair` and `opsPerSecond` are the median
    /// block's, and these are the fastest and the slowest block's ns per pair.
    public var repeats: Int = 1
    public var nsPerPairMin: Double
    public var nsPerPairMax: Double

    /// The JSON object of vmem.md §6, on one line.
    public var json: String {
        func num(_ d: Double) -> String {
            let r = (d * 100).rounded() / 100
            return r == r.rounded() ? String(Int(r)) : String(r)
        }
        let m = mallocsPerOp.map { num($0) } ?? "null"
        let shared = sharedSlabFraction.map { num($0) } ?? "null"
        return "{\"workload\": \"\(workload)\", \"threads\": \(threads), \"opsTimed\": \(opsTimed), \"nsPerPair\": \(num(nsPerPair)), \"opsPerSecond\": \(Int(opsPerSecond.rounded())), \"highWaterRatio\": \(num(highWaterRatio)), \"mallocsPerOp\": \(m), \"metadataBytesPerSegment\": \(num(metadataBytesPerSegment)), \"metadataArenaBytesPerSegment\": \(num(arenaMetadataBytesPerSegment)), \"metadataCacheBytesPerSegment\": \(num(cacheMetadataBytesPerSegment)), \"checkedCacheFrees\": \(checkedCacheFrees), \"arenaPerThread\": \(arenaPerThread), \"sharedSlabs\": \(shared), \"rounds\": \(rounds), \"repeats\": \(repeats), \"nsPerPairMin\": \(num(nsPerPairMin)), \"nsPerPairMax\": \(num(nsPerPairMax))}"
    }
}
