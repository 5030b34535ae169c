import Synchronization

/// An object cache for one allocation size of an arena: the quantum cache of
/// Bonwick & Adams (2001), which serves the small sizes of an arena without
/// its lock, in constant time, and scales with the number of CPUs.
///
/// Three layers, top to bottom:
///
/// 1. **CPU caches** (``CPUCache``), one per CPU: a loaded and a previous
///    magazine under a per-CPU spin lock. Almost every allocation pops a
///    round from the loaded magazine and almost every free pushes one.
/// 2. **The depot** (``Depot``): full and empty magazines that no CPU holds.
///    A CPU whose two magazines are both empty (allocating) or both full
///    (freeing) trades one with the depot.
/// 3. **The slab layer** (``SlabLayer``): slabs of `slabSize` bytes from the
///    arena (``QuantumCacheBackend``), cut into objects. When the depot has no
///    full magazine an allocation fills the CPU's magazine from here; a reap
///    returns the depot's objects here and gives wholly free slabs back.
///
/// Objects are numbers, not memory: nothing is ever written into an object
/// (kmem's `KMC_NOTOUCH`), so magazines and slab records live outside them.
///
/// **Checking.** With `checked` (the default) every allocation sets, and
/// every free clears, the object's user byte in its slab record, in the line
/// of the CPU it runs on; a free finds the record through the lock-free
/// ``SlabDirectory``, and a free of an address that is not an allocated
/// object of this cache is refused. That costs a hash probe and a byte load
/// and store per operation, on a line only this CPU writes (no locked
/// instruction; see ``SlabRecord`` for the lines, and for the one racing
/// double free this cannot see); with `checked == false` (like kmem without
/// `KMF_DEBUG`) both operations touch only the CPU cache, and a free only
/// checks that the address is a plausible object address (right size class,
/// right offset in a slab).
///
/// **Locks**, in the order they may be nested: the slab-layer lock (the arena lock type, sleeping under contention),
/// a CPU cache's lock (spin), the depot lock (spin). Nothing holds two CPU
/// locks except ``verify()`` and ``statistics``, which take them in index
/// order. No lock is held while the backend runs.
@usableFromInline
final class QuantumCache: @unchecked Sendable {
    @usableFromInline let geometry: SlabGeometry
    @usableFromInline let magazineRounds: Int
    @usableFromInline let checked: Bool
    @usableFromInline let cpus: CPUCacheTable
    @usableFromInline let depot: UnsafeMutablePointer<Depot>
    @usableFromInline let slabs: UnsafeMutablePointer<SlabLayer>
    @usableFromInline let slabLock = ArenaLock()
    @usableFromInline let badFrees = Atomic<UInt64>(0)
    let allocFailures = Atomic<UInt64>(0)
    let backend: QuantumCacheBackend

    /// Bytes per object.
    var objectSize: UInt64 { geometry.objectSize }
    /// Bytes per slab (a power of two; slabs are aligned to it).
    var slabSize: UInt64 { geometry.slabSize }
    var objectsPerSlab: Int { geometry.objectsPerSlab }
    var cpuCount: Int { cpus.count }

    /// A cache of `objectSize`-byte objects cut from `slabSize`-byte slabs.
    ///
    /// `slabSize` is used as given when it is a power of two holding 1 to 64
    /// objects, which the arena's rule always gives; otherwise the nearest
    /// size that does (see ``SlabGeometry/normalised(objectSize:slabSize:)``
    /// and ``slabSize``). `cpuCount` below 1 counts as 1, and `magazineRounds`
    /// is clamped to `1...1024`.
    init(objectSize: UInt64, slabSize: UInt64, cpuCount: Int,
         magazineRounds: Int = MagazineSize.defaultRounds, checked: Bool = true,
         backend: QuantumCacheBackend) {
        geometry = SlabGeometry(objectSize: objectSize, slabSize: slabSize)
        self.magazineRounds = min(max(magazineRounds, MagazineSize.minimumRounds), MagazineSize.maximumRounds)
        self.checked = checked
        self.backend = backend
        cpus = CPUCacheTable(count: max(cpuCount, 1))
        depot = .allocate(capacity: 1)
        depot.initialize(to: Depot(cpuCount: cpus.count))
        slabs = .allocate(capacity: 1)
        slabs.initialize(to: SlabLayer(geometry: geometry, cpuCount: cpus.count))
        for i in 0..<cpus.count { cpus[i].pointee.stateOffset = slabs.pointee.stateLineOffset(i) }
    }

