#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// `a_lock`: the long-term reader/writer lock over the segment tree.
///
/// Readers pay one atomic add to enter and one subtract to leave; the
/// `pthread_rwlock_t` it replaced cost about twice that on the `segat` path.
/// `state` is `2 × readers + (writer holds ? 1 : 0)`. A reader that finds the
/// writer bit backs out and sleeps on the condition variable until the writer
/// leaves; a writer (writers queue on `writerMutex`) waits until no reader is
/// in. Readers are preferred, like glibc's default rwlock, so a thread that
/// already reads may read again even while a writer waits. Built from
/// `Atomic` and pthread mutex/condition, all of which the thread sanitizer
/// understands.
@usableFromInline
final class _RWLock: @unchecked Sendable {
    @usableFromInline let state = Atomic<Int>(0)
    @usableFromInline let writersWaiting = Atomic<Int>(0)
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>
    private let writerMutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        cond = .allocate(capacity: 1)
        writerMutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
        pthread_mutex_init(writerMutex, nil)
    }

    deinit {
        pthread_mutex_destroy(writerMutex)
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        writerMutex.deallocate()
        cond.deallocate()
        mutex.deallocate()
    }

    /// The reader fast path (inlined into callers, in other modules too):
    /// one `lock xadd` in, one out. `wrapping` so that the add is a single
    /// instruction, not a compare-and-swap loop with an overflow check
    /// (`state` cannot overflow: it counts threads).
    @inlinable @inline(__always)
    func readLock() {
        if state.wrappingAdd(2, ordering: .acquiring).oldValue & 1 != 0 { readLockSlow() }
    }

    /// A writer holds the lock: back out and sleep until it leaves, then
    /// try again.
    @usableFromInline @inline(never)
    func readLockSlow() {
        while true {
            state.wrappingSubtract(2, ordering: .releasing)
            pthread_mutex_lock(mutex)
            while state.load(ordering: .acquiring) & 1 != 0 { pthread_cond_wait(cond, mutex) }
            pthread_mutex_unlock(mutex)
            if state.wrappingAdd(2, ordering: .acquiring).oldValue & 1 == 0 { return }
        }
    }

    /// Sequentially consistent on both sides of the store-load pair with
    /// `writeLock` (it raises `writersWaiting`, then reads `state`; this
    /// lowers `state`, then reads `writersWaiting`), so that one of the two
    /// sees the other and a writer is never left waiting for a wake-up. On
    /// x86-64 that costs nothing over acquire/release: the locked
    /// read-modify-write is a full barrier and the load a plain `mov`.
    @inlinable @inline(__always)
    func readUnlock() {
        if state.wrappingSubtract(2, ordering: .sequentiallyConsistent).newValue == 0
            && writersWaiting.load(ordering: .sequentiallyConsistent) != 0 {
            wakeWriters()
        }
    }

    @usableFromInline @inline(never)
    func wakeWriters() {
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
    }

    func writeLock() {
        pthread_mutex_lock(writerMutex)
        pthread_mutex_lock(mutex)
        writersWaiting.add(1, ordering: .sequentiallyConsistent)
        while !state.compareExchange(expected: 0, desired: 1, ordering: .sequentiallyConsistent).exchanged {
            pthread_cond_wait(cond, mutex)
        }
        writersWaiting.subtract(1, ordering: .sequentiallyConsistent)
        pthread_mutex_unlock(mutex)
    }

    func writeUnlock() {
        state.wrappingSubtract(1, ordering: .releasing)
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
        pthread_mutex_unlock(writerMutex)
    }

    /// Takes the write lock only if nobody holds either side now.
    func tryWriteLock() -> Bool {
        guard pthread_mutex_trylock(writerMutex) == 0 else { return false }
        if state.compareExchange(expected: 0, desired: 1, ordering: .sequentiallyConsistent).exchanged { return true }
        pthread_mutex_unlock(writerMutex)
        return false
    }
}

/// `a_contents` and `a_cv`: the short-term mutex over flags and the
/// condition variable unmap waits on.
final class _ContentsLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        cond = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    @inline(__always) func lock() { pthread_mutex_lock(mutex) }
    @inline(__always) func unlock() { pthread_mutex_unlock(mutex) }
    func wait() { pthread_cond_wait(cond, mutex) }
    func broadcast() { pthread_cond_broadcast(cond) }

    @inline(__always)
    func withLock<R>(_ body: () -> R) -> R {
        lock()
        defer { unlock() }
        return body()
    }
}
