/// Hands out identifiers — process ids, port numbers, minor numbers — from an
/// identifier arena (illumos `VMC_IDENTIFIER`): quantum 1 and next fit, so an
/// identifier is not reused until every other free one has been handed out,
/// which makes a stale identifier unlikely to name a new object.
///
/// ```swift
/// // Process ids as illumos hands them out: 1...maxpid, 0 is never used.
/// let pids = try IdentifierAllocator(name: "pids", first: 1, count: 30_000)
/// let pid = try pids.allocate()          // 1, then 2, 3, ... even after frees
/// try pids.free(pid)
/// ```
public final class IdentifierAllocator: Sendable {
    public let arena: Arena

    /// Identifiers `first ..< first + count`.
    public init(name: String, first: UInt64, count: UInt64) throws(VmemError) {
        arena = try Arena(name: name, base: first, size: count, quantum: 1, flags: .identifier)
    }

    /// The next free identifier after the last one handed out.
    public func allocate(wait: WaitPolicy = .noSleep) throws(VmemError) -> UInt64 {
        try arena.alloc(1, policy: .nextFit, wait: wait)
    }

    /// `count` consecutive identifiers (a block of minor numbers, say).
    public func allocate(count: UInt64, wait: WaitPolicy = .noSleep) throws(VmemError) -> UInt64 {
        try arena.alloc(count, policy: .nextFit, wait: wait)
    }

    /// A specific identifier, if it is free.
    public func claim(_ id: UInt64) throws(VmemError) {
        _ = try arena.allocExact(at: id, size: 1)
    }

    public func free(_ id: UInt64, count: UInt64 = 1) throws(VmemError) {
        // Exact claims are xalloc'd; both kinds free the same way in an arena
        // without quantum caches.
        try arena.xfree(id, size: count)
    }

    /// Identifiers in use.
    public var inUse: UInt64 { arena.size(.allocated) }
}
