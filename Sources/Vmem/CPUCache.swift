import CVmemSupport

/// One CPU's share of a quantum cache: a *loaded* magazine that allocations
/// pop from and frees push onto, and the *previous* magazine (Bonwick &
/// Adams 2001, §3.1).
///
/// Why two: with one magazine, a thread that alternates allocation and free
/// right at a magazine boundary would trade with the depot on every call.
/// Keeping the previously loaded magazine — always either full or empty —
/// means a CPU can absorb a whole magazine's worth of allocations *and* of
/// frees before it needs the depot again.
///
/// Each CPU cache has its own ``SpinLock``: it is almost always taken by the
/// thread running on that CPU, so it is uncontended and its cache line stays
/// in that CPU's cache. (A thread may be migrated between choosing its slot
/// and locking it; the lock keeps that harmless, it just costs a little.)
///
/// Invariants: `loaded == nil` implies `loadedRounds == 0` and
/// `previous == nil`; `previousRounds` is 0 or the magazine capacity;
/// `0 <= loadedRounds <= capacity`.
@usableFromInline
struct CPUCache: ~Copyable {
    // Layout note (thread sanitizer): Swift reports a mutating access to a
    // struct reached through a pointer (a mutating method, `+=`) as a write
    // of the struct's first byte. An atomic there would be "raced" by every
    // such write, so the atomics of this struct are declared after a plain
    // field (stored properties are laid out in declaration order).
    @usableFromInline var loaded: Magazine? = nil
    @usableFromInline var loadedRounds = 0
    @usableFromInline var previous: Magazine? = nil
    @usableFromInline var previousRounds = 0
    /// Bytes from a round's user-byte pointer (line 0) to this CPU's line
    /// of user bytes (see ``SlabRecord``); set once, when the cache is made.
    @usableFromInline var stateOffset = 0
    /// Allocations and frees served through this CPU (the cache totals are
    /// sums over CPUs, so that the hot path never writes a shared counter).
    @usableFromInline var allocs: UInt64 = 0
    @usableFromInline var frees: UInt64 = 0
    @usableFromInline let lock: SpinLock

    @usableFromInline
    init() { lock = SpinLock() }
}

/// The per-CPU caches of one quantum cache, each on its own 128-byte block.
///
/// 128 rather than 64 bytes because x86 prefetches cache lines in adjacent
/// pairs: two CPUs writing neighbouring 64-byte slots would still slow each
/// other down (false sharing).
@usableFromInline
struct CPUCacheTable {
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let count: Int

    @usableFromInline static let slotStride = 128

    @usableFromInline
    init(count: Int) {
        precondition(MemoryLayout<CPUCache>.stride <= Self.slotStride)
        self.count = count
        base = .allocate(byteCount: count * Self.slotStride, alignment: Self.slotStride)
        for i in 0..<count {
            (base + i * Self.slotStride).bindMemory(to: CPUCache.self, capacity: 1).initialize(to: CPUCache())
        }
    }

    /// Frees the table; every magazine must already have been taken out.
    @usableFromInline
    func deallocate() {
        for i in 0..<count { self[i].deinitialize(count: 1) }
        base.deallocate()
    }

    @inlinable
    subscript(index: Int) -> UnsafeMutablePointer<CPUCache> {
        @inline(__always) get {
            (base + index &* Self.slotStride).assumingMemoryBound(to: CPUCache.self)
        }
    }

    /// The slot number of `cache`, one of this table's.
    @inlinable @inline(__always)
    func index(of cache: UnsafeMutablePointer<CPUCache>) -> Int {
        (UnsafeMutableRawPointer(cache) - base) / Self.slotStride
    }

    /// The slot of the CPU the caller runs on when the restartable-sequences
    /// area tells it and it has a slot of its own; -1 otherwise (the caller
    /// then takes its slow path, which uses ``current``). One load.
    @inlinable
    var fastSlot: Int {
        @inline(__always) get {
            // One unsigned comparison rejects both a negative number and
            // one beyond the slots.
            let cpu = Int(cvmem_rseq_cpu())
            return UInt(bitPattern: cpu) < UInt(bitPattern: count) ? cpu : -1
        }
    }

    /// The cache of the CPU the caller runs on (slot 0 when the C library
    /// cannot tell), folded onto the table when there are more CPUs than slots.
    @inlinable
    var current: UnsafeMutablePointer<CPUCache> {
        @inline(__always) get {
            let cpu = Int(cvmem_fast_cpu())
            // A division costs more than the rest of the fast path: avoid it
            // in the usual case of a CPU number below the slot count.
            let index = cpu < 0 ? 0 : (cpu < count ? cpu : cpu % count)
            return self[index]
        }
    }
}
