import Testing
#if canImport(Glibc)
import Glibc
#endif
import HostMemory
import GuestMemory

/// The host layout: one 2 MiB-aligned reservation, 4 MiB guards that fault,
/// lowmem/highmem around the PCI hole, mappings at `hostBase + gpa` with
/// their protection.
@Suite("Host layout: reservation, guards, lowmem and highmem")
struct LayoutTests {
    static let gib: UInt64 = 1 << 30

    @Test(arguments: [
        (UInt64(1) << 30, [UInt64(0)], UInt64(1) << 30),
        (UInt64(3) << 30, [UInt64(0)], UInt64(3) << 30),
        (UInt64(5) << 30, [UInt64(0), UInt64(4) << 30], UInt64(6) << 30),
    ])
    func standardSplitsAroundThePCIHole(size: UInt64, gpas: [UInt64], limit: UInt64) throws {
        try GuestKit.gated {
            let g = try GuestMemory.standard(size: size)
            defer { try? g.destroy() }
            #expect(g.mappings.map(\.gpa) == gpas)
            #expect(g.limit == limit)
            #expect(g.mappings.reduce(0) { $0 + $1.length } == size, "all of the RAM is mapped")
            #expect(g.mappings.allSatisfy { $0.gpa == $0.offset && $0.segmentID == 0 && $0.protection == .all })
            if gpas.count == 2 {
                #expect(g.mappings[0].length == 3 * Self.gib, "lowmem stops at 3 GiB")
                #expect(g.translate(3 * Self.gib, 1, .read) == nil, "the PCI hole is not mapped")
                #expect(g.translate(4 * Self.gib - 1, 1, .read) == nil)
            }
            #expect(g.reservation.base % HostReservation.alignment == 0)
            #expect(g.hostBase % HostReservation.alignment == 0)
            #expect(g.hostBase - g.reservation.base == GuestMemory.guardSize)
            #expect(g.reservation.base + g.reservation.size - GuestMemory.guardSize >= g.hostBase + g.limit)
        }
    }

    @Test func standardRefusesBadSizes() throws {
        GuestKit.gated {
            #expect(GuestKit.error { () throws(GuestMemoryError) in try GuestMemory.standard(size: 0) }
                    == .invalidSegmentLength(id: 0, length: 0))
            #expect(GuestKit.error { () throws(GuestMemoryError) in try GuestMemory.standard(size: 4097) }
                    == .invalidSegmentLength(id: 0, length: 4097))
            #expect(GuestKit.error { () throws(GuestMemoryError) in try GuestMemory.standard(size: 1 << 47) }
                    == .invalidSegmentLength(id: 0, length: 1 << 47))
            #expect(GuestKit.error { () throws(GuestMemoryError) in try GuestMemory(limit: 0) } != nil)
            #expect(GuestKit.error { () throws(GuestMemoryError) in try GuestMemory(limit: 4097) }
                    == .notPageAligned(what: "guest space limit", value: 4097))
        }
    }

    @Test func guardsFaultAndMappingsHaveTheirProtection() throws {
        try GuestKit.gated {
            try GuardReporter.install()
            let g = try GuestMemory(limit: 8 << 20)
            defer { try? g.destroy() }
            try g.allocateSegment(id: 0, length: 8 << 20)
            try g.map(gpa: 0, segment: 0, offset: 0, length: 4 << 20, protection: .readWrite)
            try g.map(gpa: 4 << 20, segment: 0, offset: 4 << 20, length: 4 << 20, protection: .read)
            // Inside: a write of rw memory and a read of r memory live; a write of r memory dies.
            #expect(try ChildTouch.touch(g.hostBase + 4096, write: true).signal == 0)
            #expect(try ChildTouch.touch(g.hostBase + (4 << 20), write: false).signal == 0)
            #expect(try ChildTouch.touch(g.hostBase + (4 << 20), write: true).signal == SIGSEGV)
            // Execute is the guest's right: the VMM's view of rx and x is read-only.
            try g.unmap(gpa: 4 << 20, length: 4 << 20)
            try g.map(gpa: 4 << 20, segment: 0, offset: 4 << 20, length: 4096, protection: [.read, .execute])
            try g.map(gpa: (4 << 20) + 4096, segment: 0, offset: 4 << 20, length: 4096, protection: .execute)
            for gpa: UInt64 in [4 << 20, (4 << 20) + 4096] {
                #expect(try ChildTouch.touch(g.hostBase + gpa, write: false).signal == 0)
                #expect(try ChildTouch.touch(g.hostBase + gpa, write: true).signal == SIGSEGV)
            }
            // The guards, both ends, both edges of each.
            for r in g.guardRegions {
                #expect(r.count == Int(GuestMemory.guardSize))
                for a in [r.lowerBound, r.upperBound - 1] {
                    let t = try ChildTouch.touch(a, write: false)
                    #expect(t.signal == SIGSEGV, "guard at 0x\(String(a, radix: 16)): \(t)")
                }
            }
            #expect(g.guardRegions[0].upperBound == g.hostBase)
            // Unmapped guest space faults too, and comes back inaccessible after an unmap.
            try g.unmap(gpa: 0, length: 4 << 20)
            #expect(try ChildTouch.touch(g.hostBase + 4096, write: false).signal == SIGSEGV)
        }
    }

    @Test func wiredMappingsAreResident() throws {
        try GuestKit.gated {
            let g = try GuestMemory(limit: 8 << 20)
            defer { try? g.destroy() }
            try g.allocateSegment(id: 0, length: 8 << 20)
            try g.map(gpa: 0, segment: 0, offset: 0, length: 64 * 4096, protection: .readWrite, wired: true)
            try g.map(gpa: 1 << 20, segment: 0, offset: 1 << 20, length: 64 * 4096, protection: .readWrite)
            #expect(try g.reservation.residentPages(at: g.hostBase, length: 64 * 4096) == 64)
            #expect(try g.reservation.residentPages(at: g.hostBase + (1 << 20), length: 64 * 4096) == 0)
        }
    }

    @Test func destroyRefusesLaterCalls() throws {
        try GuestKit.gated {
            let g = try GuestMemory.standard(size: 2 << 20)
            try g.destroy()
            try g.destroy()
            #expect(g.reservation.isDestroyed)
            #expect(GuestKit.error { () throws(GuestMemoryError) in try g.allocateSegment(id: 1, length: 4096) } == .destroyed)
            #expect(g.translate(0, 1, .read) == nil)
        }
    }
}
