import Testing
import VmemWorkloads
import Synchronization
import CVmemSupport
@testable import Vmem
#if canImport(Glibc)
import Glibc
#endif

// MARK: - A fake arena

/// Hands out slabs from a bump pointer (reusing freed slabs first), refuses
/// once `limit` slabs are out, and remembers which slabs are out so that a
/// test can see exactly what the cache gave back.
private final class QCFakeSlabSource: @unchecked Sendable {
    let lock = ArenaLock()
    private var bump: UInt64
    private var recycled: [UInt64] = []
    private(set) var live: Set<UInt64> = []
    private(set) var allocCalls = 0
    private(set) var freeCalls = 0
    private(set) var badFreeCalls = 0
    var limit: Int
    /// When set, the next allocation returns this address instead.
    var override: UInt64?

    init(base: UInt64 = 0x10_0000, limit: Int = .max) {
        bump = base
        self.limit = limit
    }

    func backend() -> QuantumCacheBackend {
        QuantumCacheBackend(
            allocSlab: { size, align in self.alloc(size: size, align: align) },
            freeSlab: { address, size in self.free(address, size: size) })
    }

    private func alloc(size: UInt64, align: UInt64) -> UInt64? {
        lock.withLock {
            allocCalls += 1
            if let o = override { override = nil; live.insert(o); return o }
            guard live.count < limit else { return nil }
            let a: UInt64
            if let r = recycled.popLast() {
                a = r
            } else {
                a = (bump + align - 1) & ~(align - 1)
                bump = a + size
            }
            live.insert(a)
            return a
        }
    }

    private func free(_ address: UInt64, size: UInt64) {
        lock.withLock {
            freeCalls += 1
            if live.remove(address) == nil {
                badFreeCalls += 1
            } else if address % size == 0 {
                recycled.append(address)   // (an injected misaligned slab is not reused)
            }
        }
    }

    var snapshot: (live: Set<UInt64>, allocCalls: Int, freeCalls: Int, badFreeCalls: Int) {
        lock.withLock { (live, allocCalls, freeCalls, badFreeCalls) }
    }
}

// MARK: - Tests

@Suite("QuantumCache")
struct QuantumCacheTests {

    /// The arena's slab-size rule, `max(1 << highbit(3 · qcacheMax), quantum)`,
    /// always gives a geometry the cache keeps unchanged, with ≤ 64 objects.
    @Test func slabRuleGeometry() {
        func highbit(_ x: UInt64) -> Int { 64 - x.leadingZeroBitCount }
        for quantumShift in [0, 3, 12] {
            let quantum: UInt64 = 1 << UInt64(quantumShift)
            for maxQuanta in UInt64(1)...16 {
                let qcacheMax = maxQuanta * quantum
                let slab = max(UInt64(1) << UInt64(highbit(3 * qcacheMax)), quantum)
                for quanta in UInt64(1)...maxQuanta {
                    let g = SlabGeometry(objectSize: quanta * quantum, slabSize: slab)
                    #expect(g.slabSize == slab, "quantum \(quantum) max \(maxQuanta) object \(quanta)")
                    #expect(g.objectsPerSlab == Int(slab / (quanta * quantum)))
                    #expect(g.objectsPerSlab >= 3 && g.objectsPerSlab <= 64)
                }
            }
        }
        // Golden: 4 KiB pages, qcacheMax 8 pages -> 128 KiB slabs (32 one-page
        // objects); 16 pages -> 256 KiB (64 one-page, 4 sixteen-page objects).
        #expect(SlabGeometry(objectSize: 4096, slabSize: 1 << 17).objectsPerSlab == 32)
        #expect(SlabGeometry(objectSize: 3 * 4096, slabSize: 1 << 17).objectsPerSlab == 10)
        #expect(SlabGeometry(objectSize: 4096, slabSize: 1 << 18).objectsPerSlab == 64)
        #expect(SlabGeometry(objectSize: 16 * 4096, slabSize: 1 << 18).objectsPerSlab == 4)
        // Out-of-rule inputs are normalised to a power of two holding 1...64.
        #expect(SlabGeometry(objectSize: 16, slabSize: 100).slabSize == 128)
        #expect(SlabGeometry(objectSize: 1, slabSize: 1 << 20).slabSize == 64)
        #expect(SlabGeometry(objectSize: 4096, slabSize: 1024).slabSize == 4096)
        #expect(SlabGeometry(objectSize: 0, slabSize: 0).objectsPerSlab == 2)  // 1-byte objects, 2-byte slabs
    }

