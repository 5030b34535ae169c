import Testing
@testable import ModelKernel

private let page: UInt64 = 4096
private let base: UInt64 = 0xFFFF_FE00_0000_0000

/// Allocates single pages until only the reserve is left in the zone.
@discardableResult
private func drainToReserve(_ map: KernelMap) throws -> [UInt64] {
    var taken: [UInt64] = []
    while map.statistics.freeItems > map.statistics.reserve {
        taken.append(try map.allocate(size: page))
    }
    return taken
}

@Suite("kernel map-entry reserve (seed 002, D26851)")
struct KernelMapTests {
    @Test("a new map holds its boot slab, mapped by an entry from that slab")
    func bootSlab() throws {
        let map = try KernelMap(.init(base: base, size: 1 << 30))
        let entries = map.entries
        #expect(entries.count == 1)
        #expect(entries[0].kind == .bootSlab && entries[0].noFault)
        #expect(entries[0].start == base && entries[0].size == page)
        #expect(entries[0].record >= base && entries[0].record < base + page)
        let s = map.statistics
        #expect(s.freeItems == 31 && s.itemsInUse == 1 && s.reserve == 2 && s.reserveLevel == 2)
        #expect(KernelMap.defaultReserve == KernelMap.kmapentReserve + 1 && KernelMap.kmapentReserve == 1)
        #expect(KernelMap.Flags.replenish.rawValue == 0x20)
        try map.verify()
    }

    @Test("the recursive case: an insert with only the reserve left completes, and the refill maps a new slab")
    func recursiveCase() throws {
        let map = try KernelMap(.init(base: base, size: 1 << 30, entriesPerSlab: 4))
        try drainToReserve(map)
        #expect(map.statistics.freeItems == 2)
        let before = map.statistics

        try map.lock()
        let address = try map.findSpace(size: 4 * page)
        try map.insert(start: address, size: 4 * page)
        // The entry came from the reserve; no slab was built under the lock.
        #expect(map.flags.contains(.replenish))
        #expect(map.statistics.freeItems == 1)
        #expect(map.statistics.slabs == before.slabs)
        try map.unlock()

        // The refill needed an entry for its own slab — the reserve's last
        // item — and then brought four new ones.
        let s = map.statistics
        #expect(!map.flags.contains(.replenish))
        #expect(s.slabs == before.slabs + 1)
        #expect(s.freeItems == 4)
        #expect(s.reserveTakes == before.reserveTakes + 2)
        #expect(s.replenishes == before.replenishes + 1)
        #expect(s.lowestReserveLevel == 0)
        #expect(s.lowestLevelBeforeTake == 1)
        #expect(s.exhaustions == 0)
        let slab = try #require(map.entries.last { $0.kind == .entrySlab })
        #expect(slab.noFault && slab.size == page)
        #expect(map.entry(containing: address + page)?.start == address)
        try map.verify()
    }

    @Test("with KMAPENT_RESERVE alone (no + 1) the same insert leaves the refill without an entry")
    func reserveWithoutExtraItemFails() throws {
        let map = try KernelMap(.init(base: base, size: 1 << 30, entriesPerSlab: 4, reserve: KernelMap.kmapentReserve))
        try drainToReserve(map)
        try map.lock()
        try map.insert(start: try map.findSpace(size: page), size: page)
        #expect(map.statistics.freeItems == 0)
        #expect(throws: KernelMapError.entryZoneExhausted(reserve: 1)) { try map.unlock() }
        // The mutex was released anyway and the flag kept for the next unlock.
        #expect(!map.isLockedByCurrentThread)
        #expect(map.flags.contains(.replenish))
        #expect(map.statistics.exhaustions == 1)
    }

