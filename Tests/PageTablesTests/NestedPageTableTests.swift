import Testing
import PageTables
import VmemWorkloads

typealias NestedEPT = NestedPageTable<EPTFormat, HostTableAllocator>
typealias NestedEPTEmulated = NestedPageTable<EPTEmulatedADFormat, HostTableAllocator>
typealias NestedRVI = NestedPageTable<RVIFormat, HostTableAllocator>

let mib2: UInt64 = 2 << 20

@Suite("Nested page tables: superpages, demotion, lookups")
struct NestedPageTableTests {
    @Test func alignedRunsBecomeSuperpages() throws {
        let npt = try NestedEPT(frames: try HostTableAllocator())
        // [1M, 5M) to host [0x4010_0000, ...): 4K head, one 2M, 4K tail... and
        // [2M, 4M) lines up with host 0x4020_0000.
        try npt.map(0x10_0000, length: 0x40_0000, to: 0x4010_0000, access: .all)
        #expect(npt.table.leafCount(.size2M) == 1)
        #expect(npt.table.leafCount(.size4K) == 512)
        let t = try #require(try npt.lookup(0x20_1234))
        #expect(t.size == .size2M && t.physicalAddress == 0x4020_1234)
        #expect(try npt.lookup(0x10_0000)?.size == .size4K)
        #expect(try npt.lookup(0x50_0000) == nil)
        // Host not 2M-congruent with the guest: 4K leaves only.
        try npt.map(0x100_0000, length: 0x40_0000, to: 0x8000_1000, access: .readWrite)
        #expect(npt.table.leafCount(.size2M) == 1)
        #expect(try npt.lookup(0x120_0000)?.physicalAddress == 0x8020_1000)
        #expect(npt.mappings.count == 2)
        #expect(npt.generation == 0)
    }

    @Test func partialUnmapDemotesAndKeepsEveryOtherTranslation() throws {
        for emulated in [false, true] {
            let before: [UInt64: Translation?]
            if emulated {
                let npt = try NestedEPTEmulated(frames: try HostTableAllocator())
                try npt.map(0x40_0000, length: mib2, to: 0x1_0000_0000, access: .all)
                before = try snapshot(npt.lookup, 0x40_0000, pages: 512)
                #expect(npt.table.leafCount(.size2M) == 1)
                #expect(try npt.unmap(0x40_5000, length: 0x1000) == 0x1000)
                #expect(npt.demotions == 1 && npt.generation == 1)
                #expect(npt.table.leafCount(.size2M) == 0 && npt.table.leafCount(.size4K) == 511)
                try checkDemoted(npt.lookup, before, hole: 0x40_5000)
                #expect(npt.mappings.map(\.gpa) == [0x40_0000, 0x40_6000])
                #expect(npt.mappings.map(\.hostAddress) == [0x1_0000_0000, 0x1_0000_6000])
            } else {
                let npt = try NestedEPT(frames: try HostTableAllocator())
                try npt.map(0x40_0000, length: mib2, to: 0x1_0000_0000, access: .all)
                _ = try npt.touch(0x40_0000, .write)       // A and D survive demotion
                before = try snapshot(npt.lookup, 0x40_0000, pages: 512)
                #expect(try npt.unmap(0x40_5000, length: 0x1000) == 0x1000)
                #expect(npt.demotions == 1 && npt.generation == 1)
                try checkDemoted(npt.lookup, before, hole: 0x40_5000)
                #expect(try npt.accessedDirty(0x40_1000)! == (true, true))
            }
        }
    }

    @Test func partialProtectDemotesAndKeepsTranslations() throws {
        let npt = try NestedRVI(frames: try HostTableAllocator())
        try npt.map(0, length: 2 * mib2, to: 0x2_0000_0000, access: .all)
        #expect(npt.table.leafCount(.size2M) == 2)
        // Adding rights that are already there: nothing to invalidate.
        try npt.protect(0, length: 2 * mib2, access: .all)
        #expect(npt.generation == 0)
        try npt.protect(mib2 + 0x1000, length: 0x2000, access: [.read, .execute])
        #expect(npt.demotions == 1 && npt.generation == 1)
        #expect(npt.table.leafCount(.size2M) == 1 && npt.table.leafCount(.size4K) == 512)
        for p in stride(from: mib2, to: 2 * mib2, by: 0x1000) {
            let t = try #require(try npt.lookup(p))
            #expect(t.physicalAddress == 0x2_0000_0000 + p)
            let ro = p == mib2 + 0x1000 || p == mib2 + 0x2000
            #expect(t.attributes.access == (ro ? [.read, .execute] : .all))
        }
        #expect(npt.mappings.count == 3)
        #expect(npt.mapping(containing: mib2 + 0x1800)?.access == [.read, .execute])
        // Widening again does not bump the generation.
        try npt.protect(mib2 + 0x1000, length: 0x2000, access: .all)
        #expect(npt.generation == 1)
    }

