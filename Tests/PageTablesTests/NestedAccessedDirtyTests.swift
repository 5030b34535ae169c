import Testing
import PageTables
import VmemWorkloads

@Suite("Nested page tables: accessed/dirty, hardware and emulated")
struct NestedAccessedDirtyTests {
    @Test func hardwareStandInSetsAAndDOnWrite() throws {
        let npt = try NestedEPT(frames: try HostTableAllocator())
        try npt.map(0, length: 0x4000, to: 0x10_0000, access: .readWrite)
        #expect(try npt.accessedDirty(0x1000)! == (false, false))
        #expect(try npt.touch(0x1010, .read) == .ok(hostAddress: 0x10_1010, size: .size4K))
        #expect(try npt.accessedDirty(0x1000)! == (true, false))
        _ = try npt.touch(0x2000, .write)
        #expect(try npt.accessedDirty(0x2000)! == (true, true))
        // A refused access changes nothing.
        #expect(try npt.touch(0x3000, .execute) == .fault(gpa: 0x3000, access: .execute))
        #expect(try npt.accessedDirty(0x3000)! == (false, false))
        #expect(try npt.lookup(0x1000)!.entry & EPTFormat.accessed != 0)
    }

    @Test func emulationKeepsRightsInBits52And53UntilTheFirstAccess() throws {
        let npt = try NestedEPTEmulated(frames: try HostTableAllocator())
        try npt.map(0, length: 0x4000, to: 0x10_0000, access: .readWrite)
        let e = try #require(try npt.lookup(0x1000)).entry
        #expect(e & EPTEmulatedADFormat.valid != 0 && e & EPTEmulatedADFormat.writable != 0)
        #expect(e & (EPTFormat.read | EPTFormat.write | EPTFormat.execute) == 0)
        #expect(try npt.lookup(0x1000)!.attributes.access == .readWrite)
        // First read faults; the handler sets A and grants R only.
        #expect(try npt.touch(0x1000, .read) == .fault(gpa: 0x1000, access: .read))
        #expect(try npt.handleFault(0x1000, .read) == .accessedDirtyEmulated)
        #expect(try npt.accessedDirty(0x1000)! == (true, false))
        #expect(try npt.touch(0x1000, .read) == .ok(hostAddress: 0x10_1000, size: .size4K))
        // First write faults again; the handler sets D and grants W.
        #expect(try npt.touch(0x1000, .write) == .fault(gpa: 0x1000, access: .write))
        #expect(try npt.handleFault(0x1000, .write) == .accessedDirtyEmulated)
        #expect(try npt.accessedDirty(0x1000)! == (true, true))
        #expect(try npt.lookup(0x1000)!.entry & EPTFormat.write != 0)
        #expect(try npt.handleFault(0x1000, .write) == .spurious)
        // A write-first access sets both at once.
        #expect(try npt.guestAccess(0x2000, .write) == .ok(hostAddress: 0x10_2000, size: .size4K))
        #expect(try npt.accessedDirty(0x2000)! == (true, true))
        // Protection is still the mapping's: no execute.
        #expect(try npt.handleFault(0x3000, .execute) == .protection(allowed: .readWrite))
        #expect(try npt.accessedDirty(0x3000)! == (false, false))
        // Write protection keeps D but takes the hardware W.
        try npt.protect(0x1000, length: 0x1000, access: .read)
        #expect(try npt.accessedDirty(0x1000)! == (true, true))
        #expect(try npt.touch(0x1000, .write) == .fault(gpa: 0x1000, access: .write))
        #expect(try npt.handleFault(0x1000, .write) == .protection(allowed: .read))
    }

    @Test func emulatedSuperpageAccessSetsTheWholeLeaf() throws {
        let npt = try NestedEPTEmulated(frames: try HostTableAllocator())
        try npt.map(0, length: mib2, to: 0x4000_0000, access: .all)
        #expect(try npt.guestAccess(0x1_2345, .execute) == .ok(hostAddress: 0x4001_2345, size: .size2M))
        #expect(try npt.accessedDirty(0x1F_F000)! == (true, false))
    }

    /// The same random trace of maps, unmaps, protects, guest accesses and
    /// A/D resets on hardware-A/D EPT, emulated EPT and RVI: the access
    /// outcomes, the A and D bits of every page, and the harvests agree.
    @Test(arguments: [1, 2, 3] as [UInt64])
    func randomTracesGiveTheSameAccessedAndDirtySets(seed: UInt64) throws {
        let hw = try NestedEPT(frames: try HostTableAllocator())
        let em = try NestedEPTEmulated(frames: try HostTableAllocator())
        let rvi = try NestedRVI(frames: try HostTableAllocator())
        var rng = SplitMix64(seed: seed)
        let window: UInt64 = 8 << 20
        let rights: [PageAttributes.Access] = [.read, .readWrite, [.read, .execute], .all]
        let kinds: [MemoryAccess] = [.read, .write, .execute]
        var accesses = 0, faults = 0, dirtied = 0
        for step in 0..<3000 {
            let start = rng.below(window >> 12) << 12
            let length = min((1 + rng.below(rng.chance(20) ? 1024 : 16)) << 12, window - start)
            let op = rng.below(100)
            if op < 60 {
                let gpa = rng.below(window)
                let kind = kinds[Int(rng.below(3))]
                let a = try hw.guestAccess(gpa, kind)
                #expect(try em.guestAccess(gpa, kind) == a)
                #expect(try rvi.guestAccess(gpa, kind) == a)
                accesses += 1
                if case .fault = a { faults += 1 }
            } else if op < 70 {
                let overlaps = hw.mappings.contains { $0.gpa < start + length && start <= $0.last }
                let host = 0x1_0000_0000 + (rng.chance(70) ? start : start + 0x1000)
                let access = rights[Int(rng.below(4))]
                let populate = rng.chance(50)
                if !overlaps {
                    try hw.map(start, length: length, to: host, access: access, populate: populate)
                    try em.map(start, length: length, to: host, access: access, populate: populate)
                    try rvi.map(start, length: length, to: host, access: access, populate: populate)
                }
            } else if op < 78 {
                try hw.unmap(start, length: length)
                try em.unmap(start, length: length)
                try rvi.unmap(start, length: length)
            } else if op < 86 {
                let access = rights[Int(rng.below(4))]
                try hw.protect(start, length: length, access: access)
                try em.protect(start, length: length, access: access)
                try rvi.protect(start, length: length, access: access)
            } else if op < 94 {
                let got = try hw.dirtyOperation(.getAndReset, start, length: length)
                #expect(try em.dirtyOperation(.getAndReset, start, length: length) == got)
                #expect(try rvi.dirtyOperation(.getAndReset, start, length: length) == got)
                dirtied += got.count
            } else {
                let got = try hw.resetAccessed(start, length: length)
                #expect(try em.resetAccessed(start, length: length) == got)
                #expect(try rvi.resetAccessed(start, length: length) == got)
            }
            if step % 100 == 99 {
                for p in stride(from: UInt64(0), to: window, by: 0x1000) {
                    let h = try hw.accessedDirty(p), e = try em.accessedDirty(p), r = try rvi.accessedDirty(p)
                    #expect(h?.accessed == e?.accessed && h?.dirty == e?.dirty, "page \(p)")
                    #expect(h?.accessed == r?.accessed && h?.dirty == r?.dirty, "page \(p)")
                }
            }
        }
        #expect(accesses > 1000 && faults > 0 && faults < accesses && dirtied > 0)
    }
}
