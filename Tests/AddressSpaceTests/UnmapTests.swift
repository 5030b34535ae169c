import Testing
import AddressSpace
import Foundation

@Suite("as_unmap")
struct UnmapTests {
    let k: UInt64 = 0xFFFF_FF00_0000_0000

    @Test func wholeTrimAndSplit() throws {
        let a = try makeKAS()
        let log = CallLog()
        let s = try a.map(address: k, size: 0x10000) { _ in .created(ScriptedDriver(log: log)) }
        // Low end.
        try a.unmap(address: k, size: 0x1000)
        #expect(s.base == k + 0x1000 && s.size == 0xF000)
        // High end.
        try a.unmap(address: k + 0xF000, size: 0x1000)
        #expect(s.base == k + 0x1000 && s.size == 0xE000)
        // Middle: the driver splits; the new upper segment becomes the hint.
        try a.unmap(address: k + 0x4000, size: 0x2000)
        #expect(s.base == k + 0x1000 && s.size == 0x3000)
        let upper = try #require(a.segat(k + 0x6000))
        #expect(upper !== s && upper.base == k + 0x6000 && upper.size == 0x9000)
        #expect(upper.driver.opsName == "segtest_ops")
        #expect(a.lastSegmentHint === upper)
        #expect(a.size == 0xC000)
        // Across both pieces and the gap between them: each piece unmapped separately.
        log.clear()
        try a.unmap(address: k, size: 0x20000)
        #expect(log.all.filter { $0.op == .unmap } == [
            DriverCall(op: .unmap, base: k + 0x1000, address: k + 0x1000, size: 0x3000),
            DriverCall(op: .unmap, base: k + 0x6000, address: k + 0x6000, size: 0x9000),
        ])
        #expect(log.all.filter { $0.op == .free }.count == 2)
        #expect(a.segmentCount == 0 && a.size == 0)
        #expect(!s.isAttached)
        try a.verify()
    }

    @Test func unmappingNothingSucceeds() throws {
        let a = try makeKAS()
        try a.unmap(address: k, size: 0x100000)
        #expect(throws: AddressSpaceError.rangeWraps(address: UInt64.max - 10, size: 100)) {
            try a.unmap(address: UInt64.max - 10, size: 100)
        }
    }

    @Test func holeSegmentsRefuseToSplit() throws {
        let a = try makeKAS()
        try a.mapHole(address: k, size: 0x10000, name: "redzone")
        #expect(throws: AddressSpaceError.segment(.errno(Errno.EINVAL, operation: .unmap), segmentBase: k)) {
            try a.unmap(address: k + 0x4000, size: 0x1000)
        }
        try a.unmap(address: k + 0xC000, size: 0x4000)
        #expect(a.segat(k)?.size == 0xC000)
    }

    @Test func driverResultsAreChecked() throws {
        final class Liar: SegmentDriver {
            var opsName: String { "segliar_ops" }
            var supportedOperations: SegmentOperations { .all }
            func unmap(_ segment: Segment, address: UInt64, size: UInt64) throws(SegmentError) -> UnmapOutcome {
                .removed
            }
        }
        let a = try makeKAS()
        try a.attach(base: k, size: 0x4000, driver: Liar())
        #expect(throws: AddressSpaceError.segment(.invalidResult("segliar_ops removed [0xffffff0000000000, +0x4000) when asked to unmap [0xffffff0000001000, +0x1000)"), segmentBase: k)) {
            try a.unmap(address: k + 0x1000, size: 0x1000)
        }
        #expect(a.segmentCount == 1)
    }

    @Test func lockedPagesFailFastRunCallbacksOrWait() throws {
        let a = try makeKAS()
        let driver = ScriptedDriver()
        try a.map(address: k, size: 0x4000) { _ in .created(driver) }
        try a.fault(address: k, size: 0x2000, type: .softLock, access: .read)
        #expect(driver.softLocked == 2)
        // No callback, may not wait: EAGAIN surfaces.
        #expect(throws: AddressSpaceError.busy(segmentBase: k, address: k, size: 0x4000)) {
            try a.unmap(address: k, size: 0x4000)
        }
        // An AS_UNMAP_EVENT callback releases the locks; the unmap then succeeds.
        try a.addCallback(events: .unmap, base: k, size: 0x4000) { space, event in
            #expect(event == .unmap)
            #expect(!space.isLockHeld)
            try? space.fault(address: 0xFFFF_FF00_0000_0000, size: 0x2000, type: .softUnlock, access: .other)
        }
        try a.unmap(address: k, size: 0x4000)
        #expect(a.segmentCount == 0)
    }

    @Test func anUnmapWaitsForASoftUnlockOnAnotherThread() throws {
        let a = try makeKAS()
        let driver = ScriptedDriver()
        try a.map(address: k, size: 0x4000) { _ in .created(driver) }
        try a.fault(address: k, size: 0x1000, type: .softLock, access: .write)
        let unlocker = Thread {
            // Wait until the unmap is parked on AS_UNMAPWAIT, then unlock.
            while !a.flags.contains(.unmapWait) { usleep(1000) }
            try? a.fault(address: 0xFFFF_FF00_0000_0000, size: 0x1000, type: .softUnlock, access: .other)
        }
        unlocker.start()
        try a.unmap(address: k, size: 0x4000, mayWait: true)
        #expect(a.segmentCount == 0)
        #expect(!a.flags.contains(.unmapWait))
    }

    @Test func retriesAreRepeatedAndBounded() throws {
        let a = try makeKAS()
        let driver = ScriptedDriver()
        driver.unmapErrors = [.retry, .retry]
        let log = driver.log
        try a.map(address: k, size: 0x1000) { _ in .created(driver) }
        try a.unmap(address: k, size: 0x1000)
        #expect(log.all.filter { $0.op == .unmap }.count == 3)
        let stubborn = ScriptedDriver()
        stubborn.unmapErrors = Array(repeating: .retry, count: AddressSpace.retryLimit + 5)
        try a.map(address: k, size: 0x1000) { _ in .created(stubborn) }
        #expect(throws: AddressSpaceError.retryLimitExceeded(operation: "unmap", attempts: AddressSpace.retryLimit + 1)) {
            try a.unmap(address: k, size: 0x1000)
        }
    }

    @Test func removingTheLastGapSegmentMovesTheHintForward() throws {
        let a = try makeKAS()
        let segs = try (0..<3).map { i in
            try a.map(address: k + UInt64(i) * 0x10000, size: 0x4000) { _ in .created(ScriptedDriver()) }
        }
        // A downward gap search below the top segment records it in a_lastgap.
        let g = try a.gap(minimumLength: 0x1000, base: k + 0x14000, length: 0xC000, direction: .high)
        #expect(g.base == k + 0x14000 && g.length == 0xC000)
        #expect(a.lastGap === segs[2])
        try a.unmap(address: segs[2].base, size: 0x4000)
        #expect(a.lastGap == nil)                         // AVL_NEXT of the last segment
        _ = try a.gap(minimumLength: 0x1000, base: k + 0x4000, length: 0xC000, direction: .high)
        #expect(a.lastGap === segs[1])
        try a.unmap(address: segs[0].base, size: 0x4000) // below a_lastgap: unchanged
        #expect(a.lastGap === segs[1])
        try a.verify()
    }
}
