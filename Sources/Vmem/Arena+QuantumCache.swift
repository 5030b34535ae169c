import CVmemSupport
import Synchronization

// The quantum-cache front end of an arena (vmem.md §3): sizes up to
// `quantumCacheMax` go to one object cache per multiple of the quantum.

extension Arena {
    /// Bytes per slab of the quantum caches (0 without them): illumos takes
    /// `1 << highbit(3 * qcache_max)`, so a slab holds at least three of the
    /// largest objects. Slabs are aligned to their size, so the slab of a
    /// cached object is its address rounded down to a multiple of this.
    public var quantumCacheSlabSize: UInt64 {
        guard quantumCacheMax > 0 else { return 0 }
        return max(UInt64(1) << UInt64(highbit(3 &* quantumCacheMax)), quantum)
    }

    func makeQuantumCaches() {
        let slab = quantumCacheSlabSize
        // A slot per configured CPU: CPU numbers run up to that count even
        // when some CPUs are offline, and a CPU without a slot of its own
        // would take the slow paths on every call.
        let cpus = Int(cvmem_cpu_slots())
        let backend = QuantumCacheBackend(
            allocSlab: { [unowned self] size, align in self.allocSlab(size, align: align) },
            freeSlab: { [unowned self] address, size in self.freeSlab(address, size: size) })
        var caches = ContiguousArray<QuantumCache>()
        // By count, not by adding quanta up to the limit: with a quantum of
        // 2^60, the sum would pass 2^64.
        for n in 0..<quantumCacheCount {
            caches.append(QuantumCache(objectSize: quantum &* (n &+ 1), slabSize: slab, cpuCount: cpus,
                                       checked: debugging.checkCachedFrees, backend: backend))
        }
        qcaches = caches
        for (i, c) in caches.enumerated() { qcacheTable[i] = Unmanaged.passUnretained(c) }
    }

    /// A slab for a quantum cache: an instant-fit `xalloc` aligned to
    /// `align`, without waiting. A failure is not counted here: the cached
    /// allocation that asked for the slab counts it, once, as illumos's
    /// `vmem_alloc` → `kmem_cache_alloc` → `vmem_xalloc` does.
    func allocSlab(_ size: UInt64, align: UInt64) -> UInt64? {
        lock.lock(); defer { lock.unlock() }
        if destroyed { return nil }
        if debugging.meanTimeBetweenFailures != 0 && injectedFailureDrawn() { return nil }
        let c = Constraints(size: size, align: align, phase: 0, nocross: 0, minaddr: 0, maxaddr: 0, fromEnd: false)
        guard let a = try? xallocLocked(c, policy: .instantFit, wait: .noSleep, countsFailure: false) else { return nil }
        // Marked, so that a caller's free of it is refused (the cache owns it).
        core.pointee.tags[Int(core.pointee.hashFind(a))].cacheSlab = true
        return a
    }

    /// Gives a slab back from its cache: the only free a slab accepts.
    func freeSlab(_ address: UInt64, size: UInt64) {
        try? freeSegment(address, size: size, slab: true)
    }

    /// Whether `address` is at an object's offset in a slab of one of the
    /// caches, and that object's size and whether a user holds it (always
    /// true for an unchecked cache, which cannot tell). Takes each cache's
    /// slab lock; for the error paths of a free.
    func cachedObject(at address: UInt64) -> (objectSize: UInt64, live: Bool)? {
        for c in qcaches {
            c.slabLock.lock()
            defer { c.slabLock.unlock() }
            let g = c.geometry
            guard let i = g.objectIndex(address), let r = c.slabs.pointee.directory.lookup(base: g.slabBase(address))
            else { continue }
            return (g.objectSize, !c.checked || r.isAllocated(i, lines: c.slabs.pointee.stateLines))
        }
        return nil
    }

    /// The error of a free the allocated hash refused, told more exactly
    /// when the address is a quantum-cached object: a live object freed
    /// with another size is a wrong size *of the object* (not of the slab
    /// that may start at the same address), an object already back in its
    /// cache a bad free, and a live object passed to `xfree` with its own
    /// size a call the cache path should have had.
    func refinedFreeError(_ address: UInt64, size: UInt64, _ error: VmemError) -> VmemError {
        guard quantumCacheCount != 0, let (objectSize, live) = cachedObject(at: address) else { return error }
        if !live { return .badFree(address: address, size: size) }
        if size != objectSize { return .wrongSize(address: address, size: size, allocatedSize: objectSize) }
        return .notSupported("xfree of \(hex(address)), an object of the \(hex(objectSize)) quantum cache of arena \(name): free it with free(_:size:)")
    }

    /// Which quantum cache serves `size`: `size / quantum - 1` when `size`
    /// is a non-zero multiple of the quantum, and at least
    /// ``quantumCacheCount`` (no cache) otherwise, so that one unsigned
    /// comparison both rejects and indexes. The rotation moves any bit
    /// below the quantum to the top, and 0 wraps round.
    @inlinable @inline(__always)
    func cacheSlot(_ size: UInt64) -> UInt64 {
        ((size &>> qshift) | (size &<< (64 &- qshift))) &- 1
    }

    @inlinable @inline(__always)
    func cacheAlloc(_ slot: UInt64, _ size: UInt64, wait: WaitPolicy) throws(VmemError) -> UInt64 {
        let cache = qcacheTable[Int(truncatingIfNeeded: slot)]
        if let a = cache._withUnsafeGuaranteedRef({ $0.alloc() }) { return a }
        return try cacheAllocSlow(cache.takeUnretainedValue(), size, wait: wait)
    }

    @usableFromInline
    func cacheAllocSlow(_ cache: QuantumCache, _ size: UInt64, wait: WaitPolicy) throws(VmemError) -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        while true {
            if destroyed { throw failed(.arenaDestroyed(arena: name)) }
            lock.unlock()
            let got = cache.alloc()
            if got == nil { reapCaches() }
            let retry = got ?? cache.alloc()
            lock.lock()
            if let retry { return retry }
            if wait.mode == .noSleep {
                core.pointee.stats.failCount &+= 1
                throw .exhausted(arena: name, size: size)
            }
            try sleep(size, wait)
        }
    }

    /// Returns an object to its cache; false when the cache does not know it
    /// (then the caller tries the arena itself).
    @inlinable @inline(__always)
    func cacheFree(_ address: UInt64, _ slot: UInt64) -> Bool {
        let cache = qcacheTable[Int(truncatingIfNeeded: slot)]
        guard cache._withUnsafeGuaranteedRef({ $0.free(address) }) else { return false }
        // Waiters sleep on the arena; an object back in a cache may be theirs.
        if sleepers.load(ordering: .relaxed) > 0 { wakeWaiters() }
        return true
    }

    @usableFromInline func wakeWaiters() { lock.withLock { lock.broadcast() } }

    /// Gives idle cached objects and wholly free slabs back to the arena.
    public func reapCaches() { for c in qcaches { c.reap() } }

    func drainCaches() { for c in qcaches { c.drain() } }
}
