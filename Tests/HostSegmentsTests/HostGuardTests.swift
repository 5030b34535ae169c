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

/// Touches that must kill, shown in a forked child: a stack's red zone and a
/// hole die of SIGSEGV with the guard reporter's line naming the segment; a
/// lazy-fill page the file can no longer supply is refused, and the child
/// touching it dies of SIGBUS with a line saying the driver refused it.
///
/// A forked child does not inherit userfaultfd registrations (no
/// `UFFD_FEATURE_EVENT_FORK`), so the refusal is made in this process first,
/// through a system call that gets EFAULT instead of a signal; the child
/// then inherits the refused page and the guard table.
@Suite("Host guards: red zones, holes and refused faults in a child process", .userfaultfdOrRoot)
struct HostGuardTests {
    @Test(arguments: [false, true])
    func stackRedZoneTouch(_ write: Bool) throws {
        try Kit.gated {
            try GuardReporter.install()
            let host = try HostAddressSpace(windowSize: 64 << 20)
            defer { try? host.destroy() }
            let name = "red-\(write)-\(getpid())"
            let seg = try host.mapStack(size: 4 * page, redZone: 2 * page, name: name)
            let stack = try #require(seg.driver as? HostStack)
            let address = seg.base + page + 0x48
            let c = try ChildTouch.touch(address, write: write)
            #expect(c.signal == SIGSEGV, "\(c)")
            #expect(c.message.contains("stack overflow"), "\(c.message)")
            #expect(c.message.contains("stack \"\(name)\""))
            #expect(c.message.contains("at \(Kit.hex(address))"))
            #expect(c.message.contains("[\(Kit.hex(seg.base)), +\(Kit.hex(2 * page)))"))
            #expect(c.message == GuardReporter.report(for: address))
            // The stack itself is fine to touch (the parent fills it; the child inherits it).
            Kit.store(stack.stackBase + 8, 1)
            let ok = try ChildTouch.touch(stack.stackBase + 8, write: write)
            #expect(ok.signal == 0 && ok.exitCode == 0 && ok.message.isEmpty, "\(ok)")
            // Once unmapped the red zone is plain reserved memory: a bare SIGSEGV.
            try host.unmap(address: seg.base, size: seg.size)
            let bare = try ChildTouch.touch(address, write: write)
            #expect(bare.signal == SIGSEGV && bare.message.isEmpty, "\(bare)")
        }
    }

    @Test func holeTouch() throws {
        try Kit.gated {
            try GuardReporter.install()
            let host = try HostAddressSpace(windowSize: 64 << 20)
            defer { try? host.destroy() }
            let seg = try host.mapHole(size: 16 * page, name: "va-hole-\(getpid())")
            let address = seg.base + 9 * page + 3
            for write in [false, true] {
                let c = try ChildTouch.touch(address, write: write)
                #expect(c.signal == SIGSEGV, "\(c)")
                #expect(c.message.contains("reserved hole") && c.message.contains("seghole \"va-hole-\(getpid())\""))
                #expect(c.message.contains("at \(Kit.hex(address))") && c.message.hasSuffix("(SIGSEGV)"))
            }
        }
    }

    @Test func refusedLazyFillFaultIsSIGBUSWithAMessage() throws {
        try Kit.gated {
            try GuardReporter.install()
            let host = try HostAddressSpace(windowSize: 64 << 20)
            defer { try? host.destroy() }
            let content = Kit.patternBytes(count: Int(8 * page), seed: 31)
            let (file, _) = try Kit.file(content, writable: true)
            let seg = try host.mapLazyFill(file, size: 8 * page, readAhead: page)
            let d = try #require(seg.driver as? HostLazyFill)
            #expect(Kit.load(seg.base + 5) == content[5])
            // The file shrinks under the mapping.
            try file.resize(to: 2 * page)
            // An explicit fault past the new end fails with a typed error...
            #expect(throws: HostSegmentError.self) { try host.fault(address: seg.base + 6 * page, size: page) }
            // ...and a touch is refused (EFAULT for the system call here).
            let target = seg.base + 5 * page
            #expect(Kit.readZero(into: target + 16, count: 16) == (-1, EFAULT))
            #expect(d.statistics.refused == 1)
            let report = try #require(GuardReporter.report(for: target + 16, bus: true))
            #expect(report.contains("fault refused by its segment driver") && report.contains("seglazy_ops"))
            // A child touching the page dies of SIGBUS and says why.
            let c = try ChildTouch.touch(target + 16, write: false)
            #expect(c.signal == SIGBUS, "\(c)")
            #expect(c.message == report, "\(c.message)")
            #expect(c.message.contains("[\(Kit.hex(seg.base)), +\(Kit.hex(8 * page)))"), "the segment is named")
            // Pages the file still has keep filling.
            #expect(Kit.load(seg.base + page + 7) == content[Int(page) + 7])
            #expect(d.statistics.refused == 1)
            // A second refusal, above the first.
            let other = seg.base + 7 * page
            #expect(Kit.readZero(into: other, count: 8) == (-1, EFAULT))
            #expect(GuardReporter.report(for: other) != nil)
            // Unmapping the refused page alone (a split) takes its report with it...
            try host.unmap(address: target, size: page)
            #expect(GuardReporter.report(for: target + 16) == nil, "a stale report for a page no longer refused")
            #expect(try ChildTouch.touch(target + 16, write: false).message.isEmpty)
            // ...the other refused page now belongs to the upper piece, and keeps
            // its report when the lower piece goes...
            try host.unmap(address: seg.base, size: 5 * page)
            #expect(GuardReporter.report(for: other) != nil, "the upper piece's refused page is still refused")
            #expect(try ChildTouch.touch(other, write: false).message.contains("refused"))
            // ...until its own piece is unmapped.
            try host.unmap(address: seg.base + 6 * page, size: 2 * page)
            #expect(host.segments.isEmpty)
            #expect(GuardReporter.report(for: other) == nil)
        }
    }
}
