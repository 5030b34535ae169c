import Synchronization

/// Cancels allocations that are waiting for room (see ``WaitPolicy``).
///
/// One token may be shared by several waiters and arenas; ``cancel()`` wakes
/// every arena a waiter registered with, and the waiters then fail with
/// ``VmemError/cancelled(arena:size:)``.
public final class CancellationToken: @unchecked Sendable {
    private let flag = Atomic<Bool>(false)
    private let lock = ArenaLock()
    private var wakers: [ObjectIdentifier: ArenaLock] = [:]

    public init() {}

    public var isCancelled: Bool { flag.load(ordering: .acquiring) }

    public func cancel() {
        flag.store(true, ordering: .releasing)
        let toWake = lock.withLock { Array(wakers.values) }
        for l in toWake {
            // Taking the arena lock orders the wake-up after the waiter's check.
            l.lock(); l.broadcast(); l.unlock()
        }
    }

    func register(_ l: ArenaLock) {
        lock.withLock { wakers[ObjectIdentifier(l)] = l }
    }

    func unregister(_ l: ArenaLock) {
        lock.withLock { _ = wakers.removeValue(forKey: ObjectIdentifier(l)) }
    }
}