    /// Frees the cache's own memory. Slabs still held are *not* given back
    /// (the backend may be gone by now): the owner calls ``drain()`` first.
    deinit {
        for i in 0..<cpus.count {
            let c = cpus[i]
            c.pointee.loaded?.deallocate()
            c.pointee.previous?.deallocate()
        }
        cpus.deallocate()
        depot.deinitialize(count: 1)
        depot.deallocate()
        slabs.deinitialize(count: 1)
        slabs.deallocate()
    }

    // MARK: Allocation

    /// An object, or nil when the cache has none and the backend has no slab.
    ///
    /// The fast path calls nothing: whatever it cannot finish (no CPU number
    /// from the rseq area, a busy CPU lock, an empty loaded magazine) ends in
    /// a tail call to ``allocSlowly()``, which starts over. So the compiler
    /// needs no callee-saved registers here, and the path has no prologue.
    @inlinable
    func alloc() -> UInt64? {
        let slot = cpus.fastSlot
        guard slot >= 0 else { return allocSlowly() }
        let cpu = cpus[slot]
        guard cpu.pointee.lock.tryLock() else { return allocSlowly() }
        guard cpu.pointee.loadedRounds > 0 else {
            cpu.pointee.lock.unlock()
            return allocSlowly()
        }
        let address = popLoaded(cpu)
        cpu.pointee.lock.unlock()
        return address
    }

    /// ``alloc()`` the long way: any CPU number, waiting for the CPU lock,
    /// reloading from the previous magazine, the depot or the slabs.
    @usableFromInline @inline(never)
    func allocSlowly() -> UInt64? {
        let cpu = cpus.current
        cpu.pointee.lock.lock()
        if cpu.pointee.loadedRounds > 0 || reloadForAlloc(cpu) {
            let address = popLoaded(cpu)
            cpu.pointee.lock.unlock()
            return address
        }
        cpu.pointee.lock.unlock()
        return allocFromSlabs()
    }

    /// Pops a round from a loaded magazine known to be non-empty (CPU locked).
    @inlinable @inline(__always)
    func popLoaded(_ cpu: UnsafeMutablePointer<CPUCache>) -> UInt64 {
        let n = cpu.pointee.loadedRounds &- 1
        let m = cpu.pointee.loaded.unsafelyUnwrapped
        let address = m[n]
        cpu.pointee.loadedRounds = n
        handOut(m, n, cpu)
        return address
    }

    /// Books round `index` of `m` leaving the cache for a user (CPU locked):
    /// in a checked cache, sets its user byte in this CPU's line (the round
    /// points at line 0).
    @inlinable @inline(__always)
    func handOut(_ m: Magazine, _ index: Int, _ cpu: UnsafeMutablePointer<CPUCache>) {
        cpu.pointee.allocs &+= 1
        if checked { (m.userState(index).unsafelyUnwrapped + cpu.pointee.stateOffset).pointee.store(1, ordering: .relaxed) }
    }

