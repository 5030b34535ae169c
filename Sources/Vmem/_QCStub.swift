// TEMPORARY compile stub, replaced by the qcache branch. Not committed.
struct QuantumCacheBackend: Sendable {
    var allocSlab: @Sendable (_ size: UInt64, _ align: UInt64) -> UInt64?
    var freeSlab: @Sendable (_ address: UInt64, _ size: UInt64) -> Void
}
public struct QuantumCacheStatistics: Sendable {}
@usableFromInline final class QuantumCache: @unchecked Sendable {
    let objectSize: UInt64; let backend: QuantumCacheBackend
    init(objectSize: UInt64, slabSize: UInt64, cpuCount: Int, backend: QuantumCacheBackend) { self.objectSize = objectSize; self.backend = backend }
    @usableFromInline func alloc() -> UInt64? { backend.allocSlab(objectSize, 0) }
    @usableFromInline func free(_ a: UInt64) -> Bool { backend.freeSlab(a, objectSize); return true }
    func reap() {}
    func drain() {}
    var statistics: QuantumCacheStatistics { .init() }
    func verify() -> String? { nil }
}