    @Test("MAP_REPLENISH leaking to a read-unlock or a downgrade is a typed error and changes nothing")
    func replenishLeaks() throws {
        let map = try KernelMap(.init(base: base, size: 1 << 30, entriesPerSlab: 4))
        try drainToReserve(map)
        // An entry made under a read lock (a bug the assertion exists for).
        try map.lockRead()
        try map.insert(start: try map.findSpace(size: page), size: page)
        #expect(throws: KernelMapError.replenishLeaked(operation: "vm_map_unlock_read")) { try map.unlockRead() }
        #expect(map.isLockedByCurrentThread)
        try map.unlock()
        #expect(!map.flags.contains(.replenish))
        try map.verify()

        try drainToReserve(map)
        try map.lock()
        try map.insert(start: try map.findSpace(size: page), size: page)
        #expect(throws: KernelMapError.replenishLeaked(operation: "vm_map_lock_downgrade")) { try map.downgrade() }
        #expect(map.isLockedByCurrentThread)
        try map.unlock()

        // Without the flag both paths work.
        try map.lock()
        try map.downgrade()
        #expect(throws: KernelMapError.wrongLockMode(operation: "lock_downgrade", held: .shared)) { try map.downgrade() }
        try map.unlockRead()
        try map.verify()
    }

    @Test("10,000 random allocations, frees and hole punches never find the reserve empty")
    func randomizedWorkload() throws {
        let map = try KernelMap(.init(base: base, size: 1 << 32, entriesPerSlab: 4))
        var rng: UInt64 = 0x5EED_0002
        func next() -> UInt64 {
            rng &+= 0x9E37_79B9_7F4A_7C15
            var z = rng
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        var live: [(start: UInt64, size: UInt64)] = []
        var operations = 0
        while operations < 10_000 {
            let r = next()
            // The live set may grow slowly: the zone reaches its reserve only
            // when the number of entries passes its high-water mark.
            let cap = 64 + operations / 8
            if live.count < cap && r % 10 < 5 || live.isEmpty {
                let size = (1 + (r >> 8) % 8) * page
                live.append((try map.allocate(size: size), size))
            } else if r % 10 < 8 || live.count >= cap {
                let i = Int((r >> 8) % UInt64(live.count))
                let a = live.remove(at: i)
                try map.free(start: a.start, size: a.size)
            } else {
                // Punch out one page in the middle of a live allocation: the
                // split needs an entry under the lock.
                let i = Int((r >> 8) % UInt64(live.count))
                let a = live[i]
                guard a.size >= 3 * page else { continue }
                let hole = a.start + page
                try map.free(start: hole, size: page)
                live[i] = (a.start, page)
                live.append((hole + page, a.size - 2 * page))
            }
            operations += 1
            if operations % 1000 == 0 { try map.verify() }
        }
        let s = map.statistics
        #expect(s.exhaustions == 0)
        #expect(s.lowestLevelAtLock == 2, "the reserve is whole at the start of every locked section")
        #expect(s.lowestLevelBeforeTake >= 1, "no entry request found the reserve empty")
        #expect(s.mostReserveTakesPerHold == 1)
        print("kernel map workload: \(s.reserveTakes) reserve takes, \(s.replenishes) refills, \(s.slabs) slabs, "
              + "lowest level at lock \(s.lowestLevelAtLock), before a take \(s.lowestLevelBeforeTake), ever \(s.lowestReserveLevel)")
        #expect(s.reserveTakes > 300, "the workload reached the reserve \(s.reserveTakes) times")
        #expect(s.replenishes > 150)
        #expect(s.entries == live.count + s.slabs)
        try map.verify()
        for a in live { try map.free(start: a.start, size: a.size) }
        #expect(map.entries.allSatisfy { $0.kind != .allocation })
        try map.verify()
    }

    @Test("two threads allocating and freeing keep the map consistent")
    func concurrent() async throws {
        let map = try KernelMap(.init(base: base, size: 1 << 32, entriesPerSlab: 4))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<2 {
                group.addTask {
                    var mine: [UInt64] = []
                    let size = page * UInt64(1 + t)
                    for i in 0..<1500 {
                        if i % 3 == 2, let a = mine.popLast() {
                            try map.free(start: a, size: size)
                        } else {
                            mine.append(try map.allocate(size: size))
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(map.statistics.exhaustions == 0)
        #expect(map.statistics.lowestLevelAtLock == 2)
        try map.verify()
    }

    @Test("every entry point rejects bad input with a typed error")
    func badInput() throws {
        #expect(throws: KernelMapError.self) { try KernelMap(.init(base: base, size: 1 << 30, entriesPerSlab: 3)) }
        #expect(throws: KernelMapError.self) { try KernelMap(.init(base: base, size: 1 << 30, entriesPerSlab: 48)) }
        #expect(throws: KernelMapError.self) { try KernelMap(.init(base: base, size: 1 << 30, pageSize: 1000)) }
        #expect(throws: KernelMapError.self) { try KernelMap(.init(base: base, size: 4096)) }
        #expect(throws: KernelMapError.self) { try KernelMap(.init(base: base, size: 1 << 30, reserve: -1)) }
        #expect(throws: KernelMapError.unaligned(parameter: "base", value: base + 1, pageSize: page)) {
            try KernelMap(.init(base: base + 1, size: 1 << 30))
        }
        #expect(throws: KernelMapError.overflow(start: UInt64.max - page + 1, size: 1 << 30)) {
            try KernelMap(.init(base: UInt64.max - page + 1, size: 1 << 30))
        }
        let map = try KernelMap(.init(base: base, size: 64 * page))
        #expect(throws: KernelMapError.zeroSize) { try map.allocate(size: 0) }
        #expect(throws: KernelMapError.unaligned(parameter: "size", value: 100, pageSize: page)) { try map.allocate(size: 100) }
        #expect(throws: KernelMapError.noSpace(size: 64 * page)) { try map.allocate(size: 64 * page) }
        #expect(throws: KernelMapError.notLocked(operation: "insert")) { try map.insert(start: base + page, size: page) }
        #expect(throws: KernelMapError.notLocked(operation: "findspace")) { try map.findSpace(size: page) }
        #expect(throws: KernelMapError.notLocked(operation: "delete")) { try map.delete(start: base + page, size: page) }
        #expect(throws: KernelMapError.notLocked(operation: "unlock")) { try map.unlock() }
        #expect(throws: KernelMapError.notLocked(operation: "unlock_read")) { try map.unlockRead() }
        #expect(throws: KernelMapError.notLocked(operation: "lock_downgrade")) { try map.downgrade() }
        #expect(throws: KernelMapError.self) { try map.prealloc(items: 0) }
        try map.lock()
        #expect(throws: KernelMapError.recursiveLock) { try map.lock() }
        #expect(throws: KernelMapError.recursiveLock) { try map.lockRead() }
        #expect(throws: KernelMapError.overlap(start: base, size: page, entryStart: base, entryEnd: base + page)) {
            try map.insert(start: base, size: page)
        }
        #expect(throws: KernelMapError.outOfRange(start: base + 64 * page, size: page, min: base, max: base + 64 * page)) {
            try map.insert(start: base + 64 * page, size: page)
        }
        #expect(throws: KernelMapError.overflow(start: UInt64.max - page + 1, size: 2 * page)) {
            try map.insert(start: UInt64.max - page + 1, size: 2 * page)
        }
        #expect(throws: KernelMapError.unaligned(parameter: "start", value: base + 1, pageSize: page)) {
            try map.insert(start: base + 1, size: page)
        }
        try map.unlock()
        let a = try map.allocate(size: 2 * page)
        #expect(throws: KernelMapError.notMapped(start: a, size: 4 * page, hole: a + 2 * page)) {
            try map.free(start: a, size: 4 * page)
        }
        #expect(throws: KernelMapError.overlap(start: base, size: page, entryStart: base, entryEnd: base + page)) {
            try map.free(start: base, size: page)
        }
        try map.prealloc(items: 40)
        #expect(map.statistics.slabs == 3)
        try map.free(start: a, size: 2 * page)
        try map.verify()
    }
}