    /// With the loaded magazine empty (CPU locked): loads the previous
    /// magazine if it is full, else trades with the depot for a full one.
    /// Returns false when neither has rounds.
    @usableFromInline @inline(never)
    func reloadForAlloc(_ cpu: UnsafeMutablePointer<CPUCache>) -> Bool {
        if let p = cpu.pointee.previous, cpu.pointee.previousRounds == magazineRounds {
            cpu.pointee.previous = cpu.pointee.loaded
            cpu.pointee.previousRounds = cpu.pointee.loadedRounds
            cpu.pointee.loaded = p
            cpu.pointee.loadedRounds = magazineRounds
            return true
        }
        depot.pointee.lock.lock()
        defer { depot.pointee.lock.unlock() }
        guard let full = depot.pointee.popFull(preferring: cpus.index(of: cpu)) else { return false }
        depot.pointee.fullExchanges &+= 1
        // The previous magazine is empty here (it is always full or empty).
        if let p = cpu.pointee.previous { depot.pointee.pushEmpty(p, from: cpus.index(of: cpu)) }
        cpu.pointee.previous = cpu.pointee.loaded
        cpu.pointee.previousRounds = cpu.pointee.loadedRounds
        cpu.pointee.loaded = full
        cpu.pointee.loadedRounds = magazineRounds
        return true
    }

    /// The miss path: fill the CPU's loaded magazine from the slab layer,
    /// getting a new slab from the backend when no slab has a free object.
    @usableFromInline @inline(never)
    func allocFromSlabs() -> UInt64? {
        slabLock.lock()
        defer { slabLock.unlock() }
        while true {
            // Look again: another thread may have refilled this CPU or the
            // depot meanwhile, and this thread may now run on another CPU.
            let cpu = cpus.current
            cpu.pointee.lock.lock()
            if cpu.pointee.loadedRounds > 0 || reloadForAlloc(cpu) {
                let address = popLoaded(cpu)
                cpu.pointee.lock.unlock()
                return address
            }
            if slabs.pointee.freeObjects > 0 {
                let m: Magazine
                if let loaded = cpu.pointee.loaded {
                    m = loaded
                } else {
                    depot.pointee.lock.lock()
                    m = depot.pointee.takeEmpty(capacity: magazineRounds, for: cpus.index(of: cpu))
                    depot.pointee.lock.unlock()
                    cpu.pointee.loaded = m
                }
                cpu.pointee.loadedRounds = slabs.pointee.take(into: m, from: 0, limit: magazineRounds)
                let address = popLoaded(cpu)
                cpu.pointee.lock.unlock()
                return address
            }
            cpu.pointee.lock.unlock()

            slabLock.unlock()
            let base = backend.allocSlab(geometry.slabSize, geometry.slabSize)
            slabLock.lock()
            guard let base else {
                allocFailures.add(1, ordering: .relaxed)
                return nil
            }
            switch slabs.pointee.addSlab(base) {
            case .adopted:
                if slabs.pointee.directory.hasRetired { quiesceDirectoryReaders() }
            case .misaligned:
                // Not usable, but it is the backend's: give it back.
                allocFailures.add(1, ordering: .relaxed)
                slabLock.unlock()
                backend.freeSlab(base, geometry.slabSize)
                slabLock.lock()
                return nil
            case .alreadyHeld:
                // The backend handed out a slab it had already given us;
                // returning it would free our live slab, so drop it.
                allocFailures.add(1, ordering: .relaxed)
                return nil
            }
        }
    }

    /// Waits until no CPU can still be probing a retired directory table,
    /// then frees the retired tables (slab lock held, no CPU lock held).
    func quiesceDirectoryReaders() {
        for i in 0..<cpus.count {
            cpus[i].pointee.lock.lock()
            cpus[i].pointee.lock.unlock()
        }
        slabs.pointee.directory.freeRetired()
    }

    // MARK: Free

    /// Takes back an object. Returns false, changing nothing, when `address`
    /// is not an object of this cache that is currently allocated (with
    /// `checked == false`: when it is not even at an object's offset).
    ///
    /// Like ``alloc()``, the fast path calls nothing and leaves every other
    /// case to a tail call: ``freeSlowly(_:_:)`` before anything changed,
    /// ``pushSlowly(_:_:_:)`` once the user byte is cleared.
    @inlinable
    func free(_ address: UInt64) -> Bool {
        guard let index = geometry.objectIndex(address) else { return refuseFree() }
        let slot = cpus.fastSlot
        guard slot >= 0 else { return freeSlowly(address, index) }
        let cpu = cpus[slot]
        guard cpu.pointee.lock.tryLock() else { return freeSlowly(address, index) }
        return freeLocked(address, index, cpu)
    }

