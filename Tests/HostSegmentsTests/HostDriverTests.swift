import Testing
import HostTestSupport
#if canImport(Glibc)
import Glibc
#endif
import AddressSpace
import HostMemory
@testable import HostSegments

private typealias Kit = HostSegTestKit
private let page = HostSegTestKit.page

/// Each driver on real memory through userfaultfd: map, unmap whole, trim
/// low and high, split in the middle (segvn and lazy fill; seghole and
/// stacks refuse), change protections (checked in /proc/self/maps and by a
/// write from a forked child that must die of SIGSEGV) and explicit faults,
/// with the bytes and the driver's statistics checked after each step.
@Suite("Host drivers: map, unmap, protect and fault on real memory", .userfaultfdOrRoot)
struct HostDriverTests {
    static func space(_ threads: Int = 1) throws -> HostAddressSpace {
        try GuardReporter.install()
        let host = try HostAddressSpace(windowSize: 64 << 20, faultThreads: threads)
        #expect(host.usesUserfaultfd, "root with /dev/userfaultfd: \(host.userfaultfdUnavailableReason ?? "")")
        return host
    }

    static func childWriteDies(_ address: UInt64) throws -> Bool {
        let c = try ChildTouch.touch(address, write: true)
        return c.signal == SIGSEGV
    }

    static func childReadLives(_ address: UInt64) throws -> Bool {
        let c = try ChildTouch.touch(address, write: false)
        return c.signal == 0 && c.exitCode == 0
    }

    @Test func segvnAnonymous() throws {
        try Kit.gated {
            let host = try Self.space()
            defer { try? host.destroy() }
            let seg = try host.mapAnonymous(size: 16 * page)
            let base = seg.base
            let d = Kit.driver(seg)
            #expect(d is HostSegVn)
            #expect(d.opsName == "segvn_ops" && d.backing == "anon" && d.servedBy == "userfaultfd")
            #expect(d.modes == .missing)
            #expect(host.segments.map(\.base) == [base])
            #expect(host.space.size == 16 * page)
            #expect(host.reservation.window.contains(base) && host.reservation.window.contains(base + 16 * page - 1))
            #expect(ProcessMaps.perms(at: base) == "rw-p")
            #expect(host.residentPages(seg) == 0)

            // A read maps the zero page, a write a copied page of zeros.
            #expect(Kit.load(base + 100) == 0)
            Kit.store(base + page + 5, 0x5A)
            #expect(Kit.load(base + page + 5) == 0x5A)
            var s = d.statistics
            #expect(s.faults == 2 && s.zeroPages == 1 && s.copies == 1 && s.bytes == 2 * page)
            #expect(s.refused == 0 && s.alreadyPresent == 0 && s.continues == 0)
            #expect(host.residentPages(seg) == 2)

            // An explicit fault fills through the service too.
            try host.fault(address: base + 4 * page, size: 4 * page, access: .write)
            s = d.statistics
            #expect(s.faults == 3 && s.copies == 5 && s.bytes == 6 * page)
            #expect(host.residentPages(seg) == 6)
            // Over pages some of which are there: those are skipped, the rest filled.
            try host.fault(address: base, size: 10 * page, access: .read)
            #expect(host.residentPages(seg) == 10)
            #expect(Kit.bytes(at: base, count: Int(10 * page)).enumerated().allSatisfy { $0.offset == 4096 + 5 ? $0.element == 0x5A : $0.element == 0 })
            s = d.statistics
            #expect(s.bytes == 10 * page, "4 pages zero-filled, the 6 present ones skipped: \(s)")
            #expect(s.alreadyPresent >= 2)

            // Read-only pages: the maps say so, a child's write dies, a read lives.
            try host.setProtection(address: base + 2 * page, size: 2 * page, protection: .read)
            #expect(ProcessMaps.perms(at: base + 2 * page) == "r--p")
            #expect(ProcessMaps.perms(at: base + 3 * page) == "r--p")
            #expect(ProcessMaps.perms(at: base + 4 * page) == "rw-p")
            #expect(try Self.childWriteDies(base + 2 * page + 1))
            #expect(try Self.childReadLives(base + 2 * page + 1))
            #expect(try !Self.childWriteDies(base + page))
            #expect(try d.getprot(seg, address: base, size: 5 * page).map(HostProtection.init)
                    == [.readWrite, .readWrite, .read, .read, .readWrite])
            #expect(throws: AddressSpaceError.self) {
                try host.space.checkProtection(address: base + 2 * page, size: page, protection: Protection(.readWrite))
            }
            try host.space.checkProtection(address: base + 2 * page, size: 2 * page, protection: Protection(.read))
            #expect(throws: HostSegmentError.self) { try host.fault(address: base + 3 * page, size: page, access: .write) }