    /// The division-free object index agrees with division at every offset.
    /// The arena's cache dispatch (one rotation, one comparison) against
    /// its definition: a non-zero multiple of the quantum, at most
    /// `quantumCacheMax`, goes to cache `size / quantum - 1`; nothing else
    /// goes to a cache. Quanta from 1 to 2^63, sizes near every boundary.
    @Test func cacheDispatchMatchesItsDefinition() throws {
        var rng = SplitMix64(seed: 17)
        for shift in [0, 1, 3, 12, 21, 40, 59, 62, 63] {
            let q = UInt64(1) << UInt64(shift)
            for count: UInt64 in [0, 1, 2, 8, 16] {
                let (max, o) = q.multipliedReportingOverflow(by: count)
                if o { continue }          // no such quantumCacheMax to ask for
                if max > Arena.largestQuantumCacheMax {
                    // Objects that large leave no room for a slab: refused, naming the values.
                    #expect(throws: VmemError.quantumCacheTooLarge(quantumCacheMax: max, limit: Arena.quantumCacheLimit(quantum: q))) {
                        _ = try Arena(name: "dispatch", quantum: q, quantumCacheMax: max)
                    }
                    continue
                }
                let a = try Arena(name: "dispatch", quantum: q, quantumCacheMax: q &* count)
                defer { a.destroy() }
                #expect(a.quantumCacheCount == count)
                var sizes: [UInt64] = [0, 1, 2, .max, .max - 1, 1 << 63, (1 << 63) + 1]
                for k in UInt64(0)...18 {
                    let (m, o) = q.multipliedReportingOverflow(by: k)
                    if !o { sizes += [m, m &+ 1, m &- 1, m &+ (q >> 1)] }
                }
                for _ in 0..<50 { sizes.append(rng.next() >> (rng.next() % 64)) }
                for size in sizes {
                    let quanta = size / q
                    let cached = size != 0 && size % q == 0 && quanta <= count
                    let slot = a.cacheSlot(size)
                    #expect((slot < a.quantumCacheCount) == cached, "quantum \(q), \(count) caches, size \(size)")
                    if cached { #expect(slot == quanta - 1) }
                }
            }
        }
    }

    @Test func objectIndexMatchesDivision() {
        for objectSize: UInt64 in [1, 2, 3, 5, 6, 7, 12, 24, 40, 48, 4096, 3 * 4096, 5 * 4096, 7 * 4096] {
            let g = SlabGeometry(objectSize: objectSize, slabSize: 64 * objectSize)
            let base: UInt64 = 0x7000_0000_0000 & ~g.offsetMask
            let step = max(1, g.slabSize / 4096)
            var offset: UInt64 = 0
            while offset < g.slabSize {
                let expected: Int? = offset % objectSize == 0 && offset / objectSize < UInt64(g.objectsPerSlab)
                    ? Int(offset / objectSize) : nil
                #expect(g.objectIndex(base + offset) == expected, "size \(objectSize) offset \(offset)")
                offset += offset % objectSize == 0 ? 1 : step
            }
            #expect(g.slabBase(base + g.slabSize - 1) == base)
        }
    }