    /// ``free(_:)`` the long way, for object `index` of its slab: any CPU
    /// number, waiting for the CPU lock.
    @usableFromInline @inline(never)
    func freeSlowly(_ address: UInt64, _ index: Int) -> Bool {
        let cpu = cpus.current
        cpu.pointee.lock.lock()
        return freeLocked(address, index, cpu)
    }

    /// The rest of a free once `cpu` is locked: checks and clears the user
    /// byte (checked caches), pushes the object, unlocks.
    @inlinable @inline(__always)
    func freeLocked(_ address: UInt64, _ index: Int, _ cpu: UnsafeMutablePointer<CPUCache>) -> Bool {
        var state: UnsafeMutablePointer<Atomic<UInt8>>? = nil
        if checked {
            // Inside the CPU lock: that is what makes the directory's
            // grace period (and verify's snapshot) cover this lookup.
            guard let r = slabs.pointee.directory.lookup(base: geometry.slabBase(address)) else {
                cpu.pointee.lock.unlock()
                return refuseFree()
            }
            let lineZero = r.userState(index)
            let own = lineZero + cpu.pointee.stateOffset
            guard own.pointee.load(ordering: .relaxed) != 0 else { return freeAllocatedElsewhere(address, lineZero, cpu) }
            own.pointee.store(0, ordering: .relaxed)
            state = lineZero
        }
        return push(address, state, cpu)
    }

    /// Pushes a freed object onto the CPU's loaded magazine (CPU locked, user
    /// byte already cleared), unlocks.
    @inlinable @inline(__always)
    func push(_ address: UInt64, _ state: UnsafeMutablePointer<Atomic<UInt8>>?,
              _ cpu: UnsafeMutablePointer<CPUCache>) -> Bool {
        let n = cpu.pointee.loadedRounds
        guard let m = cpu.pointee.loaded, n < magazineRounds else { return pushSlowly(address, state, cpu) }
        m.setRound(n, address: address, state: state)
        cpu.pointee.loadedRounds = n &+ 1
        cpu.pointee.frees &+= 1
        cpu.pointee.lock.unlock()
        return true
    }

    /// A checked free whose object's byte is clear in this CPU's line (CPU
    /// locked): the object was allocated on another CPU, whose line has it
    /// set, or it is not allocated at all and the free is refused.
    @usableFromInline @inline(never)
    func freeAllocatedElsewhere(_ address: UInt64, _ lineZero: UnsafeMutablePointer<Atomic<UInt8>>,
                                _ cpu: UnsafeMutablePointer<CPUCache>) -> Bool {
        for line in 0..<slabs.pointee.stateLines {
            let byte = lineZero + line &* SlabLayer.stateAreaBytes
            if byte.pointee.load(ordering: .relaxed) != 0 {
                byte.pointee.store(0, ordering: .relaxed)
                return push(address, lineZero, cpu)
            }
        }
        cpu.pointee.lock.unlock()
        return refuseFree()
    }

    /// The end of a free whose loaded magazine is full or absent (CPU
    /// locked, user byte already cleared): reloads, pushes, unlocks.
    @usableFromInline @inline(never)
    func pushSlowly(_ address: UInt64, _ state: UnsafeMutablePointer<Atomic<UInt8>>?,
                    _ cpu: UnsafeMutablePointer<CPUCache>) -> Bool {
        pushAfterReload(address, state, cpu)
        cpu.pointee.frees &+= 1
        cpu.pointee.lock.unlock()
        return true
    }

    @usableFromInline @inline(never)
    func refuseFree() -> Bool {
        badFrees.add(1, ordering: .relaxed)
        return false
    }

