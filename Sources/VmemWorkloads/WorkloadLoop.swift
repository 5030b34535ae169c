import Vmem
import CVmemSupport

/// One live slot of a workload loop: an allocation and its size, side by
/// side so that a victim costs one cache miss, not two.
public struct WorkloadSlot: Sendable {
    public var address: UInt64
    public var size: UInt64
    @inlinable public init(address: UInt64, size: UInt64) { self.address = address; self.size = size }
}

/// One thread's loop: N live slots, then free-a-victim / allocate-a-new-size.
public struct WorkloadLoop {
    public let arena: Arena
    public let k: UInt64
    /// `k - 1` when `k` is a power of two (then `r % k == r & kMask`, and the
    /// loop saves a division); 0 otherwise.
    public let kMask: UInt64
    public let policy: AllocationPolicy
    public var rng: SplitMix64
    public var slots: [WorkloadSlot]
    /// The highest end address allocated since the fill or the last
    /// ``startPeak()``: tracked on every allocation (one addition and one
    /// comparison in the timed loop), so the high-water mark is the peak of
    /// the run, not a sample taken after it.
    public var peakEnd: UInt64 = 0

    public init(arena: Arena, workload: StandardWorkload, seed: UInt64 = 42) throws(VmemError) {
        self.arena = arena
        self.k = workload.k
        self.kMask = k & (k &- 1) == 0 ? k &- 1 : 0
        self.policy = workload.policy
        rng = SplitMix64(seed: seed)
        slots = []
        slots.reserveCapacity(StandardWorkload.liveSlots)
        for _ in 0..<StandardWorkload.liveSlots {
            let s = (1 + rng.next() % k) * StandardWorkload.quantum
            slots.append(WorkloadSlot(address: try arena.alloc(s, policy: policy), size: s))
        }
        startPeak()
    }

    /// Bytes the live slots hold now (a sum over the slots: outside the
    /// timed loop, which keeps nothing but the peak).
    public var inUse: UInt64 { slots.reduce(0) { $0 &+ $1.size } }

    /// Starts tracking the peak afresh from the live slots (before a timed
    /// run, so that the warm-up's peak does not count).
    public mutating func startPeak() {
        peakEnd = slots.reduce(0) { max($0, $1.address &+ $1.size) }
    }

    /// Runs `count` free+alloc pairs.
    @inlinable
    public mutating func run(_ count: Int) throws(VmemError) {
        // N is a constant the compiler can see in the standard case, so
        // `r % N` becomes a multiplication: a 64-bit division would cost
        // more than some of the operations being measured.
        if slots.count == StandardWorkload.liveSlots {
            try run(count, n: UInt64(truncatingIfNeeded: StandardWorkload.liveSlots))
        } else {
            try run(count, n: UInt64(slots.count))
        }
    }

    @inlinable @inline(__always)
    mutating func run(_ count: Int, n: UInt64) throws(VmemError) {
        // One copy of the loop per policy and size rule, each with its
        // policy and rule as constants: fewer values live across the two
        // calls of a pair, so fewer of them wait on the stack.
        let kMask = self.kMask
        switch (policy, kMask != 0) {
        case (.instantFit, true): try run(count, n: n, policy: .instantFit) { 1 &+ ($0 & kMask) }
        case (.bestFit, true): try run(count, n: n, policy: .bestFit) { 1 &+ ($0 & kMask) }
        default:
            let k = self.k, policy = self.policy
            try run(count, n: n, policy: policy) { 1 &+ $0 % k }
        }
    }

    @inlinable @inline(__always)
    mutating func run(_ count: Int, n: UInt64, policy: AllocationPolicy,
                      quanta: (UInt64) -> UInt64) throws(VmemError) {
        var rng = self.rng
        var peakEnd = self.peakEnd
        defer {
            self.rng = rng
            self.peakEnd = peakEnd
        }
        let arena = self.arena
        try slots.withUnsafeMutableBufferPointer { (live: inout UnsafeMutableBufferPointer<WorkloadSlot>) throws(VmemError) in
            guard count > 0, n > 0, let base = live.baseAddress else { return }
            // The victim of the next pair is drawn one pair early (the draws
            // stay in the order of vmem.md §6) and its slot prefetched, so
            // that the loop's own cache miss does not count as the allocator's.
            var slot = base + Int(truncatingIfNeeded: rng.next() % n)
            var left = count
            while true {
                let s = quanta(rng.next()) &* StandardWorkload.quantum
                left &-= 1
                let next = left > 0 ? base + Int(truncatingIfNeeded: rng.next() % n) : slot
                cvmem_prefetch(next)
                try arena.free(slot.pointee.address, size: slot.pointee.size)
                let a = try arena.alloc(s, policy: policy)
                slot.pointee = WorkloadSlot(address: a, size: s)
                if a &+ s > peakEnd { peakEnd = a &+ s }
                if left == 0 { break }
                slot = next
            }
        }
    }

    /// The high-water mark since ``startPeak()``: the highest end address
    /// allocated minus the base, and the bytes in use now (in steady state
    /// the sum of 10,000 slots moves by well under 1%).
    public var highWater: (extent: UInt64, inUse: UInt64) {
        (peakEnd &- StandardWorkload.base, inUse)
    }

    /// The slab of each live allocation the arena's quantum caches serve,
    /// as the slab's base (one entry per allocation); empty without caches.
    public var liveCacheSlabs: [UInt64] {
        let slab = arena.quantumCacheSlabSize, cacheMax = arena.quantumCacheMax
        guard slab > 0 else { return [] }
        return slots.lazy.filter { $0.size <= cacheMax }.map { $0.address & ~(slab &- 1) }
    }

    public mutating func freeAll() throws(VmemError) {
        for slot in slots { try arena.free(slot.address, size: slot.size) }
        slots = []
    }
}
