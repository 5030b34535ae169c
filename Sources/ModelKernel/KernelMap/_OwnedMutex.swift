import HostMemory
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A non-recursive mutex (HostMemory's `HostLock`) that knows which thread holds it.
///
/// The kernel map needs the owner for two reasons: its slab allocator locks
/// the map "only if the caller does not already hold it" (FreeBSD's
/// `vm_map_locked()` test in `kmapent_alloc`), and a second `lock()` by the
/// holder must be reported instead of deadlocking (FreeBSD panics on a
/// recursed non-recursive mutex). Not `Synchronization.Mutex`: the lock is
/// taken and released in different calls, and the thread sanitizer of this
/// toolchain understands pthread mutexes only.
final class _OwnedMutex: @unchecked Sendable {
    private let mutex = HostLock()
    /// The holder's identity (0 when free). Written only by the holder, right
    /// after acquiring and right before releasing; an atomic so that another
    /// thread asking "is it me?" reads a whole value.
    private let owner = Atomic<UInt>(0)

    /// Whether the calling thread holds the mutex.
    var isHeldByCurrentThread: Bool {
        owner.load(ordering: .relaxed) == Self.currentThread
    }

    func lock() {
        mutex.lock()
        owner.store(Self.currentThread, ordering: .relaxed)
    }

    func unlock() {
        owner.store(0, ordering: .relaxed)
        mutex.unlock()
    }

    /// Runs `body` with the mutex held.
    func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lock()
        defer { unlock() }
        return try body()
    }

    /// A non-zero number unique to the calling thread while it lives.
    static var currentThread: UInt {
        #if canImport(Darwin)
        return UInt(bitPattern: pthread_self())
        #else
        return UInt(pthread_self())
        #endif
    }
}
