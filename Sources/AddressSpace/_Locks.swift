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
/// Two kinds of reader share it:
///
/// - *Shared readers* (``readLock()`` / ``readUnlock()``: every read section
///   but `segat`'s) pay one atomic add to enter and one subtract to leave;
///   the `pthread_rwlock_t` this replaced cost about twice that. `state` is
///   `2 × shared readers + (writer holds ? 1 : 0)`. A reader that finds the
///   writer bit backs out and sleeps on the condition variable until the
///   writer leaves; the last shared reader out wakes a waiting writer.
///
/// - *Slot readers* (``slotReadLock()`` / ``slotReadUnlock(_:)``: only
///   `AddressSpace.segat`, whose read section is a tree search that neither
///   blocks nor takes any other lock) each own a word in `slots`, one per
///   cache line, picked by hashing the thread's stack address: a
///   compare-and-swap on that word (0 → 1) to enter, then a check of the
///   writer bit, and a release store of 0 to leave — a plain `mov` on
///   x86-64, where the shared reader pays a second locked instruction and a
///   load, and no wake-up call. A thread whose slot is taken tries the next.
///
/// A writer (writers queue on `writerMutex`) waits on the condition
/// variable until no shared reader is in and takes the writer bit (0 → 1);
/// from then on no reader of either kind enters. It then waits for the slot
/// readers already inside — at most one short search each — by polling
/// their words (yielding the CPU after a few rounds, in case one was
/// preempted). The entry protocol is the store-load pattern on both sides
/// (slot reader: store its slot, then load `state`; writer: store the bit,
/// then load the slots), all sequentially consistent, so at least one of
/// the two sees the other: the reader backs out, or the writer waits.
///
/// Readers are preferred, like glibc's default rwlock: a waiting writer does
/// not hold the bit, so a thread that already reads may read again (shared
/// or by slot) even while a writer waits. Built from `Atomic` and pthread
/// mutex/condition, all of which the thread sanitizer understands.
///
/// The reader fast paths are `@inlinable`, with their slow paths out of line.
@usableFromInline
final class _RWLock: @unchecked Sendable {
    @usableFromInline let state = Atomic<Int>(0)
    @usableFromInline let writersWaiting = Atomic<Int>(0)
    /// The slot readers' words: `slotCount` of them, `slotStride` apart (one
    /// per 64-byte line, so that readers on different CPUs do not share a
    /// line); 0 = free, 1 = a reader is in.
    @usableFromInline let slots: UnsafeMutablePointer<Atomic<Int>>
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>
    private let writerMutex: UnsafeMutablePointer<pthread_mutex_t>

    /// Slot readers that can be in at once without probing.
    @inlinable static var slotCount: Int { 32 }
    /// Words from one slot to the next (64 bytes).
    @inlinable static var slotStride: Int { 8 }
    private static var slotWords: Int { slotCount * slotStride }

    init() {
        mutex = .allocate(capacity: 1)
        cond = .allocate(capacity: 1)
        writerMutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
        pthread_mutex_init(writerMutex, nil)
        slots = UnsafeMutableRawPointer.allocate(byteCount: Self.slotWords * MemoryLayout<Int>.stride, alignment: 64)
            .bindMemory(to: Atomic<Int>.self, capacity: Self.slotWords)
        for i in 0..<Self.slotWords { (slots + i).initialize(to: Atomic(0)) }
    }

    deinit {
        pthread_mutex_destroy(writerMutex)
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        writerMutex.deallocate()
        cond.deallocate()
        mutex.deallocate()
        slots.deinitialize(count: Self.slotWords)
        UnsafeMutableRawPointer(slots).deallocate()
    }

    // MARK: Shared readers

