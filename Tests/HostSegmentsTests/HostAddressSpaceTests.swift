import Testing
import HostTestSupport
import AddressSpace
import HostMemory
@testable import HostSegments

@Suite("Host address space: drivers on real memory", .userfaultfdOrRoot)
struct HostAddressSpaceTests {
    @Test("anonymous segvn: pages filled by the driver through userfaultfd")
    func anonymousZeroFill() throws {
        let host = try HostAddressSpace(windowSize: 1 << 30)
        #expect(host.usesUserfaultfd, "this machine runs as root with /dev/userfaultfd: \(host.userfaultfdUnavailableReason ?? "")")
        let seg = try host.mapAnonymous(size: 16 * 4096)
        let p = host.pointer(seg.base).assumingMemoryBound(to: UInt8.self)
        #expect(p[0] == 0)            // read: the zero page
        p[4096] = 7                   // write: a copied page of zeros
        #expect(p[4096] == 7)
        let stats = (seg.driver as! HostSegmentDriver).statistics
        #expect(stats.faults == 2)
        #expect(stats.zeroPages == 1)
        #expect(stats.copies == 1)
        #expect(host.residentPages(seg) >= 1)
        try host.destroy()
    }
}
