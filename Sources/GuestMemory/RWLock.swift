import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A readers-writer lock on `pthread_rwlock_t` (which the thread sanitizer
/// understands): the access paths share it, map changes take it alone —
/// FreeBSD's rule (inspect with one vCPU frozen, modify with all).
///
/// Every exclusive section is bracketed by ``sequence`` (odd while one
/// runs): a reader that takes no lock at all — the page-hold fast path —
/// reads it before and after, and trusts what it read only if it is the
/// same even value (a seqlock's read side).
final class RWLock: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    /// Bumped (sequentially consistent) on entering and on leaving every
    /// exclusive section.
    let sequence = Atomic<UInt64>(0)

    init() {
        lock = .allocate(capacity: 1)
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    @inline(__always)
    func reading<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    /// Shared, without a closure (for paths that return a `~Copyable`
    /// value, like a ``PageHold``): pair with ``unlock()``.
    @inline(__always)
    func lockShared() { pthread_rwlock_rdlock(lock) }

    @inline(__always)
    func lockExclusive() {
        pthread_rwlock_wrlock(lock)
        sequence.wrappingAdd(1, ordering: .sequentiallyConsistent)
    }

    /// Ends a shared hold.
    @inline(__always)
    func unlock() { pthread_rwlock_unlock(lock) }

    @inline(__always)
    func unlockExclusive() {
        sequence.wrappingAdd(1, ordering: .sequentiallyConsistent)
        pthread_rwlock_unlock(lock)
    }

    @inline(__always)
    func writing<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lockExclusive()
        defer { unlockExclusive() }
        return try body()
    }
}