    @Test func lazyPopulationInstallsSuperpagesThroughTheFaultPath() throws {
        let npt = try NestedEPT(frames: try HostTableAllocator())
        try npt.map(0, length: 0x30_0000, to: 0x1_0000_0000, access: .readWrite, populate: false)
        #expect(npt.table.mappedBytes == 0)
        #expect(try npt.touch(0x1234, .read) == .fault(gpa: 0x1234, access: .read))
        #expect(try npt.handleFault(0x1234, .read) == .installed(.size2M))
        #expect(try npt.handleFault(0x1234, .read) == .spurious)
        #expect(try npt.touch(0x1234, .read) == .ok(hostAddress: 0x1_0000_1234, size: .size2M))
        // [2M, 4M) sticks out of the 3M mapping: 4K.
        #expect(try npt.guestAccess(0x20_0008, .write) == .ok(hostAddress: 0x1_0020_0008, size: .size4K))
        #expect(try npt.handleFault(0x30_0000, .read) == .unmapped)
        #expect(try npt.handleFault(0x1000, .execute) == .protection(allowed: .readWrite))
        #expect(try npt.guestAccess(0x1000, .execute) == .fault(gpa: 0x1000, access: .execute))
    }

    @Test func refusalsAreTypedAndChangeNothing() throws {
        let npt = try NestedEPT(frames: try HostTableAllocator())
        try npt.map(0x10_0000, length: 0x10_0000, to: 0x100_0000, access: .readWrite)
        let leaves = npt.table.mappedBytes
        #expect(throws: NestedPageTableError.table(.misalignedAddress(0x800, size: .size4K))) {
            try npt.map(0x800, length: 0x1000, to: 0, access: .read)
        }
        #expect(throws: NestedPageTableError.table(.invalidLength(0x1800))) {
            try npt.map(0, length: 0x1800, to: 0, access: .read)
        }
        #expect(throws: NestedPageTableError.table(.misalignedPhysicalAddress(0x10, size: .size4K))) {
            try npt.map(0, length: 0x1000, to: 0x10, access: .read)
        }
        #expect(throws: NestedPageTableError.table(.addressOutOfRange(1 << 48, limit: 1 << 48))) {
            try npt.map(1 << 48, length: 0x1000, to: 0, access: .read)
        }
        #expect(throws: NestedPageTableError.table(.rangeOverflow(address: 0xFFFF_FFFF_FFFF_F000, length: 0x2000))) {
            try npt.map(0xFFFF_FFFF_FFFF_F000, length: 0x2000, to: 0, access: .read)
        }
        #expect(throws: NestedPageTableError.table(.physicalAddressOutOfRange(1 << 52))) {
            try npt.map(0, length: 0x1000, to: 1 << 52, access: .read)
        }
        #expect(throws: NestedPageTableError.overlapsMapping(gpa: 0x1F_F000, length: 0x2000, existing: 0x10_0000)) {
            try npt.map(0x1F_F000, length: 0x2000, to: 0, access: .read)
        }
        #expect(throws: NestedPageTableError.table(.attributesNotRepresentable(
            format: "EPT", reason: "write without read (EPT misconfiguration)"))) {
            try npt.map(0, length: 0x1000, to: 0, access: .write)
        }
        #expect(throws: NestedPageTableError.table(.attributesNotRepresentable(
            format: "EPT", reason: "write without read (EPT misconfiguration)"))) {
            try npt.protect(0x10_0000, length: 0x1000, access: .write)
        }
        #expect(throws: NestedPageTableError.table(.addressOutOfRange(1 << 48, limit: 1 << 48))) {
            try npt.touch(1 << 48, .read)
        }
        #expect(throws: NestedPageTableError.table(.addressOutOfRange(1 << 48, limit: 1 << 48))) {
            try npt.handleFault(1 << 48, .read)
        }
        #expect(npt.mappings.count == 1 && npt.table.mappedBytes == leaves && npt.generation == 0)
        let emulated = try NestedEPTEmulated(frames: try HostTableAllocator())
        #expect(throws: NestedPageTableError.self) { try emulated.map(0, length: 0x1000, to: 0, access: .execute) }
        #expect(emulated.mappings.isEmpty)
        let rvi = try NestedRVI(frames: try HostTableAllocator())
        #expect(throws: NestedPageTableError.self) { try rvi.map(0, length: 0x1000, to: 0, access: .write) }
        #expect(throws: NestedPageTableError.invalidCapacity(0)) { try NestedTLBClient(table: rvi, capacity: 0) }
    }

    /// Random maps, unmaps and protects of a 16 MiB window against a per-page
    /// model: every page's translation and rights agree after every step, in
    /// all three formats.
    @Test(arguments: [false, true])
    func randomizedAgainstPerPageModel(emulated: Bool) throws {
        var rng = SplitMix64(seed: emulated ? 7 : 8)
        if emulated {
            let npt = try NestedEPTEmulated(frames: try HostTableAllocator())
            try runModel(npt, &rng)
        } else {
            let npt = try NestedEPT(frames: try HostTableAllocator())
            try runModel(npt, &rng)
            let rvi = try NestedRVI(frames: try HostTableAllocator())
            try runModel(rvi, &rng)
        }
    }
}

