import Testing
import AddressSpace

@Suite("as_map")
struct MapTests {
    @Test func mapPageRoundsAndCountsSize() throws {
        let a = AddressSpace(name: "proc", kind: .user(limit: 0x8000_0000_0000), hat: try PageTableHAT())
        let seg = try a.map(address: 0x1_0001, size: 0x10) { _ in .created(ScriptedDriver(), flags: []) }
        #expect(seg.base == 0x1_0000 && seg.size == 0x1000)
        let seg2 = try a.map(address: 0x2_0FFF, size: 0x2) { _ in .created(ScriptedDriver()) }
        #expect(seg2.base == 0x2_0000 && seg2.size == 0x2000)       // straddles a page boundary
        #expect(a.size == 0x3000 && a.reservedSize == 0x3000)
        #expect(a.lastSegmentHint === seg2)
        try a.verify()
    }

    @Test func mapRefusesOverlapWrapAndBadRanges() throws {
        let a = AddressSpace(name: "proc", kind: .user(limit: 0x8000_0000_0000), hat: try PageTableHAT(),
                             virtualHole: AddressSpace.amd64Hole)
        let s = try a.map(address: 0x10000, size: 0x4000) { _ in .created(ScriptedDriver()) }
        #expect(throws: AddressSpaceError.overlap(base: 0x13000, size: 0x2000, existingBase: 0x10000, existingSize: 0x4000)) {
            try a.map(address: 0x13000, size: 0x2000) { _ in .created(ScriptedDriver()) }
        }
        #expect(throws: AddressSpaceError.overlap(base: 0xF000, size: 0x2000, existingBase: 0x10000, existingSize: 0x4000)) {
            try a.map(address: 0xF000, size: 0x2000) { _ in .created(ScriptedDriver()) }
        }
        #expect(throws: AddressSpaceError.rangeWraps(address: 0xFFFF_FFFF_FFFF_F000, size: 0x1000)) {
            try a.map(address: 0xFFFF_FFFF_FFFF_F000, size: 0x1000) { _ in .created(ScriptedDriver()) }
        }
        #expect(throws: AddressSpaceError.rangeWraps(address: 0xFFFF_FFFF_FFFF_0000, size: 0x10001)) {
            try a.map(address: 0xFFFF_FFFF_FFFF_0000, size: 0x10001) { _ in .created(ScriptedDriver()) }
        }
        #expect(throws: AddressSpaceError.zeroSize(address: 0x50000)) {
            try a.map(address: 0x50000, size: 0) { _ in .created(ScriptedDriver()) }
        }
        #expect(throws: AddressSpaceError.invalidRange(base: 0x7FFF_FFFF_F000, size: 0x2000, reason: "above a_userlimit 0x800000000000")) {
            try a.map(address: 0x7FFF_FFFF_F000, size: 0x2000) { _ in .created(ScriptedDriver()) }
        }
        #expect(a.segmentCount == 1 && a.size == 0x4000)
        let k = try makeKAS()
        #expect(throws: AddressSpaceError.invalidRange(base: 0x7FFF_FFFF_F000, size: 0x2000, reason: "overlaps the VA hole")) {
            try k.map(address: 0x7FFF_FFFF_F000, size: 0x2000) { _ in .created(ScriptedDriver()) }
        }
        try k.accountAttachedSize(UInt64.max - 0x1000)
        #expect(throws: AddressSpaceError.sizeOverflow(current: UInt64.max - 0x1000, adding: 0x2000)) {
            try k.map(address: 0x1000, size: 0x2000) { _ in .created(ScriptedDriver()) }
        }
        _ = s
    }

    @Test func holesAreNotCountedAndEscapeRlimitVmem() throws {
        let a = AddressSpace(name: "proc", kind: .user(limit: 0x8000_0000_0000), hat: try PageTableHAT())
        a.vmemLimit = 0x10000
        try a.map(address: 0x100000, size: 0x10000) { _ in .created(ScriptedDriver()) }
        #expect(throws: AddressSpaceError.resourceLimit(size: 0x11000, limit: 0x10000)) {
            try a.map(address: 0x200000, size: 0x1000) { _ in .created(ScriptedDriver()) }
        }
        let hole = try a.mapHole(address: 0x300000, size: 0x100000, name: "hole")
        #expect(hole.flags.contains(.hole))
        #expect(a.size == 0x10000)
        #expect(a.segmentCount == 2)
        try a.unmap(address: 0x300000, size: 0x100000)
        #expect(a.size == 0x10000 && a.segmentCount == 1)
    }

    @Test func createErrorsAndConcatenation() throws {
        let a = try makeKAS()
        let k: UInt64 = 0xFFFF_FF00_0000_0000
        #expect(throws: AddressSpaceError.segment(.errno(Errno.ENOMEM, operation: .dup), segmentBase: k)) {
            try a.map(address: k, size: 0x1000) { (_) throws(SegmentError) in throw .errno(Errno.ENOMEM, operation: .dup) }
        }
        #expect(a.segmentCount == 0 && a.size == 0)
        let first = try a.map(address: k, size: 0x1000) { _ in .created(ScriptedDriver()) }
        // The create routine sees its neighbours and may extend one instead.
        let same = try a.map(address: k + 0x1000, size: 0x3000) { req in
            #expect(req.below === first && req.above == nil)
            return .extended(req.below!, newBase: first.base, newSize: 0x4000)
        }
        #expect(same === first && first.size == 0x4000)
        #expect(a.segmentCount == 1 && a.size == 0x4000)
        #expect(a.lastSegmentHint == nil)           // the temporary segment was freed
        #expect(throws: AddressSpaceError.segment(.invalidResult("extension [0xffffff0000000000, +0x9000) is not the neighbour plus the request"), segmentBase: k + 0x4000)) {
            try a.map(address: k + 0x4000, size: 0x1000) { req in .extended(req.below!, newBase: first.base, newSize: 0x9000) }
        }
        try a.verify()
    }

    @Test func mlockallLocksNewMappings() throws {
        let a = try makeKAS()
        let log = CallLog()
        a.setPageLock(true)
        #expect(a.flags.contains(.pageLock))
        let s = try a.map(address: 0xFFFF_FF00_0000_0000, size: 0x2000) { _ in .created(ScriptedDriver(log: log)) }
        #expect(log.all == [DriverCall(op: .lockop, base: s.base, address: s.base, size: 0x2000)])
        // A driver without lockop cannot be mapped under mlockall: the new
        // segment is unmapped again.
        let noLock = SegmentOperations.all.subtracting(SegmentOperations([.lockop]))
        #expect(throws: AddressSpaceError.segment(.notSupported(.lockop, driver: "segnolock_ops"), segmentBase: 0xFFFF_FF00_0001_0000)) {
            try a.map(address: 0xFFFF_FF00_0001_0000, size: 0x1000) { _ in
                .created(ScriptedDriver("segnolock_ops", log: log, operations: noLock))
            }
        }
        #expect(a.segmentCount == 1)
        #expect(a.size == 0x2000)
    }

    @Test func attachedSegmentsCountOnlyWhenAsked() throws {
        let a = try makeKAS()
        let k: UInt64 = 0xFFFF_FF00_0000_0000
        try a.attach(base: k, size: 0x10000, driver: ScriptedDriver())
        #expect(a.size == 0)
        try a.attach(base: k + 0x10000, size: 0x4000, driver: ScriptedDriver(), accountSize: true)
        #expect(a.size == 0x4000)
        try a.unmap(address: k + 0x8000, size: 0x10000)     // half of each
        #expect(a.size == 0x0)
        try a.verify()
        try a.unmapAll()
        #expect(a.size == 0 && a.segmentCount == 0)
    }
}
