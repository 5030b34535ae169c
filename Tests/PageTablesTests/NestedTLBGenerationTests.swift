import Testing
import PageTables
import VmemWorkloads

@Suite("Nested page tables: TLB generations and clients")
struct NestedTLBGenerationTests {
    @Test func everyInvalidationBumpsTheGeneration() throws {
        let npt = try NestedEPT(frames: try HostTableAllocator())
        try npt.map(0, length: 2 * mib2, to: 0x1_0000_0000, access: .all)
        #expect(npt.generation == 0)                       // mapping adds, never invalidates
        try npt.protect(0, length: 2 * mib2, access: .all)
        #expect(npt.generation == 0)                       // nothing lost
        try npt.protect(0, length: mib2, access: .readWrite)
        #expect(npt.generation == 1)                       // reduction
        try npt.protect(0, length: mib2, access: .all)
        #expect(npt.generation == 1)                       // widening
        try npt.protect(mib2, length: 0x1000, access: .all)
        #expect(npt.generation == 2 && npt.demotions == 1) // demotion alone
        _ = try npt.touch(mib2 + 0x5000, .write)
        #expect(try npt.dirtyOperation(.get, mib2, length: mib2) == [mib2 + 0x5000])
        #expect(npt.generation == 2)                       // get clears nothing
        #expect(try npt.dirtyOperation(.reset, mib2 + 0x6000, length: 0x1000) == [])
        #expect(npt.generation == 2)                       // nothing was dirty there
        #expect(try npt.dirtyOperation(.getAndReset, mib2, length: mib2) == [mib2 + 0x5000])
        #expect(npt.generation == 3)                       // D reset
        #expect(try npt.resetAccessed(mib2, length: 0x6000) == [mib2 + 0x5000])
        #expect(npt.generation == 4)                       // A reset
        try npt.unmap(mib2 + 0x3000, length: 0x1000)
        #expect(npt.generation == 5)                       // unmap
    }

    @Test func clientFlushesOnEntryAfterAnInvalidation() throws {
        let npt = try NestedEPT(frames: try HostTableAllocator())
        try npt.map(0, length: 0x10000, to: 0x10_0000, access: .readWrite)
        let vcpu = try NestedTLBClient(table: npt, capacity: 4)
        #expect(try vcpu.access(0x1008, .read) == .ok(hostAddress: 0x10_1008, size: .size4K))
        #expect(try vcpu.access(0x1010, .read) == .ok(hostAddress: 0x10_1010, size: .size4K))
        #expect(vcpu.hits == 1 && vcpu.misses == 1 && vcpu.cachedPages == 1)
        // A write through an entry filled without D walks to set D.
        _ = try vcpu.access(0x1000, .write)
        #expect(vcpu.misses == 2)
        #expect(try npt.accessedDirty(0x1000)! == (true, true))
        _ = try vcpu.access(0x1000, .write)
        #expect(vcpu.hits == 2)
        // FIFO keeps at most `capacity` pages.
        for p in stride(from: UInt64(0x2000), to: 0x8000, by: 0x1000) { _ = try vcpu.access(p, .read) }
        #expect(vcpu.cachedPages == 4)
        vcpu.exit()
        try npt.unmap(0x7000, length: 0x1000)
        vcpu.enter()
        #expect(vcpu.flushes == 1 && vcpu.cachedPages == 0 && vcpu.enteredGeneration == npt.generation)
        #expect(try vcpu.access(0x7000, .read) == .fault(gpa: 0x7000, access: .read))
        // An invalidation while in guest context pokes the client out.
        _ = try vcpu.access(0x6000, .write)
        try npt.protect(0x6000, length: 0x1000, access: .read)
        #expect(try vcpu.access(0x6000, .write) == .fault(gpa: 0x6000, access: .write))
        #expect(vcpu.pokes == 1 && vcpu.flushes == 2)
    }

    /// Several clients run random bursts of guest accesses between random
    /// maps, unmaps, protects, demotions and A/D resets. Every access a
    /// client completes agrees with the mappings as they are now (host
    /// address and rights), and every one used a TLB entry or walk of the
    /// current generation. A D reset must make the next write walk again.
    @Test(arguments: [11, 12] as [UInt64])
    func clientsNeverUseATranslationOlderThanAnInvalidation(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let npt = try NestedEPTEmulated(frames: try HostTableAllocator())
        let clients = try (0..<4).map { _ in try NestedTLBClient(table: npt, capacity: 1 + Int(rng.below(32))) }
        let window: UInt64 = 4 << 20
        let rights: [PageAttributes.Access] = [.read, .readWrite, [.read, .execute], .all]
        let kinds: [MemoryAccess] = [.read, .write, .execute]
        var ok = 0, hits: UInt64 = 0
        for _ in 0..<4000 {
            let start = rng.below(window >> 12) << 12
            let length = min((1 + rng.below(rng.chance(20) ? 600 : 8)) << 12, window - start)
            switch rng.below(100) {
            case 0..<60:
                let c = clients[Int(rng.below(UInt64(clients.count)))]
                if rng.chance(10) { c.exit() }
                for _ in 0..<(1 + rng.below(8)) {
                    let gpa = rng.chance(70) ? start | rng.below(0x1000) : rng.below(window)
                    let kind = kinds[Int(rng.below(3))]
                    let dirtyBefore = try npt.accessedDirty(gpa)?.dirty ?? false
                    let outcome = try c.access(gpa, kind)
                    #expect(c.lastUsedGeneration == npt.generation)
                    let m = npt.mapping(containing: gpa)
                    if let host = outcome.hostAddress {
                        let mm = try #require(m)
                        #expect(host == mm.hostAddress + (gpa - mm.gpa))
                        #expect(mm.access.contains(kind == .read ? .read : kind == .write ? .write : .execute))
                        if kind == .write { #expect(try npt.accessedDirty(gpa)! == (true, true)) }
                        ok += 1
                    } else {
                        #expect(m == nil || !m!.access.contains(kind == .read ? .read : kind == .write ? .write : .execute))
                        #expect((try npt.accessedDirty(gpa)?.dirty ?? false) == dirtyBefore)
                    }
                }
            case 60..<72:
                var start = start, length = length
                if rng.chance(40) {
                    start &= ~(mib2 - 1)
                    length = min(mib2 << rng.below(2), window - start)
                }
                if !npt.mappings.contains(where: { $0.gpa < start + length && start <= $0.last }) {
                    try npt.map(start, length: length, to: 0x1_0000_0000 + (rng.below(4) << 24) + start, access: rights[Int(rng.below(4))],
                                populate: rng.chance(50))
                }
            case 72..<80: try npt.unmap(start, length: length)
            case 80..<90: try npt.protect(start, length: length, access: rights[Int(rng.below(4))])
            case 90..<96: _ = try npt.dirtyOperation(.getAndReset, start, length: length)
            default: try npt.resetAccessed(start, length: length)
            }
        }
        for c in clients { hits += c.hits }
        #expect(ok > 500 && hits > 100 && npt.generation > 100 && npt.demotions > 0)
    }
}
