import Testing
import VmemWorkloads
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
@testable import Vmem

/// Claims addresses in a shared table so that two live allocations that
/// overlap are caught at once.
final class OwnershipTable: @unchecked Sendable {
    let slots: UnsafeMutablePointer<Atomic<Int>>
    let base: UInt64, quantum: UInt64, count: Int
    init(base: UInt64, size: UInt64, quantum: UInt64) {
        self.base = base; self.quantum = quantum; count = Int(size / quantum)
        slots = .allocate(capacity: count)
        for i in 0..<count { (slots + i).initialize(to: Atomic(0)) }
    }
    deinit { slots.deallocate() }
    /// Marks `[a, a+size)` as owned by `owner` (>0); false if any quantum was owned.
    func claim(_ a: UInt64, _ size: UInt64, owner: Int) -> Bool {
        var ok = true
        for q in Int((a - base) / quantum)..<Int((a + size - base) / quantum) {
            if !slots[q].compareExchange(expected: 0, desired: owner, ordering: .relaxed).exchanged { ok = false }
        }
        return ok
    }
    func release(_ a: UInt64, _ size: UInt64) {
        for q in Int((a - base) / quantum)..<Int((a + size - base) / quantum) { slots[q].store(0, ordering: .relaxed) }
    }
}

@Suite struct ArenaConcurrencyTests {
    static var opsPerThread: Int { 100_000 }

    func stress(quantumCacheMax: UInt64) throws {
        let q: UInt64 = 0x1000
        let size: UInt64 = 1 << 32
        let arena = try Arena(name: "stress", base: 0x10000, size: size, quantum: q, quantumCacheMax: quantumCacheMax)
        let table = OwnershipTable(base: 0x10000, size: size, quantum: q)
        let failures = Atomic<Int>(0)
        OSThreads.run(8) { t in
            var rng = SplitMix64(seed: UInt64(t) &* 7919 &+ 1)
            var live: [(UInt64, UInt64, Bool)] = []
            for _ in 0..<Self.opsPerThread {
                let r = rng.next()
                if live.count > 64 || (r & 1 == 0 && !live.isEmpty) {
                    let i = Int(rng.next() % UInt64(live.count))
                    live.swapAt(i, live.count - 1); let (a, s, x) = live.removeLast()
                    table.release(a, s)
                    do { if x { try arena.xfree(a, size: s) } else { try arena.free(a, size: s) } }
                    catch { failures.add(1, ordering: .relaxed) }
                } else {
                    let s = (1 + (r >> 8) % 24) * q
                    let useX = (r >> 16) & 3 == 0
                    do {
                        let a = useX ? try arena.xalloc(s, align: 0x2000) : try arena.alloc(s)
                        if !table.claim(a, s, owner: t + 1) { failures.add(1, ordering: .relaxed) }
                        live.append((a, s, useX))
                    } catch { failures.add(1, ordering: .relaxed) }
                }
            }
            for (a, s, x) in live {
                table.release(a, s)
                do { if x { try arena.xfree(a, size: s) } else { try arena.free(a, size: s) } }
                catch { failures.add(1, ordering: .relaxed) }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
        try arena.verify()
        arena.reapCaches()
        try arena.verify()
        #expect(arena.destroy().leakedSegments == 0)
    }

    @Test func eightThreadsWithoutQuantumCaches() throws { try stress(quantumCacheMax: 0) }
    @Test func eightThreadsWithQuantumCaches() throws { try stress(quantumCacheMax: 8 * 0x1000) }

    @Test func sleeperIsWokenByFree() throws {
        let a = try Arena(name: "w", base: 0x1000, size: 0x4000, quantum: 0x1000)
        let x = try a.alloc(0x4000)
        let got = Atomic<UInt64>(0)
        OSThreads.run(2) { t in
            if t == 0 {
                got.store((try? a.alloc(0x2000, wait: .timeout(.seconds(10)))) ?? 1, ordering: .relaxed)
            } else {
                // Let the other thread go to sleep first.
                while a.statistics.waitCount == 0 { usleep(100) }
                try? a.free(x, size: 0x4000)
            }
        }
        #expect(got.load(ordering: .relaxed) == 0x1000)
        #expect(a.statistics.waitCount >= 1)
    }

    @Test func sleepTimesOut() throws {
        let a = try Arena(name: "w", base: 0x1000, size: 0x1000, quantum: 0x1000)
        _ = try a.alloc(0x1000)
        #expect(throws: VmemError.timedOut(arena: "w", size: 0x1000)) {
            try a.alloc(0x1000, wait: .timeout(.milliseconds(20)))
        }
    }

    @Test func sleepIsCancelled() throws {
        let a = try Arena(name: "w", base: 0x1000, size: 0x1000, quantum: 0x1000)
        _ = try a.alloc(0x1000)
        let token = CancellationToken()
        let result = Atomic<Int>(0)
        OSThreads.run(2) { t in
            if t == 0 {
                do { _ = try a.alloc(0x1000, wait: .cancellable(token)); result.store(1, ordering: .relaxed) }
                catch let e as VmemError { result.store(e == .cancelled(arena: "w", size: 0x1000) ? 2 : 3, ordering: .relaxed) } catch { result.store(4, ordering: .relaxed) }
            } else {
                while a.statistics.waitCount == 0 { usleep(100) }
                token.cancel()
            }
        }
        #expect(result.load(ordering: .relaxed) == 2)
    }
}
