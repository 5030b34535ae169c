import CVmemSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutex and condition variable on `pthread_mutex_t` / `pthread_cond_t`.
///
/// Not `Synchronization.Mutex`: on this toolchain the thread sanitizer does not
/// understand that type and reports false races (ARCHITECTURE.md, conventions),
/// and an arena needs a condition variable for `VM_SLEEP` anyway. The storage
/// is heap-allocated once, so its address is stable as pthreads requires.
@usableFromInline
final class ArenaLock: @unchecked Sendable {
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    @usableFromInline let cond: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        cond = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        #if os(Linux)
        // Deadlines are ContinuousClock instants, i.e. CLOCK_MONOTONIC.
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        #endif
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    @inlinable @inline(__always) func lock() { pthread_mutex_lock(mutex) }
    @inlinable @inline(__always) func unlock() { pthread_mutex_unlock(mutex) }
    @inlinable @inline(__always) func tryLock() -> Bool { pthread_mutex_trylock(mutex) == 0 }

    @inlinable @inline(__always)
    func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Wakes every waiter.
    func broadcast() { pthread_cond_broadcast(cond) }

    /// Waits (lock held) until signalled or until `deadline` (monotonic
    /// nanoseconds since boot), or for at most `slice` nanoseconds when both
    /// are absent. Returns false when the deadline passed.
    func wait(untilMonotonicNanoseconds deadline: UInt64?) -> Bool {
        guard let deadline else {
            pthread_cond_wait(cond, mutex)
            return true
        }
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        return pthread_cond_timedwait(cond, mutex, &ts) != ETIMEDOUT
    }
}

/// Monotonic time in nanoseconds (the clock of `ContinuousClock` on Linux and
/// of the condition variable above).
@inlinable
public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// The kernel thread id of the caller (what audit records and `::vmem_seg -v`
/// show as THREAD).
@inlinable
func currentThreadID() -> UInt64 {
    cvmem_thread_id()
}
