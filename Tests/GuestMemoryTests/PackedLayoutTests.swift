import Testing
import Foundation
import Synchronization
import HostMemory
import GuestMemory

/// The packed host layout: a guest-physical space up to 2^47 whose mappings
/// share a smaller host window, each placed first fit with a guard after it.
@Suite("Packed host layout: sparse guest-physical space in a small window")
struct PackedLayoutTests {
    static let page = GuestMemory.pageSize
    static let mib: UInt64 = 1 << 20

    @Test func mappingsAnywhereBelow2To47ShareOneWindow() throws {
        try GuestKit.gated {
            let g = try GuestMemory(limit: GuestMemory.addressLimit, hostLayout: .packed(windowBytes: 64 * Self.mib))
            defer { try? g.destroy() }
            #expect(g.hostLayout == .packed(windowBytes: 64 * Self.mib))
            #expect(g.hostWindow == g.hostBase ..< g.hostBase + 64 * Self.mib)
            try g.allocateSegment(id: 0, length: 4 * Self.mib)
            let top = GuestMemory.addressLimit - 2 * Self.mib
            try g.map(gpa: 0, segment: 0, offset: 0, length: 8 * Self.page, protection: .readWrite)
            try g.map(gpa: top, segment: 0, offset: 2 * Self.mib, length: 2 * Self.mib, protection: .readWrite)
            try g.map(gpa: 1 << 40, segment: 0, offset: 0, length: Self.page, protection: .read)
            let m = g.mappings
            #expect(m.map(\.gpa) == [0, 1 << 40, top])
            // Every mapping inside the window; a 2 MiB one 2 MiB aligned; a
            // guard of at least 4 MiB after each before the next.
            let hosts = m.map { ($0.hostAddress, $0.length) }.sorted { $0.0 < $1.0 }
            #expect(hosts.allSatisfy { g.hostWindow.contains($0.0) && $0.0 + $0.1 <= g.hostWindow.upperBound })
            #expect(m[2].hostAddress % HostReservation.alignment == 0)
            for (a, b) in zip(hosts, hosts.dropFirst()) { #expect(b.0 >= a.0 + a.1 + GuestMemory.guardSize) }
            // Bytes written at the top are seen through the alias at 1 TiB's segment range and back.
            try g.write(top + 0x10, [0xC3, 0x5A])
            #expect(try g.read(top + 0x10, count: 2) == [0xC3, 0x5A])
            try g.write(0x20, [0x77])
            #expect(try g.read(1 << 40 | 0x20, count: 1) == [0x77], "same segment page through two GPAs")
            #expect(g.translate(top + 2 * Self.mib - 1, 1, .write) != nil)
            #expect(g.translate(top - 1, 1, .read) == nil)
        }
    }

    @Test func aFullWindowRefusesAndUnmapGivesTheRoomBack() throws {
        try GuestKit.gated {
            // 8 MiB: one 2 MiB mapping and its 4 MiB guard fit, a second does not.
            let g = try GuestMemory(limit: 1 << 40, hostLayout: .packed(windowBytes: 8 * Self.mib))
            defer { try? g.destroy() }
            try g.allocateSegment(id: 0, length: 4 * Self.mib)
            try g.map(gpa: 1 << 39, segment: 0, offset: 0, length: 2 * Self.mib, protection: .readWrite)
            let full = GuestKit.error { () throws(GuestMemoryError) in
                try g.map(gpa: 1 << 30, segment: 0, offset: 2 * Self.mib, length: 2 * Self.mib, protection: .readWrite)
            }
            #expect(full == .hostWindowFull(gpa: 1 << 30, length: 2 * Self.mib, windowBytes: 8 * Self.mib))
            #expect(g.mappings.count == 1, "a refused map leaves nothing behind")
            try g.unmap(gpa: 1 << 39, length: 2 * Self.mib)
            try g.map(gpa: 1 << 30, segment: 0, offset: 2 * Self.mib, length: 2 * Self.mib, protection: .readWrite)
            #expect(g.mappings.map(\.gpa) == [1 << 30])
            // Refusals the direct layout makes are unchanged.
            #expect(GuestKit.kind { () throws(GuestMemoryError) in try g.map(gpa: (1 << 40) - Self.page, segment: 0, offset: 0, length: 2 * Self.page, protection: .read) } == .fault)
        }
    }

    /// Threads map, use and unmap their own segment ranges at far-apart GPAs
    /// while a reader keeps using a steady mapping: every place the packer
    /// hands out is a mapping's own, so no thread sees another's bytes.
    /// CI runs this under the thread sanitizer.
    @Test func concurrentMapsKeepTheirOwnPlaces() throws {
        try GuestKit.gated {
            let g = try GuestMemory(limit: GuestMemory.addressLimit, hostLayout: .packed(windowBytes: 64 * Self.mib))
            defer { try? g.destroy() }
            try g.allocateSegment(id: 0, length: 8 * Self.mib)
            let steady: UInt64 = 0x7fff_0000_0000
            try g.map(gpa: steady, segment: 0, offset: 6 * Self.mib, length: 2 * Self.mib, protection: .readWrite)
            try g.write(steady, [0xA5])
            let wrong = Atomic<Int>(0), done = Atomic<Int>(0)
            let group = DispatchGroup()
            for t in 0..<3 {
                group.enter()
                Thread {
                    for i in 0..<100 {
                        let gpa = UInt64(t + 1) << 40 | UInt64(i % 4) << 32
                        do {
                            try g.map(gpa: gpa, segment: 0, offset: UInt64(t) * 2 * Self.mib, length: 2 * Self.mib,
                                      protection: .readWrite)
                            try g.write(gpa + 64, [UInt8(t), UInt8(i)])
                            if try g.read(gpa + 64, count: 2) != [UInt8(t), UInt8(i)] { wrong.add(1, ordering: .relaxed) }
                            try g.unmap(gpa: gpa, length: 2 * Self.mib)
                        } catch {
                            wrong.add(1, ordering: .relaxed)
                        }
                    }
                    done.add(1, ordering: .releasing)
                    group.leave()
                }.start()
            }
            var reads = 0
            while done.load(ordering: .acquiring) < 3 {
                if (try? g.read(steady, count: 1)) != [0xA5] { wrong.add(1, ordering: .relaxed) }
                reads += 1
            }
            group.wait()
            #expect(wrong.load(ordering: .relaxed) == 0 && reads > 0)
            #expect(g.mappings.map(\.gpa) == [steady])
            // Everything the threads placed came back: three fresh 2 MiB mappings fit again.
            for t in 0..<3 {
                try g.map(gpa: UInt64(t) << 30, segment: 0, offset: UInt64(t) * 2 * Self.mib, length: 2 * Self.mib, protection: .read)
            }
        }
    }

    @Test func badWindowSizesAreRefusedByValue() {
        #expect(GuestKit.error { () throws(GuestMemoryError) in try GuestMemory(limit: 1 << 30, hostLayout: .packed(windowBytes: 0)) } == .invalidHostWindow(bytes: 0))
        #expect(GuestKit.error { () throws(GuestMemoryError) in try GuestMemory(limit: 1 << 30, hostLayout: .packed(windowBytes: 1 << 47)) } == .invalidHostWindow(bytes: 1 << 47))
        #expect(GuestKit.error { () throws(GuestMemoryError) in try GuestMemory(limit: 1 << 30, hostLayout: .packed(windowBytes: 4097)) }
                == .notPageAligned(what: "host window size", value: 4097))
    }
}