    /// With the loaded magazine full or absent (CPU locked): loads the
    /// previous magazine if it is empty, else trades the previous (full)
    /// magazine with the depot for an empty one; then pushes `address`.
    @usableFromInline
    func pushAfterReload(_ address: UInt64, _ state: UnsafeMutablePointer<Atomic<UInt8>>?,
                         _ cpu: UnsafeMutablePointer<CPUCache>) {
        if let p = cpu.pointee.previous, cpu.pointee.previousRounds == 0 {
            cpu.pointee.previous = cpu.pointee.loaded
            cpu.pointee.previousRounds = cpu.pointee.loadedRounds
            cpu.pointee.loaded = p
        } else {
            depot.pointee.lock.lock()
            let empty = depot.pointee.takeEmpty(capacity: magazineRounds, for: cpus.index(of: cpu))
            depot.pointee.emptyExchanges &+= 1
            // The previous magazine is full here (it is always full or empty).
            if let p = cpu.pointee.previous { depot.pointee.pushFull(p, from: cpus.index(of: cpu)) }
            depot.pointee.lock.unlock()
            cpu.pointee.previous = cpu.pointee.loaded
            cpu.pointee.previousRounds = cpu.pointee.loaded == nil ? 0 : cpu.pointee.loadedRounds
            cpu.pointee.loaded = empty
        }
        cpu.pointee.loaded.unsafelyUnwrapped.setRound(0, address: address, state: state)
        cpu.pointee.loadedRounds = 1
    }

    // MARK: Reclaiming

    /// Returns the objects of the depot's full magazines to the slab layer,
    /// frees the depot's magazines, and gives every wholly free slab back to
    /// the backend (kmem's depot reap plus slab reclaim). CPU magazines are
    /// left alone. Returns the number of slabs given back.
    @discardableResult
    func reap() -> Int {
        slabLock.lock()
        depot.pointee.lock.lock()
        emptyDepotLocked()
        depot.pointee.lock.unlock()
        let released = slabs.pointee.removeWhollyFreeSlabs()
        slabLock.unlock()
        for base in released { backend.freeSlab(base, geometry.slabSize) }
        return released.count
    }

    /// Empties every magazine, the CPUs' included, frees them all, and gives
    /// every wholly free slab back: what the arena's destroy needs. Slabs that
    /// still hold allocated objects stay (the arena reports them as leaked).
    /// The cache remains usable. Returns the number of slabs given back.
    @discardableResult
    func drain() -> Int {
        slabLock.lock()
        for i in 0..<cpus.count {
            let c = cpus[i]
            c.pointee.lock.lock()
            depot.pointee.lock.lock()
            if let m = c.pointee.loaded {
                returnRounds(of: m, count: c.pointee.loadedRounds)
                depot.pointee.destroy(m)
            }
            if let m = c.pointee.previous {
                returnRounds(of: m, count: c.pointee.previousRounds)
                depot.pointee.destroy(m)
            }
            depot.pointee.lock.unlock()
            c.pointee.loaded = nil
            c.pointee.loadedRounds = 0
            c.pointee.previous = nil
            c.pointee.previousRounds = 0
            c.pointee.lock.unlock()
        }
        depot.pointee.lock.lock()
        emptyDepotLocked()
        depot.pointee.lock.unlock()
        let released = slabs.pointee.removeWhollyFreeSlabs()
        slabLock.unlock()
        for base in released { backend.freeSlab(base, geometry.slabSize) }
        return released.count
    }

    /// Slab and depot locks held.
    private func emptyDepotLocked() {
        while let m = depot.pointee.popFull() {
            returnRounds(of: m, count: magazineRounds)
            depot.pointee.destroy(m)
        }
        while let m = depot.pointee.popEmpty() { depot.pointee.destroy(m) }
    }

    /// Slab lock held.
    private func returnRounds(of m: Magazine, count: Int) {
        for i in 0..<count { slabs.pointee.give(m[i]) }
    }
}