    /// The shared reader fast path: one `lock xadd` in. `wrapping` so that
    /// the add is a single instruction, not a compare-and-swap loop with an
    /// overflow check (`state` cannot overflow: it counts threads).
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
            waitWhileWriterHolds()
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
            wakeWaiters()
        }
    }

    @usableFromInline @inline(never)
    func wakeWaiters() {
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
    }

    /// Sleeps until no writer holds the lock (it may hold it again by the
    /// time the caller looks).
    private func waitWhileWriterHolds() {
        pthread_mutex_lock(mutex)
        while state.load(ordering: .acquiring) & 1 != 0 { pthread_cond_wait(cond, mutex) }
        pthread_mutex_unlock(mutex)
    }

    // MARK: Slot readers

    /// This thread's first choice of slot (an index into `slots`): a hash of
    /// the address of a local, since threads' stacks lie far apart. Any slot
    /// is correct; a good spread only avoids probing and shared lines.
    @inlinable @inline(__always)
    static func preferredSlot() -> Int {
        var marker: UInt8 = 0
        let address = withUnsafeMutablePointer(to: &marker) { UInt64(UInt(bitPattern: $0)) }
        let hash = (address &>> 12) &* 0x9E37_79B9_7F4A_7C15
        return Int(truncatingIfNeeded: hash &>> 59) &* slotStride        // 32 slots: the top 5 bits
    }

    /// Enters as a slot reader (for a short section that takes no other
    /// lock and does not block): one compare-and-swap on the slot, one load
    /// of `state`. Returns the slot to hand to ``slotReadUnlock(_:)``.
    @inlinable @inline(__always)
    func slotReadLock() -> Int {
        let i = Self.preferredSlot()
        if (slots + i).pointee.compareExchange(expected: 0, desired: 1, ordering: .sequentiallyConsistent).exchanged {
            if state.load(ordering: .sequentiallyConsistent) & 1 == 0 { return i }
            (slots + i).pointee.store(0, ordering: .sequentiallyConsistent)
        }
        return slotReadLockSlow(i)
    }

    /// The slot was taken, or a writer holds the lock (this reader has
    /// already left its slot): wait for the writer, try the slots in turn.
    @usableFromInline @inline(never)
    func slotReadLockSlow(_ first: Int) -> Int {
        var i = first
        var tries = 0
        while true {
            if state.load(ordering: .acquiring) & 1 != 0 { waitWhileWriterHolds() }
            if (slots + i).pointee.compareExchange(expected: 0, desired: 1, ordering: .sequentiallyConsistent).exchanged {
                if state.load(ordering: .sequentiallyConsistent) & 1 == 0 { return i }
                (slots + i).pointee.store(0, ordering: .sequentiallyConsistent)
                continue
            }
            i = (i + Self.slotStride) % Self.slotWords
            tries += 1
            if tries % Self.slotCount == 0 { sched_yield() }        // every slot busy
        }
    }

    /// Leaves a slot: a release store (a plain `mov` on x86-64). No writer
    /// needs waking: a writer polls the slots.
    ///
    /// The release fence before it emits no instruction on x86-64 (nor on
    /// arm64, where the store is `stlr`) but is load-bearing: the Swift
    /// optimizer treats a fence as a possible release and an atomic store as
    /// not, so without the fence it may sink the retain of a segment the
    /// caller keeps (and its reads of the segment's fields) below the store —
    /// outside the lock, where a writer may already have unmapped and freed
    /// the segment. Seen in a test build: `mov $0, slot` before
    /// `swift_retain`. With the fence the retain stays inside.
    @inlinable @inline(__always)
    func slotReadUnlock(_ slot: Int) {
        atomicMemoryFence(ordering: .releasing)
        (slots + slot).pointee.store(0, ordering: .releasing)
    }

    /// Whether no slot reader is in (sequentially consistent loads: the
    /// writer's side of the store-load pair).
    private func noSlotReaders() -> Bool {
        var i = 0
        while i < Self.slotWords {
            if (slots + i).pointee.load(ordering: .sequentiallyConsistent) != 0 { return false }
            i += Self.slotStride
        }
        return true
    }

    /// With the writer bit held: waits for the slot readers already in to
    /// leave (each is in the middle of one tree search).
    private func waitForSlotReaders() {
        var i = 0
        while i < Self.slotWords {
            var polls = 0
            while (slots + i).pointee.load(ordering: .sequentiallyConsistent) != 0 {
                polls += 1
                if polls >= 100 { sched_yield() }                    // it may have been preempted
            }
            i += Self.slotStride
        }
    }

    // MARK: Writers

    func writeLock() {
        pthread_mutex_lock(writerMutex)
        pthread_mutex_lock(mutex)
        writersWaiting.add(1, ordering: .sequentiallyConsistent)
        while !state.compareExchange(expected: 0, desired: 1, ordering: .sequentiallyConsistent).exchanged {
            pthread_cond_wait(cond, mutex)
        }
        writersWaiting.subtract(1, ordering: .sequentiallyConsistent)
        pthread_mutex_unlock(mutex)
        waitForSlotReaders()
    }

    func writeUnlock() {
        state.wrappingSubtract(1, ordering: .releasing)
        wakeWaiters()
        pthread_mutex_unlock(writerMutex)
    }

    /// Takes the write lock only if nobody holds either side now.
    func tryWriteLock() -> Bool {
        guard pthread_mutex_trylock(writerMutex) == 0 else { return false }
        if state.compareExchange(expected: 0, desired: 1, ordering: .sequentiallyConsistent).exchanged {
            if noSlotReaders() { return true }
            // A segat is in: it holds the lock as reader. Give the bit back
            // and wake slot readers that saw it meanwhile.
            state.wrappingSubtract(1, ordering: .releasing)
            wakeWaiters()
        }
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
