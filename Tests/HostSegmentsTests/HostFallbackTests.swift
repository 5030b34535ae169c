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

/// Without userfaultfd: demand-filled segments (anonymous memory, stacks,
/// lazy fill) are populated when mapped, the contents are the same, nothing
/// is registered, and the address space says why userfaultfd is not used.
@Suite("Host fallback: no userfaultfd, eager population")
struct HostFallbackTests {
    @Test func segmentsArePopulatedEagerlyAndTheContentsAreRight() throws {
        try Kit.gated {
            try GuardReporter.install()
            let host = try HostAddressSpace(windowSize: 64 << 20, userfaultfd: false)
            defer { try? host.destroy() }
            #expect(!host.usesUserfaultfd && host.faultService == nil)
            let reason = try #require(host.userfaultfdUnavailableReason)
            #expect(!reason.isEmpty)

            // Anonymous: every page resident at once, zeros, served by the kernel.
            let anon = try host.mapAnonymous(size: 32 * page)
            #expect(host.residentPages(anon) == 32)
            #expect(Kit.driver(anon).modes.isEmpty && Kit.driver(anon).servedBy == "kernel")
            #expect(Kit.bytes(at: anon.base, count: Int(32 * page)).allSatisfy { $0 == 0 })
            Kit.store(anon.base + 3 * page, 9)
            #expect(Kit.load(anon.base + 3 * page) == 9)
            #expect(Kit.driver(anon).statistics.faults == 0)

            // Lazy fill: copied when mapped, byte for byte.
            let content = Kit.patternBytes(count: Int(30 * page), seed: 71)
            let (file, _) = try Kit.file(content)
            let lazy = try host.mapLazyFill(file, offset: 2 * page, size: 24 * page)
            let d = try #require(lazy.driver as? HostLazyFill)
            #expect(host.residentPages(lazy) == 24)
            #expect(d.filledPages(lazy) == 24 && d.statistics.bytes == 24 * page && d.statistics.faults == 0)
            content.withUnsafeBytes { #expect(Kit.equal(lazy.base, $0.baseAddress! + Int(2 * page), Int(24 * page))) }
            // Read-only lazy fill: filled, then protected.
            let ro = try host.mapLazyFill(file, size: 4 * page, protection: .read)
            #expect(ProcessMaps.perms(at: ro.base) == "r--p")
            #expect(Kit.bytes(at: ro.base, count: Int(4 * page)) == Array(content[0..<Int(4 * page)]))
            #expect(try ChildTouch.touch(ro.base, write: true).signal == SIGSEGV)

            // A stack: populated, its red zone still reported.
            let stack = try host.mapStack(size: 4 * page, name: "fallback-\(getpid())")
            #expect(host.residentPages(stack) == 4)
            #expect(GuardReporter.report(for: stack.base)?.contains("stack overflow") == true)

            // segdev: a child's writes are read through the kernel's own faults.
            let m = try MemoryObject.memfd(name: "vmk-fallback", size: 4 * page)
            let dev = try host.mapDevice(m, size: 4 * page)
            #expect(try ChildTouch.writeFromChild(m, offset: 0, length: 4 * page, seed: 5) == 0)
            #expect(Kit.bytes(at: dev.base, count: Int(4 * page)) == (0..<Int(4 * page)).map { UInt8(truncatingIfNeeded: 5 &+ $0 &* 7) })
            #expect(Kit.driver(dev).statistics.faults == 0)

            // Explicit faults, protections, trims and splits work the same.
            try host.fault(address: anon.base, size: 4 * page, access: .write)
            #expect(Kit.driver(anon).statistics.faults == 1)
            try host.setProtection(address: anon.base, size: page, protection: .read)
            #expect(ProcessMaps.perms(at: anon.base) == "r--p")
            try host.unmap(address: lazy.base + 8 * page, size: 4 * page)
            #expect(Kit.bytes(at: lazy.base + 12 * page, count: Int(page)) == Array(content[Int(14 * page) ..< Int(15 * page)]))
            try host.space.verify()
        }
    }

    @Test func fallbackAndUserfaultfdGiveTheSameBytes() throws {
        try Kit.gated {
            let content = Kit.patternBytes(count: Int(64 * page), seed: 72)
            let (file, _) = try Kit.file(content)
            var images: [[UInt8]] = []
            for uffd in [true, false] {
                let host = try HostAddressSpace(windowSize: 64 << 20, userfaultfd: uffd)
                #expect(host.usesUserfaultfd == uffd)
                #expect((host.userfaultfdUnavailableReason == nil) == uffd)
                let seg = try host.mapLazyFill(file, offset: 8 * page, size: 48 * page, readAhead: 8 * page)
                Kit.store(seg.base + 3, 0x42)
                images.append(Kit.bytes(at: seg.base, count: Int(48 * page)))
                try host.destroy()
            }
            #expect(images[0] == images[1])
            var expected = Array(content[Int(8 * page) ..< Int(56 * page)])
            expected[3] = 0x42
            #expect(images[0] == expected)
        }
    }
}
