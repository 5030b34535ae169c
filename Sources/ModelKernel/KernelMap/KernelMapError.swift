/// Every way a ``KernelMap`` operation can refuse a request.
///
/// FreeBSD panics or fires a `KASSERT` for most of these (a recursed mutex,
/// `MAP_REPLENISH` leaked, an exhausted kernel map); the model throws, and
/// each case names the values that were wrong.
public enum KernelMapError: Error, Hashable, Sendable {
    /// A configuration no map can be built from; `reason` says which value.
    case invalidConfiguration(reason: String)
    /// The operation needs the map lock and the caller does not hold it.
    case notLocked(operation: String)
    /// The caller already holds the (non-recursive) map lock.
    case recursiveLock
    /// `MAP_REPLENISH` was set when the lock was released through a path
    /// that must never see it (`vm_map_unlock_read`, `vm_map_lock_downgrade`):
    /// an entry was taken from the reserve under a read lock. The lock is
    /// left as it was; ``KernelMap/unlock()`` refills the reserve and releases it.
    case replenishLeaked(operation: String)
    /// A downgrade or read-unlock in the wrong lock mode.
    case wrongLockMode(operation: String, held: KernelMap.LockMode)
    /// A size of zero.
    case zeroSize
    /// An address or size that is not a multiple of the page size.
    case unaligned(parameter: String, value: UInt64, pageSize: UInt64)
    /// `start + size` does not fit in 64 bits.
    case overflow(start: UInt64, size: UInt64)
    /// The range is not inside `[min, max)` of the map.
    case outOfRange(start: UInt64, size: UInt64, min: UInt64, max: UInt64)
    /// The range overlaps an entry (`KERN_NO_SPACE` from `vm_map_insert`).
    case overlap(start: UInt64, size: UInt64, entryStart: UInt64, entryEnd: UInt64)
    /// `vm_map_findspace` found no gap of `size` bytes.
    case noSpace(size: UInt64)
    /// Part of the range is not covered by an entry (a free of unmapped VA).
    case notMapped(start: UInt64, size: UInt64, hole: UInt64)
    /// The entry zone has no item at all, not even in the reserve: the
    /// recursion the reserve exists to prevent (FreeBSD: "kmapent_alloc:
    /// vm_map_insert() failed").
    case entryZoneExhausted(reserve: Int)
    /// ``KernelMap/verify()`` found a broken invariant; the text says which.
    case invariantViolated(String)
}

extension KernelMapError: CustomStringConvertible {
    public var description: String {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        switch self {
        case .invalidConfiguration(let r): return "kernel map: invalid configuration: \(r)"
        case .notLocked(let op): return "kernel map: \(op) needs the map lock, which the caller does not hold"
        case .recursiveLock: return "kernel map: lock recursed on the non-recursive map mutex"
        case .replenishLeaked(let op): return "kernel map: \(op): MAP_REPLENISH leaked"
        case let .wrongLockMode(op, held): return "kernel map: \(op) with the lock held \(held)"
        case .zeroSize: return "kernel map: size is zero"
        case let .unaligned(p, v, ps): return "kernel map: \(p) \(hex(v)) is not a multiple of the page size \(hex(ps))"
        case let .overflow(s, n): return "kernel map: \(hex(s)) + \(hex(n)) overflows 2^64"
        case let .outOfRange(s, n, lo, hi):
            return "kernel map: [\(hex(s)), +\(hex(n))) is outside the map [\(hex(lo)), \(hex(hi)))"
        case let .overlap(s, n, es, ee):
            return "kernel map: [\(hex(s)), +\(hex(n))) overlaps entry [\(hex(es)), \(hex(ee)))"
        case .noSpace(let n): return "kernel map: no free range of \(hex(n)) bytes"
        case let .notMapped(s, n, h): return "kernel map: [\(hex(s)), +\(hex(n))) is not mapped at \(hex(h))"
        case .entryZoneExhausted(let r):
            return "kernel map: map-entry zone exhausted (reserve \(r)): an entry is needed to map entries"
        case .invariantViolated(let s): return "kernel map: invariant violated: \(s)"
        }
    }
}
