#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A readers-writer lock on `pthread_rwlock_t` (which the thread sanitizer
/// understands): the access paths share it, map changes take it alone —
/// FreeBSD's rule (inspect with one vCPU frozen, modify with all).
final class RWLock: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>

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

    @inline(__always)
    func writing<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}