func snapshot(_ lookup: (UInt64) throws(NestedPageTableError) -> Translation?, _ base: UInt64,
              pages: Int) throws -> [UInt64: Translation?] {
    var out: [UInt64: Translation?] = [:]
    for k in 0..<UInt64(pages) { out[base + k << 12] = try lookup(base + k << 12) }
    return out
}

func checkDemoted(_ lookup: (UInt64) throws(NestedPageTableError) -> Translation?,
                  _ before: [UInt64: Translation?], hole: UInt64) throws {
    for (gpa, old) in before {
        let now = try lookup(gpa)
        if gpa == hole { #expect(now == nil); continue }
        let o = try #require(old), n = try #require(now)
        #expect(n.physicalAddress == o.physicalAddress && n.size == .size4K && o.size == .size2M)
        #expect(n.attributes == o.attributes)
    }
}

/// Per-page model: gpa page -> (host page, rights).
func runModel<F: NestedPTEFormat>(_ npt: NestedPageTable<F, HostTableAllocator>, _ rng: inout SplitMix64) throws {
    let window: UInt64 = 16 << 20
    let rights: [PageAttributes.Access] = [.read, .readWrite, [.read, .execute], .all]
    var model: [UInt64: (UInt64, PageAttributes.Access)] = [:]
    for step in 0..<300 {
        let start = rng.below(window >> 12) << 12
        let pages = 1 + rng.below(rng.chance(30) ? 1024 : 64)
        let length = min(pages << 12, window - start)
        switch rng.below(3) {
        case 0:
            let overlaps = stride(from: start, to: start + length, by: 0x1000).contains { model[$0] != nil }
                || npt.mappings.contains { $0.gpa < start + length && start <= $0.last }
            let host = 0x1_0000_0000 + (rng.chance(70) ? start : start + 0x1000)
            let access = rights[Int(rng.below(4))]
            if overlaps {
                #expect(throws: NestedPageTableError.self) { try npt.map(start, length: length, to: host, access: access) }
            } else {
                try npt.map(start, length: length, to: host, access: access, populate: rng.chance(70))
                for p in stride(from: start, to: start + length, by: 0x1000) { model[p] = (host + (p - start), access) }
            }
        case 1:
            try npt.unmap(start, length: length)
            for p in stride(from: start, to: start + length, by: 0x1000) { model[p] = nil }
        default:
            let access = rights[Int(rng.below(4))]
            try npt.protect(start, length: length, access: access)
            for p in stride(from: start, to: start + length, by: 0x1000) {
                if let (h, _) = model[p] { model[p] = (h, access) }
            }
        }
        if step % 10 == 0 || step == 299 {
            for p in stride(from: UInt64(0), to: window, by: 0x1000) {
                let m = npt.mapping(containing: p)
                #expect(m.map { ($0.hostAddress + (p - $0.gpa), $0.access) } ?? (0, []) == model[p] ?? (0, []))
                // A leaf exists only inside a mapping and agrees with it; a
                // lazy page gets its leaf on first access.
                if let (h, a) = model[p] {
                    if try npt.lookup(p) == nil { _ = try npt.handleFault(p, .read) }
                    let t = try #require(try npt.lookup(p))
                    #expect(t.physicalAddress == h && t.attributes.access == a)
                } else {
                    #expect(try npt.lookup(p) == nil)
                }
            }
        }
    }
}
