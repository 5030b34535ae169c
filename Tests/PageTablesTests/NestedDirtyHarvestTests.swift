import Testing
import PageTables
import VmemWorkloads

@Suite("Nested page tables: dirty harvest (VM_NPT_OPERATION)")
struct NestedDirtyHarvestTests {
    @Test(arguments: [false, true])
    func getResetGetAndResetSet(emulated: Bool) throws {
        let hw = try NestedEPT(frames: try HostTableAllocator())
        let em = try NestedEPTEmulated(frames: try HostTableAllocator())
        func both<R: Equatable>(_ body: (any NestedOps) throws -> R) throws -> R {
            let a = try body(hw), b = try body(em)
            #expect(a == b)
            return emulated ? b : a
        }
        for t in [hw, em] as [any NestedOps] { try t.mapRW(0, length: 0x10000, to: 0x10_0000) }
        for t in [hw, em] as [any NestedOps] { try t.mapRO(0x10000, length: 0x4000, to: 0x20_0000) }
        for p: UInt64 in [0x1000, 0x3000, 0x3800, 0x8000] { _ = try both { try $0.write(p) } }
        _ = try both { try $0.read(0x2000) }
        #expect(try both { try $0.op(.get, 0, 0x14000) } == [0x1000, 0x3000, 0x8000])
        #expect(try both { try $0.op(.get, 0x2000, 0x2000) } == [0x3000])
        #expect(try both { try $0.op(.getAndReset, 0, 0x4000) } == [0x1000, 0x3000])
        #expect(try both { try $0.op(.get, 0, 0x14000) } == [0x8000])
        #expect(try both { try $0.op(.reset, 0, 0x14000) } == [])
        #expect(try both { try $0.op(.get, 0, 0x14000) } == [])
        // The next write sets D again (in emulation mode it faults first).
        _ = try both { try $0.write(0x1000) }
        #expect(try both { try $0.op(.get, 0, 0x14000) } == [0x1000])
        // set marks writable mapped pages only: not the read-only mapping,
        // not the hole after it.
        let set = try both { try $0.op(.set, 0xE000, 0x10000) }
        #expect(set == [0xE000, 0xF000])
        #expect(try both { try $0.op(.getAndReset, 0, 0x20000) } == [0x1000, 0xE000, 0xF000])
    }

    @Test func superpagesReportEveryPageAndDemoteOnlyWhenChangedInPart() throws {
        let npt = try NestedRVI(frames: try HostTableAllocator())
        try npt.map(0, length: mib2, to: 0x4000_0000, access: .readWrite)
        _ = try npt.touch(0x1234, .write)
        let all = try npt.dirtyOperation(.get, 0, length: mib2)
        #expect(all.count == 512 && all.first == 0 && all.last == mib2 - 0x1000)
        // A get over part of the superpage reports that part and splits nothing.
        #expect(try npt.dirtyOperation(.get, 0x4000, length: 0x2000) == [0x4000, 0x5000])
        #expect(npt.demotions == 0 && npt.generation == 0)
        // A reset over part of it demotes, clears that part, keeps the rest.
        #expect(try npt.dirtyOperation(.getAndReset, 0x4000, length: 0x2000) == [0x4000, 0x5000])
        #expect(npt.demotions == 1 && npt.generation == 1)
        #expect(try npt.dirtyOperation(.get, 0, length: mib2).count == 510)
        #expect(try npt.lookup(0x4000)?.physicalAddress == 0x4000_4000)
    }

    @Test func refusals() throws {
        let npt = try NestedEPT(frames: try HostTableAllocator())
        #expect(throws: NestedPageTableError.rangeTooLarge(length: 2 << 30, limit: 1 << 30)) {
            try npt.dirtyOperation(.get, 0, length: 2 << 30)
        }
        #expect(throws: NestedPageTableError.table(.invalidLength(0))) { try npt.dirtyOperation(.set, 0, length: 0) }
        #expect(throws: NestedPageTableError.table(.misalignedAddress(0x10, size: .size4K))) {
            try npt.dirtyOperation(.reset, 0x10, length: 0x1000)
        }
        #expect(throws: NestedPageTableError.table(.addressOutOfRange(1 << 48, limit: 1 << 48))) {
            try npt.resetAccessed(1 << 48, length: 0x1000)
        }
        #expect(throws: NestedPageTableError.table(.rangeOverflow(address: 0xFFFF_FFFF_FFFF_F000, length: 0x2000))) {
            try npt.dirtyOperation(.getAndReset, 0xFFFF_FFFF_FFFF_F000, length: 0x2000)
        }
        #expect(try npt.dirtyOperation(.get, 0, length: 1 << 30) == [])
    }
}

/// The operations the harvest test runs on both modes.
protocol NestedOps {
    func mapRW(_ gpa: UInt64, length: UInt64, to host: UInt64) throws
    func mapRO(_ gpa: UInt64, length: UInt64, to host: UInt64) throws
    func write(_ gpa: UInt64) throws -> NestedAccessOutcome
    func read(_ gpa: UInt64) throws -> NestedAccessOutcome
    func op(_ o: NestedDirtyOperation, _ gpa: UInt64, _ length: UInt64) throws -> [UInt64]
}

extension NestedPageTable: NestedOps {
    func mapRW(_ gpa: UInt64, length: UInt64, to host: UInt64) throws { try map(gpa, length: length, to: host, access: .readWrite) }
    func mapRO(_ gpa: UInt64, length: UInt64, to host: UInt64) throws { try map(gpa, length: length, to: host, access: .read) }
    func write(_ gpa: UInt64) throws -> NestedAccessOutcome { try guestAccess(gpa, .write) }
    func read(_ gpa: UInt64) throws -> NestedAccessOutcome { try guestAccess(gpa, .read) }
    func op(_ o: NestedDirtyOperation, _ gpa: UInt64, _ length: UInt64) throws -> [UInt64] {
        try dirtyOperation(o, gpa, length: length)
    }
}