            // Trim low: the page goes back to the reservation.
            try host.unmap(address: base, size: page)
            #expect(host.segments.map { [$0.base, $0.size] } == [[base + page, 15 * page]])
            #expect(ProcessMaps.perms(at: base) == "---p")
            #expect(try ChildTouch.touch(base, write: false).signal == SIGSEGV)
            #expect(Kit.load(base + page + 5) == 0x5A, "the rest keeps its bytes")
            // Trim high.
            try host.unmap(address: base + 15 * page, size: page)
            #expect(host.segments.map { [$0.base, $0.size] } == [[base + page, 14 * page]])
            #expect(ProcessMaps.perms(at: base + 15 * page) == "---p")
            #expect(host.space.size == 14 * page)

            // Split in the middle: two segments, the upper one with a new driver.
            Kit.store(base + 10 * page, 0x10)
            try host.unmap(address: base + 6 * page, size: 2 * page)
            let parts = host.segments
            #expect(parts.map { [$0.base, $0.size] } == [[base + page, 5 * page], [base + 8 * page, 7 * page]])
            let upper = Kit.driver(parts[1])
            #expect(upper !== d && upper is HostSegVn)
            #expect(upper.statistics.faults == 0)
            #expect(ProcessMaps.perms(at: base + 6 * page) == "---p" && ProcessMaps.perms(at: base + 7 * page) == "---p")
            #expect(Kit.load(base + 10 * page) == 0x10)
            #expect(Kit.load(base + page + 5) == 0x5A)
            #expect(ProcessMaps.perms(at: base + 2 * page) == "r--p", "protections survive the split")
            // A new page in the upper piece is served by its own driver.
            #expect(Kit.load(base + 12 * page + 9) == 0)
            #expect(upper.statistics.faults == 1 && upper.statistics.zeroPages == 1)
            try host.space.verify()

