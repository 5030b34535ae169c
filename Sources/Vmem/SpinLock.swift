import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A test-and-test-and-set lock on one atomic flag, for critical sections of a
/// few instructions (a per-CPU magazine pair, the depot lists).
///
/// Why not `pthread_mutex_t`: an uncontended pthread lock and unlock costs
/// two calls into libc, which is most of a quantum-cache allocation. Why not
/// `Synchronization.Mutex`: the thread sanitizer of this toolchain does not
/// model it and reports false races; it does model `Atomic`, so this lock is
/// sanitizer-clean. A waiter spins reading (not writing) the flag so that the
/// cache line stays shared, then yields the processor: the holder may have
/// been preempted, and on a machine with fewer cores than threads spinning
/// on would only delay it.
///
/// The lock lives in memory that its owner allocated once (it is `~Copyable`
/// and never moves), so its address is stable while threads use it.
@usableFromInline
struct SpinLock: ~Copyable {
    @usableFromInline let held: Atomic<Bool>

    @usableFromInline
    init() { held = Atomic(false) }

    @inlinable @inline(__always)
    func lock() {
        if held.compareExchange(expected: false, desired: true,
                                successOrdering: .acquiring, failureOrdering: .relaxed).exchanged {
            return
        }
        lockContended()
    }

    @inlinable @inline(__always)
    func tryLock() -> Bool {
        held.compareExchange(expected: false, desired: true,
                             successOrdering: .acquiring, failureOrdering: .relaxed).exchanged
    }

    @inlinable @inline(__always)
    func unlock() { held.store(false, ordering: .releasing) }

    /// Spins a short while, then yields between attempts.
    @usableFromInline @inline(never)
    func lockContended() {
        var spins = 0
        while true {
            while held.load(ordering: .relaxed) {
                spins += 1
                if spins >= Self.spinsBeforeYield {
                    sched_yield()
                    spins = 0
                }
            }
            if tryLock() { return }
        }
    }

    /// Long enough to outlast a critical section of the magazine layer
    /// (tens of nanoseconds), short enough not to waste a time slice.
    @usableFromInline static var spinsBeforeYield: Int { 100 }
}