    /// Walks the magazine state machine: fills from slabs, the previous
    /// magazine, exchanges with the depot in both directions, LIFO order.
    @Test func magazineAndDepotTransitions() throws {
        let source = QCFakeSlabSource()
        let cache = QuantumCache(objectSize: 16, slabSize: 64, cpuCount: 1, magazineRounds: 4,
                                 backend: source.backend())
        let cpu = cache.cpus[0]
        func state() -> [Int] {
            [cpu.pointee.loadedRounds, cpu.pointee.previous == nil ? -1 : cpu.pointee.previousRounds,
             cache.depot.pointee.fullCount, cache.depot.pointee.emptyCount, cache.depot.pointee.magazines]
        }
        #expect(cache.objectsPerSlab == 4)

        // A: 12 allocations fill from 3 slabs, 4 objects at a time.
        var addresses: [UInt64] = []
        for i in 0..<12 {
            addresses.append(try #require(cache.alloc()))
            if i == 0 { #expect(state() == [3, -1, 0, 0, 1]) }
        }
        #expect(Set(addresses).count == 12)
        #expect(state() == [0, -1, 0, 0, 1])
        #expect(cache.statistics.slabs == 3 && cache.statistics.slabFills == 3)
        #expect(cache.verify() == nil)

        // B: 12 frees: the loaded magazine fills, is kept as previous, and the
        // previous full one goes to the depot.
        for (i, a) in addresses.enumerated() {
            #expect(cache.free(a))
            if i == 4 { #expect(state() == [1, 4, 0, 0, 2]) }
            if i == 8 { #expect(state() == [1, 4, 1, 0, 3]) }
        }
        #expect(state() == [4, 4, 1, 0, 3])
        #expect(cache.statistics.depotEmptyExchanges == 2)
        #expect(cache.verify() == nil)

        // C: allocations come back last-in first-out; the full previous
        // magazine is swapped in, then the depot's full one is exchanged.
        var again: [UInt64] = []
        for i in 0..<12 {
            again.append(try #require(cache.alloc()))
            if i == 4 { #expect(state() == [3, 0, 1, 0, 3]) }
            if i == 8 { #expect(state() == [3, 0, 0, 1, 3]) }
        }
        #expect(again == addresses.reversed())
        #expect(cache.statistics.depotFullExchanges == 1)
        // The 13th allocation needs a fourth slab.
        let extra = try #require(cache.alloc())
        #expect(!addresses.contains(extra))
        #expect(state() == [3, 0, 0, 1, 3])
        #expect(cache.statistics.slabs == 4)
        #expect(cache.verify() == nil)

        // D: nothing is wholly free while every object is out or cached.
        #expect(cache.reap() == 0)
        #expect(cache.statistics.magazines == 2)   // the depot's empty one was freed
        for a in again + [extra] { #expect(cache.free(a)) }
        #expect(cache.verify() == nil)
        #expect(cache.drain() == 4)
        let s = cache.statistics
        #expect(s.slabs == 0 && s.magazines == 0 && s.objectsCached == 0 && s.objectsInUse == 0)
        #expect(s.allocs == 25 && s.frees == 25)
        #expect(source.snapshot.live.isEmpty && source.snapshot.badFreeCalls == 0)
        #expect(cache.verify() == nil)
        // Still usable after a drain.
        let after = try #require(cache.alloc())
        #expect(cache.free(after))
        #expect(cache.drain() == 1)
    }

    /// A reap gives back exactly the slabs whose objects are all out of the
    /// CPU magazines and not allocated; the CPU-cached ones stay.
    @Test func reapReturnsWhollyFreeSlabs() throws {
        let source = QCFakeSlabSource()
        let cache = QuantumCache(objectSize: 48, slabSize: 256, cpuCount: 1, magazineRounds: 7,
                                 backend: source.backend())
        #expect(cache.objectsPerSlab == 5)  // 256 / 48, with a 16-byte tail
        var live: [UInt64] = []
        for _ in 0..<200 { live.append(try #require(cache.alloc())) }
        #expect(Set(live).count == 200)
        for a in live { #expect(a % 256 <= 4 * 48 && (a % 256) % 48 == 0) }
        // Keep every 50th object; free the rest.
        let kept = stride(from: 0, to: 200, by: 50).map { live[$0] }
        for (i, a) in live.enumerated() where i % 50 != 0 { #expect(cache.free(a)) }
        let before = cache.statistics
        #expect(before.slabs == 40 && before.objectsInUse == 4)
        #expect(before.depotFullMagazines > 0)

        // The slabs that must stay: those of kept objects and of CPU rounds.
        let cpu = cache.cpus[0]
        var pinned = Set(kept.map { $0 & ~255 })
        if let m = cpu.pointee.loaded { for i in 0..<cpu.pointee.loadedRounds { pinned.insert(m[i] & ~255) } }
        if let m = cpu.pointee.previous { for i in 0..<cpu.pointee.previousRounds { pinned.insert(m[i] & ~255) } }

        let released = cache.reap()
        #expect(released == 40 - pinned.count)
        let after = cache.statistics
        #expect(after.slabs == pinned.count)
        #expect(after.depotFullMagazines == 0 && after.depotEmptyMagazines == 0)
        #expect(after.slabsReleased == UInt64(released))
        #expect(source.snapshot.live == pinned)
        #expect(cache.verify() == nil)

        // A second free of an object, whether its slab was given back or not.
        #expect(!cache.free(live[1]))
        #expect(cache.statistics.badFrees == 1)
        for a in kept { #expect(cache.free(a)) }
        #expect(cache.drain() == pinned.count)
        #expect(source.snapshot.live.isEmpty)
    }

    @Test func badAndDoubleFreesAreRefused() throws {
        let source = QCFakeSlabSource()
        let cache = QuantumCache(objectSize: 32, slabSize: 512, cpuCount: 2, magazineRounds: 3,
                                 backend: source.backend())
        let a = try #require(cache.alloc())
        let b = try #require(cache.alloc())
        #expect(cache.free(a))
        #expect(!cache.free(a), "double free of a cached object")
        #expect(!cache.free(a + 8), "not at an object boundary")
        #expect(!cache.free(a + 512 * 1000), "outside every slab")
        #expect(!cache.free(0))
        // An object of a held slab that was never handed out: the fill took
        // objects 0...2, so object 15 is still free in its slab.
        let unused = (a & ~511) + 15 * 32
        #expect(!qcCacheHolds(cache, unused) && unused != b)
        #expect(!cache.free(unused), "never allocated")
        #expect(cache.free(b))
        #expect(!cache.free(b))
        let s = cache.statistics
        #expect(s.frees == 2 && s.objectsInUse == 0)
        #expect(s.badFrees == 6)
        #expect(cache.verify() == nil)
        // A refused double free did not duplicate the object in a magazine.
        let x = try #require(cache.alloc())
        let y = try #require(cache.alloc())
        #expect(x != y)
        #expect(cache.free(x) && cache.free(y))
        cache.drain()
        #expect(source.snapshot.live.isEmpty)
    }

    /// On a CPU beyond the cache's slots the fast paths have no slot of their
    /// own and hand every call to the slow paths, which fold the CPU onto a
    /// slot: the same objects, the same checks, the same bookkeeping.
    @Test(.enabled(if: cvmem_cpu_count() >= 2))
    func slowPathsServeCPUsBeyondTheSlots() throws {
        let source = QCFakeSlabSource()
        let cache = QuantumCache(objectSize: 32, slabSize: 512, cpuCount: 1, magazineRounds: 3,
                                 backend: source.backend())
        try OSThreads.onCPU(1) {
            #expect(cvmem_rseq_cpu() < 0 || cache.cpus.fastSlot == -1)
            var live: [UInt64] = []
            for _ in 0..<40 { live.append(try #require(cache.alloc())) }
            #expect(Set(live).count == 40)
            for a in live.prefix(20) { #expect(cache.free(a)) }
            #expect(!cache.free(live[0]), "double free, refused on the slow path too")
            #expect(!cache.free(live[20] + 8))
            let s = cache.statistics
            #expect(s.allocs == 40 && s.frees == 20 && s.badFrees == 2 && s.objectsInUse == 20)
            #expect(cache.verify() == nil)
            for a in live.suffix(20) { #expect(cache.free(a)) }
        }
        #expect(cache.verify() == nil)
        cache.drain()
        #expect(source.snapshot.live.isEmpty)
    }

    /// An arena's caches give every configured CPU a slot of its own: CPU
    /// numbers reach the configured count even when some CPUs are offline,
    /// and a CPU without a slot would take the slow paths on every call.
    @Test func arenaCachesHaveASlotPerConfiguredCPU() throws {
        let arena = try Arena(name: "slots", base: 0x1000, size: 1 << 30, quantum: 4096,
                              quantumCacheMax: 2 * 4096)
        defer { arena.destroy() }
        let slots = Int(cvmem_cpu_slots())
        #expect(slots >= Int(cvmem_cpu_count()))
        #expect(arena.qcaches.count == 2)
        for c in arena.qcaches { #expect(c.cpuCount == slots) }
        #expect(Int(cvmem_fast_cpu()) < slots)
    }

    /// Full magazines go back to the CPU whose frees filled them: a CPU pops
    /// its own list first and takes another's only when its own is empty.
    @Test func depotPrefersTheCPUsOwnFullMagazines() {
        var depot = Depot(cpuCount: 3)
        let a = depot.takeEmpty(capacity: 4, for: 0), b = depot.takeEmpty(capacity: 4, for: 1), c = depot.takeEmpty(capacity: 4, for: 2)
        depot.pushFull(a, from: 0)
        depot.pushFull(b, from: 2)
        depot.pushFull(c, from: 2)
        #expect(depot.fullCount == 3)
        #expect(depot.popFull(preferring: 2)?.storage == c.storage)
        #expect(depot.popFull(preferring: 2)?.storage == b.storage)
        #expect(depot.crossCPUExchanges == 0)
        #expect(depot.popFull(preferring: 2)?.storage == a.storage, "the only one left is CPU 0's")
        #expect(depot.crossCPUExchanges == 1)
        #expect(depot.popFull(preferring: 1) == nil && depot.popFull() == nil)
        #expect(depot.fullCount == 0)
        for m in [a, b, c] { depot.destroy(m) }
        #expect(depot.magazines == 0)
    }

    /// Empty magazines go back to the CPU that emptied them, and a CPU takes
    /// another's only when its own list is empty (before making a new one).
    @Test func depotPrefersTheCPUsOwnEmptyMagazines() {
        var depot = Depot(cpuCount: 2)
        let a = depot.takeEmpty(capacity: 4, for: 0), b = depot.takeEmpty(capacity: 4, for: 1)
        #expect(depot.magazines == 2 && depot.emptyCount == 0)
        depot.pushEmpty(a, from: 0)
        depot.pushEmpty(b, from: 1)
        #expect(depot.emptyCount == 2)
        #expect(depot.takeEmpty(capacity: 4, for: 1).storage == b.storage)
        #expect(depot.takeEmpty(capacity: 4, for: 1).storage == a.storage, "CPU 1's list is empty: CPU 0's")
        #expect(depot.magazines == 2, "no new magazine while one was empty")
        let c = depot.takeEmpty(capacity: 4, for: 0)
        #expect(depot.magazines == 3 && c.storage != a.storage && c.storage != b.storage)
        #expect(depot.popEmpty() == nil && depot.emptyCount == 0)
        for m in [a, b, c] { depot.destroy(m) }
        #expect(depot.magazines == 0)
    }

    /// The fast CPU number (the rseq area) agrees with the C library's, on
    /// every CPU the test can bind itself to.
    @Test func fastCPUNumberMatchesTheCLibrary() {
        let cpus = Int(cvmem_cpu_count())
        #expect(cpus >= 1)
        for cpu in 0..<min(cpus, 8) {
            guard cvmem_pin_to_cpu(Int32(cpu)) == 0 else { continue }
            #expect(cvmem_fast_cpu() == cvmem_current_cpu())
            #expect(cvmem_fast_cpu() == Int32(cpu))
        }
        // Unbind again: the other tests of this thread may run anywhere.
        #expect(cvmem_unpin() == 0)
    }

    /// Every object index of a 64-object slab, 0 to 63, has a user byte of
    /// its own: a whole line of each CPU's state area.
    @Test func userBytesOfEveryObjectIndex() throws {
        let source = QCFakeSlabSource()
        let cache = QuantumCache(objectSize: 8, slabSize: 512, cpuCount: 1, magazineRounds: 64,
                                 backend: source.backend())
        #expect(cache.objectsPerSlab == 64)
        var objects: [UInt64] = []
        for _ in 0..<64 { objects.append(try #require(cache.alloc())) }
        let base = objects[0] & ~511
        #expect(Set(objects) == Set((0..<64).map { base + UInt64($0) * 8 }), "one whole slab")
        #expect(cache.verify() == nil)
        for a in objects.reversed() {
            #expect(cache.free(a))
            #expect(!cache.free(a), "double free of object \((a - base) / 8)")
        }
        #expect(cache.statistics.badFrees == 64)
        #expect(cache.verify() == nil)
        for _ in 0..<64 { _ = try #require(cache.alloc()) }
        #expect(cache.statistics.objectsInUse == 64)
        #expect(cache.verify() == nil)
    }

    /// Without checking only the object offset is validated (kmem without
    /// KMF_DEBUG): the fast path does no lookup.
    @Test func uncheckedModeValidatesOffsetsOnly() throws {
        let source = QCFakeSlabSource()
        let cache = QuantumCache(objectSize: 32, slabSize: 512, cpuCount: 1, checked: false,
                                 backend: source.backend())
        let a = try #require(cache.alloc())
        #expect(!cache.free(a + 8))
        #expect(cache.free(a))
        #expect(cache.verify() == nil)
        #expect(cache.statistics.badFrees == 1)
        cache.drain()
        #expect(source.snapshot.live.isEmpty)
    }

    @Test func exhaustionReturnsNilAndRecovers() throws {
        let source = QCFakeSlabSource(limit: 2)
        let cache = QuantumCache(objectSize: 64, slabSize: 256, cpuCount: 1, magazineRounds: 3,
                                 backend: source.backend())
        var got: [UInt64] = []
        while let a = cache.alloc() { got.append(a) }
        #expect(got.count == 8 && Set(got).count == 8)
        #expect(cache.alloc() == nil)
        #expect(cache.statistics.allocFailures == 2)
        #expect(cache.verify() == nil)
        #expect(cache.free(got[3]))
        #expect(cache.alloc() == got[3])
        #expect(cache.alloc() == nil)

        // A misaligned slab is refused and handed back; a slab the cache
        // already holds is refused and kept by nobody.
        for a in got { #expect(cache.free(a)) }
        #expect(cache.drain() == 2)
        source.limit = .max
        source.override = 0x10_0000 + 64
        #expect(cache.alloc() == nil)
        #expect(source.snapshot.freeCalls == 3 && source.snapshot.badFreeCalls == 0)
        let first = try #require(cache.alloc())
        source.override = first & ~255
        var more: [UInt64] = []
        while more.count < 3, let a = cache.alloc() { more.append(a) }
        #expect(more.count == 3)               // the held slab's other objects
        #expect(cache.alloc() == nil)          // the duplicate was refused
        #expect(cache.statistics.slabs == 1)
        #expect(cache.verify() == nil)
    }

    /// 8 threads × 100,000 random operations, with objects also freed by a
    /// thread other than their allocator, and reaps and verifies meanwhile.
    /// A global bitmap catches any address handed out twice while live.
    @Test(arguments: [1, 3])
    func concurrentStress(cpuCount: Int) throws {
        let source = QCFakeSlabSource(base: 0)
        let cache = QuantumCache(objectSize: 16, slabSize: 256, cpuCount: cpuCount, magazineRounds: 15,
                                 backend: source.backend())
        let threads = 8, opsPerThread = 100_000, maxLivePerThread = 600
        // Enough bits for every object the bump allocator can reach.
        let maxObjects = 2 * threads * (maxLivePerThread + 100) + 64 * 16
        let words = maxObjects / 64 + 1
        let liveBits = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: words)
        for i in 0..<words { (liveBits + i).initialize(to: Atomic(0)) }
        defer { liveBits.deinitialize(count: words); liveBits.deallocate() }
        let bits = UInt(bitPattern: liveBits)

        final class Shared: @unchecked Sendable {
            let lock = ArenaLock()
            var pool: [UInt64] = []
            let failures = Atomic<Int>(0)
            let duplicates = Atomic<Int>(0)
            let verifyFailures = Atomic<Int>(0)
        }
        let shared = Shared()

        OSThreads.run(threads) { t in
            let liveBits = UnsafeMutablePointer<Atomic<UInt64>>(bitPattern: bits)!
            var rng = SplitMix64(seed: 42 &+ UInt64(t))
            var mine: [UInt64] = []
            var mineSet = Set<UInt64>()
            mine.reserveCapacity(maxLivePerThread)
            func release(_ a: UInt64) {
                let n = Int(a / 16)
                liveBits[n / 64].bitwiseAnd(~(1 << UInt64(n % 64)), ordering: .relaxed)
                if !cache.free(a) { shared.failures.add(1, ordering: .relaxed) }
            }
            for op in 0..<opsPerThread {
                let r = rng.next()
                if t == 0 && op % 20_000 == 10_000 { cache.reap() }
                if t == 1 && op % 25_000 == 12_345, let e = cache.verify() {
                    shared.verifyFailures.add(1, ordering: .relaxed)
                    print("verify during stress: \(e)")
                }
                if r % 100 < 52 && mine.count < maxLivePerThread {
                    guard let a = cache.alloc() else { shared.failures.add(1, ordering: .relaxed); continue }
                    let n = Int(a / 16)
                    guard n < maxObjects else { shared.failures.add(1, ordering: .relaxed); continue }
                    let old = liveBits[n / 64].bitwiseOr(1 << UInt64(n % 64), ordering: .relaxed).oldValue
                    if old & (1 << UInt64(n % 64)) != 0 || !mineSet.insert(a).inserted {
                        shared.duplicates.add(1, ordering: .relaxed)
                    }
                    mine.append(a)
                } else if r % 100 < 57 {
                    // Trade with the other threads through the shared pool.
                    if let a = mine.popLast() {
                        mineSet.remove(a)
                        shared.lock.withLock { shared.pool.append(a) }
                    }
                    if let a = shared.lock.withLock({ shared.pool.popLast() }) { release(a) }
                } else if !mine.isEmpty {
                    let i = Int((r >> 8) % UInt64(mine.count))
                    let a = mine[i]
                    mine.swapAt(i, mine.count - 1)
                    mine.removeLast()
                    mineSet.remove(a)
                    release(a)
                }
            }
            for a in mine { release(a) }
        }
        for a in shared.pool { if !cache.free(a) { shared.failures.add(1, ordering: .relaxed) } }

        #expect(shared.duplicates.load(ordering: .relaxed) == 0)
        #expect(shared.failures.load(ordering: .relaxed) == 0)
        #expect(shared.verifyFailures.load(ordering: .relaxed) == 0)
        #expect(cache.verify() == nil)
        let s = cache.statistics
        #expect(s.objectsInUse == 0 && s.allocs == s.frees && s.allocs > 300_000)
        #expect(s.badFrees == 0)
        let slabsHeld = s.slabs
        #expect(cache.drain() == slabsHeld)
        #expect(source.snapshot.live.isEmpty && source.snapshot.badFreeCalls == 0)
        #expect(cache.verify() == nil)
    }

    /// The directory keeps finding every slab while it grows, shrinks and
    /// reuses tombstones.
    @Test func directoryGrowthAndChurn() throws {
        let source = QCFakeSlabSource()
        let cache = QuantumCache(objectSize: 8, slabSize: 16, cpuCount: 1, magazineRounds: 2,
                                 backend: source.backend())
        for round in 0..<5 {
            var live: [UInt64] = []
            for _ in 0..<(500 + 300 * round) { live.append(try #require(cache.alloc())) }
            #expect(Set(live).count == live.count)
            #expect(cache.verify() == nil)
            for a in live { #expect(cache.free(a)) }
            let held = cache.statistics.slabs
            #expect(held >= live.count / 2)
            #expect(cache.drain() == held)
            #expect(cache.statistics.slabs == 0)
            let retiredLeft = cache.slabs.pointee.directory.hasRetired
            #expect(!retiredLeft)
            #expect(cache.verify() == nil)
        }
        #expect(source.snapshot.live.isEmpty)
    }

    /// VMKIT_BENCH=1: nanoseconds per alloc+free pair, one thread and two
    /// threads (each on its own loop), checked and unchecked. Wall time
    /// and the threads' own CPU time are both printed: on a shared machine
    /// the wall time of the two-thread run includes time slices lost to
    /// other processes, which CPU time does not.
    @Test(.enabled(if: getenv("VMKIT_BENCH") != nil))
    func benchmark() {
        let pairs = Int(getenv("VMKIT_BENCH_PAIRS").flatMap { Int(String(cString: $0)) } ?? 20_000_000)
        for checked in [true, false] {
            let source = QCFakeSlabSource()
            let cache = QuantumCache(objectSize: 4096, slabSize: 1 << 17,
                                     cpuCount: Int(cvmem_cpu_count()), checked: checked,
                                     backend: source.backend())
            for threads in [1, 2] {
                let wall = Atomic<UInt64>(0), cpu = Atomic<UInt64>(0)
                OSThreads.run(threads) { _ in
                    // Hold 64 objects and free the oldest each time, so the
                    // loop is not one object going back and forth.
                    var held: [UInt64] = []
                    for _ in 0..<64 { if let a = cache.alloc() { held.append(a) } }
                    var sink: UInt64 = 0
                    for _ in 0..<200_000 { let a = cache.alloc()!; sink &+= a; _ = cache.free(a) }
                    let w0 = monotonicNanoseconds(), c0 = qcThreadCPUNanoseconds()
                    for i in 0..<pairs {
                        let a = cache.alloc()!
                        let j = i & 63
                        _ = cache.free(held[j])
                        held[j] = a
                        sink &+= a
                    }
                    let w1 = monotonicNanoseconds(), c1 = qcThreadCPUNanoseconds()
                    wall.add(w1 - w0, ordering: .relaxed)
                    cpu.add(c1 - c0, ordering: .relaxed)
                    for a in held { _ = cache.free(a) }
                    if sink == 1 { print("") }
                }
                let perPair = { (ns: UInt64) in Double(ns) / Double(threads) / Double(pairs) }
                let w = perPair(wall.load(ordering: .relaxed)), c = perPair(cpu.load(ordering: .relaxed))
                print("qcache bench: checked=\(checked) threads=\(threads) pairs/thread=\(pairs) "
                      + "ns/pair(wall)=\(qcRounded(w)) ns/pair(thread cpu)=\(qcRounded(c)) "
                      + "Mpairs/s(all threads, wall)=\(qcRounded(Double(threads) * 1e3 / w))")
            }
            #expect(cache.verify() == nil)
            cache.drain()
        }
    }
}

private func qcRounded(_ x: Double) -> Double { (x * 10).rounded() / 10 }

private func qcThreadCPUNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Whether `address` sits in one of the cache's magazines (test helper).
private func qcCacheHolds(_ cache: QuantumCache, _ address: UInt64) -> Bool {
    for i in 0..<cache.cpuCount {
        let c = cache.cpus[i]
        if let m = c.pointee.loaded { for r in 0..<c.pointee.loadedRounds where m[r] == address { return true } }
        if let m = c.pointee.previous { for r in 0..<c.pointee.previousRounds where m[r] == address { return true } }
    }
    return false
}