            // Unmap everything (the range spans both pieces and the hole between).
            try host.unmap(address: base + page, size: 14 * page)
            #expect(host.segments.isEmpty)
            #expect(host.space.size == 0)
            #expect(ProcessMaps.perms(at: base + 10 * page) == "---p")
            // The same place again: fresh zeros.
            let again = try host.mapAnonymous(size: 16 * page, at: base)
            #expect(Kit.load(base + 10 * page) == 0)
            #expect(Kit.driver(again).statistics.faults == 1)
        }
    }

    @Test func segdevMemfd() throws {
        try Kit.gated {
            let host = try Self.space()
            defer { try? host.destroy() }
            let m = try MemoryObject.memfd(name: "vmk-dev", size: 8 * page)
            let first = Kit.patternBytes(count: Int(page), seed: 3)
            try m.write(first, offset: 0)
            let seg = try host.mapDevice(m, size: 8 * page)
            let base = seg.base
            let d = Kit.driver(seg)
            #expect(d is HostSegDev && d.opsName == "segdev_ops" && d.backing == "shared")
            #expect(ProcessMaps.perms(at: base) == "rw-s")
            let minor = host.faultService!.features.contains(.minorShmem)
            #expect(d.modes.contains(.missing) && d.modes.contains(.minor) == minor)

            // Page 0 is in the object already: mapped by a minor fault where offered.
            #expect(Kit.bytes(at: base, count: Int(page)) == first)
            // Page 5 is not: a write zero-fills it in the object first.
            Kit.store(base + 5 * page + 3, 0x33)
            #expect(try m.read(offset: 5 * page, count: 8) == [0, 0, 0, 0x33, 0, 0, 0, 0])
            // Page 6, read: zeros.
            #expect(Kit.load(base + 6 * page) == 0)
            var s = d.statistics
            #expect(s.copies == 1 && s.zeroPages == 1)
            #expect(s.continues == (minor ? 1 : 0))
            #expect(s.faults == (minor ? 3 : 2))
            // Writes through the descriptor show in the mapping.
            try m.write([0x44], offset: 5 * page + 4)
            #expect(Kit.load(base + 5 * page + 4) == 0x44)

            try host.setProtection(address: base, size: page, protection: .read)
            #expect(ProcessMaps.perms(at: base) == "r--s")
            #expect(try Self.childWriteDies(base + 1))
            #expect(try Self.childReadLives(base + 1))
            try host.setProtection(address: base, size: page, protection: .readWrite)
            Kit.store(base + 1, 0x99)
            #expect(try m.read(offset: 1, count: 1) == [0x99])

            // Trims and a split keep the object's bytes where they were.
            try host.unmap(address: base, size: page)
            try host.unmap(address: base + 7 * page, size: page)
            try host.unmap(address: base + 3 * page, size: page)
            #expect(host.segments.map { [$0.base, $0.size] } == [[base + page, 2 * page], [base + 4 * page, 3 * page]])
            #expect(Kit.load(base + 5 * page + 3) == 0x33)
            #expect(ProcessMaps.perms(at: base) == "---p" && ProcessMaps.perms(at: base + 3 * page) == "---p")
            #expect(try m.read(offset: 1, count: 1) == [0x99], "unmapping leaves the object alone")
            s = Kit.driver(host.segments[1]).statistics
            #expect(Kit.load(base + 4 * page) == 0)
            #expect(Kit.driver(host.segments[1]).statistics.faults == s.faults + 1)
            try host.unmap(address: base, size: 8 * page)
            #expect(host.segments.isEmpty)

            // A memfd sealed against writes cannot be mapped writable, nor made so.
            let sealed = try MemoryObject.memfd(name: "vmk-dev-sealed", size: 2 * page)
            try sealed.seal([.write])
            #expect(throws: HostSegmentError.host(.protectionExceedsObject(requested: .readWrite,
                                                                          allowed: sealed.allowedProtection(shared: true),
                                                                          object: sealed.name))) {
                try host.mapDevice(sealed, size: 2 * page)
            }
            let ro = try host.mapDevice(sealed, size: 2 * page, protection: .read)
            #expect(throws: HostSegmentError.host(.protectionExceedsObject(requested: .readWrite,
                                                                          allowed: sealed.allowedProtection(shared: true),
                                                                          object: sealed.name))) {
                try host.setProtection(address: ro.base, size: page, protection: .readWrite)
            }
            #expect(ProcessMaps.perms(at: ro.base) == "r--s")
            // segdev maps memfds only.
            let (file, _) = try Kit.file([UInt8](repeating: 1, count: Int(page)), writable: true)
            #expect(throws: HostSegmentError.self) { try host.mapDevice(file, size: page) }
        }
    }

    @Test func segholeIsNeverAccessible() throws {
        try Kit.gated {
            let host = try Self.space()
            defer { try? host.destroy() }
            let name = "gap-\(UInt64(UInt(bitPattern: ObjectIdentifier(host).hashValue)) % 100000)"
            let seg = try host.mapHole(size: 8 * page, name: name)
            let base = seg.base
            let d = Kit.driver(seg)
            #expect(d is HostSegHole && d.opsName == "seghole_ops" && d.servedBy == "none")
            #expect(seg.flags.contains(.hole))
            #expect(host.space.size == 0, "holes are not counted in a_size")
            #expect(ProcessMaps.perms(at: base) == "---p")
            let report = try #require(GuardReporter.report(for: base + 3 * page + 1))
            #expect(report.contains("reserved hole") && report.contains("seghole \"\(name)\""))
            #expect(report.contains("[\(Kit.hex(base)), +\(Kit.hex(8 * page)))"))
            #expect(throws: HostSegmentError.self) { try host.setProtection(address: base, size: page, protection: .read) }
            #expect(throws: HostSegmentError.self) { try host.fault(address: base, size: page) }
            #expect(Kit.readZero(into: base + page, count: 8) == (-1, EFAULT))

            // Trim low and high: the guard follows what is left.
            try host.unmap(address: base, size: page)
            #expect(GuardReporter.report(for: base) == nil)
            #expect(GuardReporter.report(for: base + page)?.contains("[\(Kit.hex(base + page)), +\(Kit.hex(7 * page)))") == true)
            try host.unmap(address: base + 7 * page, size: page)
            #expect(GuardReporter.report(for: base + 7 * page) == nil)
            #expect(host.segments.map { [$0.base, $0.size] } == [[base + page, 6 * page]])
            // No split.
            #expect(throws: HostSegmentError.self) { try host.unmap(address: base + 3 * page, size: page) }
            #expect(host.segments.map { [$0.base, $0.size] } == [[base + page, 6 * page]])
            #expect(GuardReporter.report(for: base + 3 * page) != nil)
            // Whole.
            try host.unmap(address: base + page, size: 6 * page)
            #expect(host.segments.isEmpty)
            #expect(GuardReporter.report(for: base + 3 * page) == nil)
            #expect(ProcessMaps.perms(at: base + 3 * page) == "---p")
        }
    }

    @Test func stackWithARedZone() throws {
        try Kit.gated {
            let host = try Self.space()
            defer { try? host.destroy() }
            let name = "worker-\(getpid())"
            let seg = try host.mapStack(size: 8 * page, redZone: 2 * page, name: name)
            let base = seg.base
            let d = try #require(seg.driver as? HostStack)
            #expect(seg.size == 10 * page && d.redZone == 2 * page && d.stackBase == base + 2 * page)
            #expect(d.opsName == "segkp_ops" && d.backing == "stack" && d.name == name)
            #expect(ProcessMaps.perms(at: base) == "---p" && ProcessMaps.perms(at: base + page) == "---p")
            #expect(ProcessMaps.perms(at: d.stackBase) == "rw-p")
            // The top of the stack is written first; the bottom reads zero.
            Kit.store(base + seg.size - 8, 0x77)
            #expect(Kit.load(base + seg.size - 8) == 0x77)
            #expect(Kit.load(d.stackBase) == 0)
            #expect(d.statistics.copies == 1 && d.statistics.zeroPages == 1)
            let report = try #require(GuardReporter.report(for: base + 100))
            #expect(report.contains("stack overflow") && report.contains("stack \"\(name)\""))
            #expect(GuardReporter.report(for: d.stackBase) == nil)
            #expect(try d.getprot(seg, address: base, size: 3 * page).map(HostProtection.init) == [.none, .none, .readWrite])

            // The red zone stays inaccessible, the stack can be made read-only.
            #expect(throws: HostSegmentError.self) { try host.fault(address: base, size: page) }
            #expect(throws: HostSegmentError.self) { try host.setProtection(address: base, size: 3 * page, protection: .readWrite) }
            #expect(ProcessMaps.perms(at: base) == "---p")
            try host.setProtection(address: d.stackBase, size: page, protection: .read)
            #expect(ProcessMaps.perms(at: d.stackBase) == "r--p")
            #expect(try Self.childWriteDies(d.stackBase + 8))
            try host.setProtection(address: d.stackBase, size: page, protection: .readWrite)

            // Unmapped whole or not at all.
            #expect(throws: HostSegmentError.self) { try host.unmap(address: base + 9 * page, size: page) }
            #expect(throws: HostSegmentError.self) { try host.unmap(address: base, size: 2 * page) }
            #expect(throws: HostSegmentError.self) { try host.unmap(address: base + 4 * page, size: page) }
            #expect(host.segments.map { [$0.base, $0.size] } == [[base, 10 * page]])
            #expect(Kit.load(base + seg.size - 8) == 0x77)
            try host.unmap(address: base, size: 10 * page)
            #expect(host.segments.isEmpty)
            #expect(GuardReporter.report(for: base + 100) == nil)
            #expect(ProcessMaps.perms(at: base + 9 * page) == "---p")

            // Red zones must be whole pages.
            #expect(throws: HostSegmentError.host(.notAligned(what: "red zone", value: 0, alignment: page))) {
                try host.mapStack(size: page, redZone: 0, name: "x")
            }
            #expect(throws: HostSegmentError.host(.notAligned(what: "red zone", value: 100, alignment: page))) {
                try host.mapStack(size: page, redZone: 100, name: "x")
            }
        }
    }

    @Test func lazyFillMapTouchTrimSplitProtect() throws {
        try Kit.gated {
            let host = try Self.space()
            defer { try? host.destroy() }
            let content = Kit.patternBytes(count: Int(32 * page), seed: 5)
            let (file, _) = try Kit.file(content)
            let seg = try host.mapLazyFill(file, offset: 4 * page, size: 24 * page, readAhead: 4 * page)
            let base = seg.base
            let d = try #require(seg.driver as? HostLazyFill)
            #expect(d.opsName == "seglazy_ops" && d.backing == "lazy" && d.servedBy == "userfaultfd")
            #expect(d.readAhead == 4 * page && d.filledPages(seg) == 0 && host.residentPages(seg) == 0)
            #expect(try d.getoffset(seg, address: base + page) == 5 * page)

            // The first touch fills a run of four pages from the file.
            #expect(Kit.load(base + 1) == content[Int(4 * page) + 1])
            var s = d.statistics
            #expect(s.faults == 1 && s.copies == 1 && s.bytes == 4 * page)
            #expect(d.filledPages(seg) == 4 && host.residentPages(seg) == 4)
            // Reading on, page by page upward: one fault per run. (Touched
            // in order first: a bulk copy may read its source from the end —
            // the address sanitizer's memmove does — and then each fault
            // fills one page.) Every byte comes from the file.
            for p in 4..<24 { _ = Kit.load(base + UInt64(p) * page) }
            #expect(Kit.bytes(at: base, count: Int(24 * page)) == Array(content[Int(4 * page) ..< Int(28 * page)]))
            s = d.statistics
            #expect(s.faults == 6 && s.copies == 6 && s.bytes == 24 * page && s.refused == 0 && s.alreadyPresent == 0,
                    "\(s)")
            #expect(d.filledPages(seg) == 24)
            // Private: a write stays in memory.
            Kit.store(base, ~content[Int(4 * page)])
            #expect(try file.read(offset: 4 * page, count: 1) == [content[Int(4 * page)]])
        }
    }

    @Test func lazyFillAcrossProtectionsTrimsAndSplits() throws {
        try Kit.gated {
            let host = try Self.space()
            defer { try? host.destroy() }
            let content = Kit.patternBytes(count: Int(16 * page), seed: 6)
            let (file, _) = try Kit.file(content)
            let seg = try host.mapLazyFill(file, size: 16 * page, readAhead: 16 * page)
            let base = seg.base
            let d = try #require(seg.driver as? HostLazyFill)
            func expectFile(_ from: UInt64, _ pages: UInt64, _ note: Comment? = nil) {
                #expect(Kit.bytes(at: base + from * page, count: Int(pages * page))
                        == Array(content[Int(from * page) ..< Int((from + pages) * page)]), note)
            }
            // Part of the segment read-only: the host splits its mapping there.
            try host.setProtection(address: base + 8 * page, size: 2 * page, protection: .read)
            #expect(ProcessMaps.perms(at: base + 8 * page) == "r--p" && ProcessMaps.perms(at: base + 7 * page) == "rw-p")
            // A run reaching across the boundary still fills (touched through a
            // system call: a refusal would be EFAULT here, not a dead process).
            let (n, e) = Kit.readVia(base + 6 * page, count: 8)
            #expect(n == 8, "a run across a protection change must fill: errno \(e)")
            #expect(Kit.bytes(at: base + 6 * page, count: 8) == Array(content[Int(6 * page) ..< Int(6 * page) + 8]))
            #expect(d.statistics.refused == 0)
            expectFile(0, 16, "every page, on both sides of the boundary")
            #expect(try Self.childWriteDies(base + 8 * page))
            #expect(try Self.childReadLives(base + 8 * page))

            // Trim, split: the pieces still fill from the right offsets.
            let seg2 = try host.mapLazyFill(file, size: 16 * page, readAhead: 2 * page)
            let b2 = seg2.base
            try host.unmap(address: b2, size: page)
            try host.unmap(address: b2 + 15 * page, size: page)
            try host.unmap(address: b2 + 7 * page, size: 2 * page)
            let pieces = host.segments.filter { $0.base >= b2 }
            #expect(pieces.map { [$0.base, $0.size] } == [[b2 + page, 6 * page], [b2 + 9 * page, 6 * page]])
            let upper = try #require(pieces[1].driver as? HostLazyFill)
            #expect(Kit.bytes(at: b2 + 12 * page, count: Int(page)) == Array(content[Int(12 * page) ..< Int(13 * page)]))
            #expect(upper.statistics.faults == 1 && upper.statistics.bytes == 2 * page)
            #expect(upper.filledPages(pieces[1]) == 2)
            // An explicit fault fills the rest of the upper piece.
            try host.fault(address: pieces[1].base, size: pieces[1].size)
            #expect(upper.filledPages(pieces[1]) == 6)
            #expect(Kit.bytes(at: b2 + 9 * page, count: Int(6 * page)) == Array(content[Int(9 * page) ..< Int(15 * page)]))
            #expect(Kit.bytes(at: b2 + page, count: Int(6 * page)) == Array(content[Int(page) ..< Int(7 * page)]))
            #expect(ProcessMaps.perms(at: b2) == "---p" && ProcessMaps.perms(at: b2 + 8 * page) == "---p")
            try host.space.verify()
        }
    }
}
