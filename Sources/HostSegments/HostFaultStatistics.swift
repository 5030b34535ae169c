import Synchronization

/// What one segment's driver did about faults: how many it served, the bytes
/// it filled and the time it took (the fill itself, from the handler's call
/// to the driver until the driver returned).
public struct HostFaultStatistics: Hashable, Sendable {
    /// Faults served (one per userfaultfd event or explicit fault call).
    public var faults: UInt64 = 0
    /// Bytes filled (a read-ahead fill counts every page it copied).
    public var bytes: UInt64 = 0
    /// Nanoseconds spent serving.
    public var nanoseconds: UInt64 = 0
    /// Faults answered by copying (`UFFDIO_COPY`).
    public var copies: UInt64 = 0
    /// Faults answered with the zero page (`UFFDIO_ZEROPAGE`).
    public var zeroPages: UInt64 = 0
    /// Minor faults answered with `UFFDIO_CONTINUE`.
    public var continues: UInt64 = 0
    /// Faults whose page another fill had already placed (the thread was woken).
    public var alreadyPresent: UInt64 = 0
    /// Faults refused (the touch got `SIGBUS`).
    public var refused: UInt64 = 0

    public init() {}

    /// Adds another segment's figures (per-driver totals).
    public static func + (a: HostFaultStatistics, b: HostFaultStatistics) -> HostFaultStatistics {
        var r = a
        r.faults += b.faults
        r.bytes += b.bytes
        r.nanoseconds += b.nanoseconds
        r.copies += b.copies
        r.zeroPages += b.zeroPages
        r.continues += b.continues
        r.alreadyPresent += b.alreadyPresent
        r.refused += b.refused
        return r
    }
}

/// The counters behind ``HostFaultStatistics``: relaxed atomics, bumped by
/// handler threads without a lock.
final class _FaultCounters: Sendable {
    let faults = Atomic<UInt64>(0)
    let bytes = Atomic<UInt64>(0)
    let nanoseconds = Atomic<UInt64>(0)
    let copies = Atomic<UInt64>(0)
    let zeroPages = Atomic<UInt64>(0)
    let continues = Atomic<UInt64>(0)
    let alreadyPresent = Atomic<UInt64>(0)
    let refused = Atomic<UInt64>(0)

    var snapshot: HostFaultStatistics {
        var s = HostFaultStatistics()
        s.faults = faults.load(ordering: .relaxed)
        s.bytes = bytes.load(ordering: .relaxed)
        s.nanoseconds = nanoseconds.load(ordering: .relaxed)
        s.copies = copies.load(ordering: .relaxed)
        s.zeroPages = zeroPages.load(ordering: .relaxed)
        s.continues = continues.load(ordering: .relaxed)
        s.alreadyPresent = alreadyPresent.load(ordering: .relaxed)
        s.refused = refused.load(ordering: .relaxed)
        return s
    }
}
