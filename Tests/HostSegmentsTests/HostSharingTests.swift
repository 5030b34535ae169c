import Testing
import HostTestSupport
#if canImport(Glibc)
import Glibc
#endif
import AddressSpace
import HostMemory
import VmemWorkloads
@testable import HostSegments

private typealias Kit = HostSegTestKit
private let page = HostSegTestKit.page

/// What the backing objects see: private file mappings copy on write (each
/// its own copy, the file unchanged) while a shared one writes the file; a
/// memfd written by a child process through its own mapping is read byte for
/// byte through a segdev segment, whose statistics show the faults it
/// served; a lazy-fill segment matches its file byte for byte whatever the
/// order of touches and the read-ahead.
@Suite("Host sharing: copy-on-write, shared files, memfds across processes, lazy fill", .userfaultfdOrRoot)
struct HostSharingTests {
    @Test func privateMappingsCopyOnWriteAndASharedOneWritesTheFile() throws {
        try Kit.gated {
            try GuardReporter.install()
            let host = try HostAddressSpace(windowSize: 64 << 20)
            defer { try? host.destroy() }
            let content = Kit.patternBytes(count: Int(4 * page), seed: 21)
            let (file, path) = try Kit.file(content, writable: true, keepPath: true)
            defer { unlink(path) }
            let a = try host.mapFile(file, size: 4 * page, protection: .readWrite, shared: false)
            let b = try host.mapFile(file, size: 4 * page, protection: .readWrite, shared: false)
            for s in [a, b] {
                let d = Kit.driver(s)
                #expect(d is HostSegVn && d.backing == "private" && d.servedBy == "kernel" && d.modes.isEmpty)
                #expect(ProcessMaps.perms(at: s.base) == "rw-p")
                #expect(Kit.bytes(at: s.base, count: content.count) == content)
            }
            Kit.store(a.base + 10, 0xA1)
            Kit.store(b.base + 10, 0xB2)
            Kit.store(b.base + 3 * page, 0xB3)
            #expect(Kit.load(a.base + 10) == 0xA1 && Kit.load(b.base + 10) == 0xB2)
            #expect(Kit.load(a.base + 3 * page) == content[Int(3 * page)], "b's write is b's alone")
            #expect(try file.read(offset: 0, count: content.count) == content, "private writes never reach the file")

            let s = try host.mapFile(file, size: 4 * page, protection: .readWrite, shared: true)
            #expect(Kit.driver(s).backing == "shared" && ProcessMaps.perms(at: s.base) == "rw-s")
            Kit.store(s.base + 10, 0xC3)
            Kit.store(s.base + 2 * page + 9, 0xC4)
            #expect(try file.read(offset: 10, count: 1) == [0xC3])
            #expect(try file.read(offset: 2 * page + 9, count: 1) == [0xC4])
            #expect(Kit.load(a.base + 10) == 0xA1 && Kit.load(b.base + 10) == 0xB2, "copies made before stay")
            // msync, then another descriptor of the path reads the shared write.
            try Kit.driver(s).sync(s, address: s.base, size: 4 * page, attributes: 0, flags: .sync)
            let again = try MemoryObject.file(path: path)
            #expect(try again.read(offset: 10, count: 1) == [0xC3])
            // A forked child inherits the shared mapping: its write reaches the file
            // and this mapping; the private copies stay as they were.
            #expect(try ChildTouch.touch(s.base + 10, write: true).exitCode == 0)
            #expect(try file.read(offset: 10, count: 1) == [0x5A])
            #expect(Kit.load(s.base + 10) == 0x5A && Kit.load(a.base + 10) == 0xA1)

            // The file opened read-only: a shared write is refused, a private one is not.
            let ro = try MemoryObject.file(path: path, writable: false)
            let allowed = ro.allowedProtection(shared: true)
            #expect(throws: HostSegmentError.host(.protectionExceedsObject(requested: .readWrite, allowed: allowed,
                                                                          object: ro.name))) {
                try host.mapFile(ro, size: page, protection: .readWrite, shared: true)
            }
            let rs = try host.mapFile(ro, size: page, protection: .read, shared: true)
            #expect(throws: HostSegmentError.host(.protectionExceedsObject(requested: .readWrite, allowed: allowed,
                                                                          object: ro.name))) {
                try host.setProtection(address: rs.base, size: page, protection: .readWrite)
            }
            #expect(ProcessMaps.perms(at: rs.base) == "r--s")
            let rp = try host.mapFile(ro, size: page, protection: .readWrite, shared: false)
            Kit.store(rp.base, 0xD5)
            #expect(try ro.read(offset: 0, count: 1) != [0xD5])
            // Past the end of the file.
            #expect(throws: HostSegmentError.host(.objectTooShort(object: ro.name, objectSize: 4 * page, offset: 3 * page,
                                                                 length: 2 * page))) {
                try host.mapFile(ro, offset: 3 * page, size: 2 * page)
            }
            // Explicit faults populate file segments through the kernel.
            let fresh = try host.mapFile(ro, size: 4 * page)
            #expect(host.residentPages(fresh) <= 4)
            try host.fault(address: fresh.base, size: 4 * page)
            #expect(host.residentPages(fresh) == 4)
            #expect(Kit.driver(fresh).statistics.bytes == 4 * page)
        }
    }

    @Test func aChildWritesAMemfdAndTheParentReadsItThroughSegdev() throws {
        try Kit.gated {
            let host = try HostAddressSpace(windowSize: 64 << 20)
            defer { try? host.destroy() }
            let m = try MemoryObject.memfd(name: "vmk-devchild", size: 20 * page)
            let seg = try host.mapDevice(m, size: 20 * page)
            let d = Kit.driver(seg)
            let seed: UInt8 = 77
            #expect(try ChildTouch.writeFromChild(m, offset: 0, length: 16 * page, seed: seed) == 0)
            var expected = (0..<Int(16 * page)).map { UInt8(truncatingIfNeeded: Int(seed) &+ $0 &* 7) }
            expected += [UInt8](repeating: 0, count: Int(4 * page))
            #expect(Kit.bytes(at: seg.base, count: expected.count) == expected)
            let s = d.statistics
            if host.faultService!.features.contains(.minorShmem) {
                // The child's pages are in the page cache: minor faults, mapped by UFFDIO_CONTINUE.
                #expect(s.continues == 16 && s.zeroPages == 4 && s.faults == 20, "\(s)")
            } else {
                #expect(s.continues == 0 && s.zeroPages == 4 && s.faults == 4, "\(s)")
            }
            #expect(s.bytes == 20 * page && s.refused == 0)
            // The other way: a parent's write reaches the object, so a second child's map sees it.
            Kit.store(seg.base + 17 * page + 1, 0xEE)
            #expect(try m.read(offset: 17 * page + 1, count: 1) == [0xEE])
            #expect(try ChildTouch.writeFromChild(m, offset: 2 * page, length: page, seed: 1) == 0)
            #expect(Kit.load(seg.base + 2 * page + 1) == 8, "the second child's write shows at once")
        }
    }

    @Test(arguments: [(1 as UInt64, 0 as UInt64, 11 as UInt64), (3, 1, 12), (8, 2, 13), (16, 5, 14)])
    func lazyFillMatchesItsFileByteForByte(_ readAheadPages: UInt64, _ offsetPages: UInt64, _ seed: UInt64) throws {
        try Kit.gated {
            let host = try HostAddressSpace(windowSize: 64 << 20)
            defer { try? host.destroy() }
            let total = 48
            let content = Kit.patternBytes(count: total * Int(page), seed: UInt8(seed))
            let (file, _) = try Kit.file(content)
            let pages = 40
            let seg = try host.mapLazyFill(file, offset: offsetPages * page, size: UInt64(pages) * page,
                                           readAhead: readAheadPages * page)
            let d = try #require(seg.driver as? HostLazyFill)
            var rng = SplitMix64(seed: seed)
            var order = Array(0..<pages)
            for i in stride(from: pages - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.below(UInt64(i + 1)))) }
            let origin = Int(offsetPages * page)
            for p in order {
                let at = p * Int(page) + Int(rng.below(page))
                #expect(Kit.load(seg.base + UInt64(at)) == content[origin + at], "page \(p)")
            }
            content.withUnsafeBytes { c in
                #expect(Kit.equal(seg.base, c.baseAddress! + origin, pages * Int(page)))
            }
            let s = d.statistics
            #expect(s.bytes == UInt64(pages) * page && d.filledPages(seg) == pages)
            #expect(s.faults == s.copies && s.alreadyPresent == 0 && s.refused == 0, "one toucher, one handler: \(s)")
            #expect(s.faults >= UInt64((pages + Int(readAheadPages) - 1) / Int(readAheadPages)))
            #expect(s.faults <= UInt64(pages))
            #expect(host.residentPages(seg) == UInt64(pages))
        }
    }
}
