import Testing
import AddressSpace

@Suite("as_fault")
struct FaultTests {
    let k: UInt64 = 0xFFFF_FF00_0000_0000

    /// A [k, +0x3000) B [k+0x3000, +0x2000) C [k+0x5000, +0x2000), then a gap, D [k+0x10000, +0x1000).
    func layout(_ log: CallLog) throws -> (AddressSpace, [ScriptedDriver]) {
        let a = try makeKAS()
        let drivers = (0..<4).map { _ in ScriptedDriver(log: log) }
        try a.attach(base: k, size: 0x3000, driver: drivers[0])
        try a.attach(base: k + 0x3000, size: 0x2000, driver: drivers[1])
        try a.attach(base: k + 0x5000, size: 0x2000, driver: drivers[2])
        try a.attach(base: k + 0x10000, size: 0x1000, driver: drivers[3])
        return (a, drivers)
    }

    @Test func faultsAreSplitAtSegmentBoundariesAndLoadTheHAT() throws {
        let log = CallLog()
        let (a, _) = try layout(log)
        try a.fault(address: k + 0x2800, size: 0x3000, type: .invalid, access: .write)
        #expect(log.all == [
            DriverCall(op: .fault, base: k, address: k + 0x2000, size: 0x1000, type: .invalid, access: .write),
            DriverCall(op: .fault, base: k + 0x3000, address: k + 0x3000, size: 0x2000, type: .invalid, access: .write),
            DriverCall(op: .fault, base: k + 0x5000, address: k + 0x5000, size: 0x1000, type: .invalid, access: .write),
        ])
        #expect(a.hat.translation(of: k + 0x2000)?.pfn == ((k + 0x2000) >> 12) & 0xFFFFF)
        #expect(a.hat.probe(k + 0x5000))
        #expect(!a.hat.probe(k + 0x6000))
        #expect(a.faultStatistics.invalid == 1 && a.faultStatistics.kernelInvalid == 1)
    }

    @Test func noSegmentOrAHoleBetweenSegmentsIsNoMapping() throws {
        let log = CallLog()
        let (a, _) = try layout(log)
        #expect(throws: AddressSpaceError.fault(.noMapping, address: k + 0x8000)) {
            try a.fault(address: k + 0x8123, size: 1, type: .invalid, access: .read)
        }
        #expect(throws: AddressSpaceError.fault(.noMapping, address: k + 0x7000)) {
            try a.fault(address: k + 0x6000, size: 0x2000, type: .invalid, access: .read)
        }
        #expect(log.all.count == 1)                // C's piece was faulted before the hole
        #expect((try? a.fault(address: k + 0x8000, size: 1, type: .invalid, access: .read)) == nil)
        do {
            try a.fault(address: k + 0x8000, size: 1, type: .invalid, access: .read)
        } catch {
            #expect(error.faultCode == .noMapping)
            #expect(error.faultCode?.rawValue == 5)
        }
    }

    @Test func aFailedSoftLockIsUndoneSegmentBySegment() throws {
        let log = CallLog()
        let (a, drivers) = try layout(log)
        drivers[2].failFaultAt = (k + 0x5000, .fault(.protection, address: k + 0x5000))
        #expect(throws: AddressSpaceError.segment(.fault(.protection, address: k + 0x5000), segmentBase: k + 0x5000)) {
            try a.fault(address: k + 0x1000, size: 0x5000, type: .softLock, access: .read)
        }
        #expect(log.all == [
            DriverCall(op: .fault, base: k, address: k + 0x1000, size: 0x2000, type: .softLock, access: .read),
            DriverCall(op: .fault, base: k + 0x3000, address: k + 0x3000, size: 0x2000, type: .softLock, access: .read),
            DriverCall(op: .fault, base: k + 0x5000, address: k + 0x5000, size: 0x1000, type: .softLock, access: .read),
            DriverCall(op: .fault, base: k, address: k + 0x1000, size: 0x2000, type: .softUnlock, access: .other),
            DriverCall(op: .fault, base: k + 0x3000, address: k + 0x3000, size: 0x2000, type: .softUnlock, access: .other),
        ])
        #expect(drivers.map(\.softLocked) == [0, 0, 0, 0])
        #expect(a.faultStatistics.softLock == 1)
        // An F_INVAL that fails is not undone.
        log.clear()
        #expect(throws: AddressSpaceError.segment(.fault(.protection, address: k + 0x5000), segmentBase: k + 0x5000)) {
            try a.fault(address: k + 0x4000, size: 0x2000, type: .invalid, access: .read)
        }
        #expect(log.all.count == 2)
    }

    @Test func unsupportedFaultsAndDeadlockRetries() throws {
        let a = try makeKAS()
        try a.attach(base: k, size: 0x1000, driver: EmptyDriver())
        do {
            try a.fault(address: k, size: 1, type: .invalid, access: .read)
            Issue.record("fault on a driver without fault succeeded")
        } catch {
            #expect(error == .segment(.notSupported(.fault, driver: "segempty_ops"), segmentBase: k))
            #expect(error.faultCode == .notSupported)
        }
        final class Deadlocker: SegmentDriver, @unchecked Sendable {
            var opsName: String { "segdeadlock_ops" }
            var supportedOperations: SegmentOperations { [.fault] }
            var failures: Int
            var calls = 0
            init(failures: Int) { self.failures = failures }
            func fault(_ hat: any HAT, _ segment: Segment, address: UInt64, size: UInt64,
                       type: FaultType, access: SegmentAccess) throws(SegmentError) {
                calls += 1
                if failures > 0 {
                    failures -= 1
                    throw .fault(.objectError(errno: Errno.EDEADLK), address: address)
                }
            }
        }
        let d = Deadlocker(failures: 3)
        try a.attach(base: k + 0x1000, size: 0x1000, driver: d)
        try a.fault(address: k + 0x1000, size: 0x1000, type: .invalid, access: .read)
        #expect(d.calls == 4)
        #expect(FaultCode.objectError(errno: Errno.EDEADLK).rawValue == 45 << 8 | 3)
    }

    @Test func theSegkmapWindowFaultsWithoutTheLock() throws {
        let a = try makeKAS()
        let window = ScriptedDriver("segmap_ops")
        let lockHeld = LockProbe()
        window.onFault = { seg in lockHeld.value = seg.addressSpace?.isLockHeld ?? true }
        let kmap = try a.attach(base: k, size: 0x10000, driver: window)
        let other = ScriptedDriver("segkmem_ops")
        let otherProbe = LockProbe()
        other.onFault = { seg in otherProbe.value = seg.addressSpace?.isLockHeld ?? false }
        try a.attach(base: k + 0x10000, size: 0x1000, driver: other)
        try a.setLockFreeFaultSegment(kmap)
        try a.fault(address: k + 0x1000, size: 0x1000, type: .invalid, access: .read)
        #expect(lockHeld.value == false)
        try a.fault(address: k + 0x10000, size: 0x1000, type: .invalid, access: .read)
        #expect(otherProbe.value == true)
        let user = AddressSpace(name: "p", kind: .user(limit: 1 << 47), hat: try PageTableHAT())
        let useg = try user.map(address: 0x1000, size: 0x1000) { _ in .created(ScriptedDriver()) }
        #expect(throws: AddressSpaceError.invalidRange(base: 0x1000, size: 0x1000, reason: "only kas has a segkmap")) {
            try user.setLockFreeFaultSegment(useg)
        }
    }
}

final class LockProbe: @unchecked Sendable {
    var value: Bool?
}
