#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A mutex on `pthread_mutex_t`, which the thread sanitizer understands
/// (ARCHITECTURE.md: it does not see `Synchronization.Mutex` on this
/// toolchain). `package`, so that every layer above shares this one without
/// making it API: host and guest memory, physical memory, the model kernel.
package final class HostLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    package init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always)
    package func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// For a hold that a closure cannot bracket (taken in one call, released
    /// in another); pair with ``unlock()``.
    @inline(__always)
    package func lock() { pthread_mutex_lock(mutex) }

    @inline(__always)
    package func unlock() { pthread_mutex_unlock(mutex) }
}
