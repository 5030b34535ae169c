import Testing
import AddressSpace

@Suite("as_setprot / as_checkprot")
struct ProtectionTests {
    final class ProtDriver: SegmentDriver, @unchecked Sendable {
        var opsName: String { "segprot_ops" }
        var supportedOperations: SegmentOperations { [.setprot, .checkprot] }
        var protection: Protection = .all
        var calls: [(UInt64, UInt64)] = []
        func setprot(_ segment: Segment, address: UInt64, size: UInt64, protection: Protection) throws(SegmentError) {
            calls.append((address, size))
            self.protection = protection
        }
        func checkprot(_ segment: Segment, address: UInt64, size: UInt64, protection: Protection) throws(SegmentError) {
            guard self.protection.isSuperset(of: protection) else { throw .errno(Errno.EACCES, operation: .checkprot) }
        }
    }

    @Test func protectionsFlowToEachSegmentAndHolesAreRefused() throws {
        let a = try makeKAS()
        let k: UInt64 = 0xFFFF_FF00_0000_0000
        let d1 = ProtDriver(), d2 = ProtDriver()
        try a.attach(base: k, size: 0x2000, driver: d1)
        try a.attach(base: k + 0x2000, size: 0x2000, driver: d2)
        try a.setProtection(address: k + 0x1000, size: 0x2000, protection: .read)
        #expect(d1.calls.map(\.0) == [k + 0x1000] && d1.calls.map(\.1) == [0x1000])
        #expect(d2.calls.map(\.0) == [k + 0x2000] && d2.calls.map(\.1) == [0x1000])
        try a.checkProtection(address: k, size: 0x4000, protection: .read)
        #expect(throws: AddressSpaceError.segment(.errno(Errno.EACCES, operation: .checkprot), segmentBase: k)) {
            try a.checkProtection(address: k, size: 0x4000, protection: .write)
        }
        #expect(throws: AddressSpaceError.noSegment(address: k + 0x4000)) {
            try a.setProtection(address: k, size: 0x5000, protection: .none)
        }
        #expect(throws: AddressSpaceError.noSegment(address: k - 0x1000)) {
            try a.checkProtection(address: k - 0x1000, size: 0x1000, protection: .read)
        }
        try a.mapHole(address: k + 0x10000, size: 0x1000, name: "red zone")
        #expect(throws: AddressSpaceError.segment(.errno(Errno.ENOMEM, operation: .setprot), segmentBase: k + 0x10000)) {
            try a.setProtection(address: k + 0x10000, size: 0x1000, protection: .none)
        }
    }
}
