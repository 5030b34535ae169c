import CVmemSupport
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The arena lock and its condition: a futex-based mutex and a generation
/// counter on two atomic words.
///
/// Why not `pthread_mutex_t`: an uncontended lock and unlock pair cost about
/// a hundred instructions there, a third of an instant-fit allocation; this
/// lock takes one compare-and-swap to enter and one exchange to leave, and
/// sleeps in the kernel only under contention. Why not
/// `Synchronization.Mutex`: the thread sanitizer misreads it on this
/// toolchain (ARCHITECTURE.md, conventions); the atomics here, with their
/// acquire/release orderings, are what the sanitizer understands.
///
/// The lock word is 0 (free), 1 (held) or 2 (held, and someone may sleep on
/// it: the unlocker must wake one). A waiter on the condition reads the
/// generation with the lock held, unlocks, and sleeps only while the
/// generation is unchanged, so a broadcast between the unlock and the sleep is
/// never lost.
@usableFromInline
final class ArenaLock: @unchecked Sendable {
    @usableFromInline let word: UnsafeMutablePointer<Atomic<UInt32>>
    @usableFromInline let generation: UnsafeMutablePointer<Atomic<UInt32>>

    init() {
        word = .allocate(capacity: 1)
        word.initialize(to: Atomic(0))
        generation = .allocate(capacity: 1)
        generation.initialize(to: Atomic(0))
    }

    deinit {
        word.deinitialize(count: 1); word.deallocate()
        generation.deinitialize(count: 1); generation.deallocate()
    }

    @inlinable @inline(__always) func lock() {
        if !word.pointee.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged { lockSlow() }
    }

    @usableFromInline @inline(never) func lockSlow() {
        // A short spin first: arena critical sections are a few hundred
        // instructions, usually over before a sleep could start.
        for _ in 0..<64 {
            if word.pointee.load(ordering: .relaxed) == 0,
               word.pointee.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged { return }
        }
        while word.pointee.exchange(2, ordering: .acquiring) != 0 {
            _ = cvmem_futex_wait(rawWord, 2, 0)
        }
    }

    @inlinable @inline(__always) func unlock() {
        if word.pointee.exchange(0, ordering: .releasing) == 2 { wakeOne() }
    }

    @usableFromInline @inline(never) func wakeOne() { cvmem_futex_wake(rawWord, 1) }

    @inlinable @inline(__always) func tryLock() -> Bool {
        word.pointee.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged
    }

    @inlinable @inline(__always)
    func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lock()
        defer { unlock() }
        return try body()
    }

    @usableFromInline var rawWord: UnsafeMutablePointer<UInt32> {
        UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self)
    }

    var rawGeneration: UnsafeMutablePointer<UInt32> {
        UnsafeMutableRawPointer(generation).assumingMemoryBound(to: UInt32.self)
    }

    /// Wakes every waiter (lock held).
    func broadcast() {
        generation.pointee.add(1, ordering: .releasing)
        cvmem_futex_wake(rawGeneration, Int32.max)
    }

    /// Waits (lock held) until a broadcast or until `deadline` (monotonic
    /// nanoseconds). May return early without either, as condition variables
    /// do; callers re-check their condition. Returns false when the deadline
    /// passed.
    func wait(untilMonotonicNanoseconds deadline: UInt64?) -> Bool {
        let seen = generation.pointee.load(ordering: .acquiring)
        unlock()
        let timedOut = cvmem_futex_wait(rawGeneration, seen, deadline ?? 0) != 0
        lock()
        if let deadline, timedOut || monotonicNanoseconds() >= deadline { return false }
        return true
    }
}

/// Monotonic time in nanoseconds (the clock of `ContinuousClock` on Linux and
/// of the futex deadlines above).
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
