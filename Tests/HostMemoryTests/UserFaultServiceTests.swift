import Testing
import HostTestSupport
#if canImport(Glibc)
import Glibc
#endif
import CHostMemory
import HostMemory

private typealias Kit = HostMemTestKit

/// The userfaultfd service on its own: an anonymous mapping inside a
/// reservation registered for missing faults, a handler that copies a
/// pattern, the events it sees (address, write flag, thread), fills that
/// meet present pages, refusals, and stopping (idempotent; refused from a
/// handler thread).
@Suite("UserFaultService: real userfaultfd", .userfaultfdOrRoot)
struct UserFaultServiceTests {
    struct Seen: Hashable { let page: UInt64; let write: Bool; let thread: UInt32 }

    @Test func probeOffersWhatTheServiceUses() throws {
        let offered: UserFaultFeatures
        switch UserFaultService.probe() {
        case .success(let f): offered = f
        case .failure(let e):
            Issue.record("userfaultfd must work on this machine (root, /dev/userfaultfd): \(e)")
            return
        }
        try Kit.gated {
            let service = try UserFaultService { _, _ in .wake }
            defer { try? service.stop() }
            #expect(service.features.isSubset(of: offered), "the service asks only for what the kernel offers")
            // ...and gets each feature it uses wherever the kernel offers it.
            for f in [UserFaultFeatures.writeProtect, .missingShmem, .threadID, .minorShmem, .writeProtectShmem] {
                #expect(service.features.contains(f) == offered.contains(f), "feature \(f.rawValue)")
            }
            #expect(["syscall", "/dev/userfaultfd"].contains(service.openedThrough))
            #expect(!service.isStopped && service.eventsRead == 0 && service.refusals == 0)
        }
    }

    @Test(arguments: [1, 3])
    func handlerCopiesAPatternIntoRegisteredPages(_ threads: Int) throws {
        try Kit.gated {
            let pages = 16
            let r = try HostReservation(size: 2 << 20)
            defer { r.destroy() }
            let base = r.base + 4 * Kit.page
            try r.mapAnonymous(at: base, length: UInt64(pages) * Kit.page, protection: .readWrite)
            let source = Kit.patternBytes(pages: pages, seed: UInt8(threads))
            let src = UnsafeMutableRawPointer.allocate(byteCount: source.count, alignment: 4096)
            defer { src.deallocate() }
            source.withUnsafeBytes { src.copyMemory(from: $0.baseAddress!, byteCount: source.count) }
            let seen = HMLocked<[Seen]>([])
            let srcAddress = UInt(bitPattern: src)
            let service = try UserFaultService(threads: threads) { fault, service in
                seen.withLock { $0.append(Seen(page: fault.page, write: fault.isWrite, thread: fault.thread)) }
                let from = UnsafeRawPointer(bitPattern: srcAddress + UInt(fault.page - base))!
                do {
                    try service.copy(to: fault.page, from: from, length: Kit.page)
                    return .resolved
                } catch {
                    return .refuse
                }
            }
            try service.register(at: base, length: UInt64(pages) * Kit.page, modes: .missing)
            let me = UInt32(vmk_gettid())

            #expect(Kit.bytes(at: base + 5, count: 1) == [source[5]])
            r.pointer(base + 3 * Kit.page + 9).storeBytes(of: 0xFE, as: UInt8.self)
            var expected = source
            expected[3 * 4096 + 9] = 0xFE
            #expect(Kit.bytes(at: base, count: source.count) == expected)
            #expect(try r.residentPages(at: base, length: UInt64(pages) * Kit.page) == UInt64(pages))

            let events = seen.get
            #expect(events.count == pages, "one event per page, each page filled once")
            #expect(Set(events.map(\.page)) == Set((0..<pages).map { base + UInt64($0) * Kit.page }))
            #expect(events.filter(\.write).map(\.page) == [base + 3 * Kit.page])
            if service.features.contains(.threadID) {
                #expect(events.allSatisfy { $0.thread == me }, "the events name the touching thread")
            }
            #expect(service.eventsRead == UInt64(pages))
            #expect(service.refusals == 0)

            // A fill of a page that is already there says so, with how much it did fill.
            let again = try service.copy(to: base, from: src, length: Kit.page)
            #expect(again == .alreadyPresent(bytes: 0))
            try r.release(at: base + Kit.page, length: Kit.page)
            try r.mapAnonymous(at: base + Kit.page, length: Kit.page, protection: .readWrite)
            try service.register(at: base + Kit.page, length: Kit.page, modes: .missing)
            // Pages 1 (missing again) and 2 (present): one page filled, then the present one.
            let partial = try service.copy(to: base + Kit.page, from: src, length: 2 * Kit.page)
            #expect(partial == .alreadyPresent(bytes: Kit.page))
            #expect(Kit.bytes(at: base + Kit.page, count: 4096) == Array(source[0..<4096]))
            // An ioctl the range cannot take is a typed system error.
            #expect(throws: HostMemoryError.self) { try service.continueMapping(at: base, length: Kit.page) }

            try service.stop()
            #expect(service.isStopped)
            try service.stop()  // idempotent
            #expect(throws: HostMemoryError.destroyed(what: "the fault service")) {
                try service.register(at: base, length: Kit.page, modes: .missing)
            }
            #expect(throws: HostMemoryError.destroyed(what: "the fault service")) {
                try service.unregister(at: base, length: Kit.page)
            }
            // With the fd closed the kernel serves the range itself.
            try r.release(at: base, length: Kit.page)
            try r.mapAnonymous(at: base, length: Kit.page, protection: .readWrite)
            #expect(Kit.bytes(at: base, count: 8) == [0, 0, 0, 0, 0, 0, 0, 0])
        }
    }

    @Test func stopFromAHandlerThreadIsCalledFromHandler() throws {
        try Kit.gated {
            let r = try HostReservation(size: 2 << 20)
            defer { r.destroy() }
            try r.mapAnonymous(at: r.base, length: 2 * Kit.page, protection: .readWrite)
            let outcome = HMLocked<(error: HostMemoryError?, onHandler: Bool, ran: Bool)>((nil, false, false))
            let service = try UserFaultService(threads: 2) { fault, service in
                var failure: HostMemoryError? = nil
                do throws(HostMemoryError) { try service.stop() } catch { failure = error }
                let onHandler = service.isHandlerThread
                outcome.withLock { $0 = (failure, onHandler, true) }
                _ = try? service.zero(at: fault.page, length: Kit.page)
                return .resolved
            }
            try service.register(at: r.base, length: 2 * Kit.page, modes: .missing)
            #expect(Kit.bytes(at: r.base, count: 1) == [0])
            let o = outcome.get
            #expect(o.ran)
            #expect(o.error == .calledFromHandler(operation: "UserFaultService.stop"))
            #expect(o.onHandler)
            #expect(!service.isHandlerThread)
            #expect(!service.isStopped, "a refused stop leaves the service running")
            #expect(Kit.bytes(at: r.base + Kit.page, count: 1) == [0], "still serving")
            #expect(service.eventsRead == 2)
            try service.stop()
            #expect(service.isStopped)
        }
    }

    @Test func refusedPageRaisesSIGBUS() throws {
        try Kit.gated {
            try GuardReporter.install()
            let r = try HostReservation(size: 2 << 20)
            defer { r.destroy() }
            try r.mapAnonymous(at: r.base, length: 2 * Kit.page, protection: .readWrite)
            let service = try UserFaultService { fault, service in
                if fault.page == r.base { return .refuse }
                _ = try? service.zero(at: fault.page, length: Kit.page)
                return .resolved
            }
            defer { try? service.stop() }
            try service.register(at: r.base, length: 2 * Kit.page, modes: .missing)
            // Fault the page through a system call, which gets EFAULT where a
            // direct touch would kill this process.
            let zero = open("/dev/zero", O_RDONLY | O_CLOEXEC)
            defer { close(zero) }
            let n = read(zero, r.pointer(r.base), 16)
            let e = errno
            #expect(n == -1 && e == EFAULT, "read into a refused page: \(n), errno \(e)")
            #expect(service.refusals == 1)
            #expect(read(zero, r.pointer(r.base + Kit.page), 16) == 16, "the other page is served")
            // The refused page is a page of an empty object: a touch is SIGBUS.
            let child = try ChildTouch.touch(r.base + 8, write: false)
            #expect(child.signal == SIGBUS, "\(child)")
            #expect(try ChildTouch.touch(r.base + Kit.page, write: true).exitCode == 0)
        }
    }

    @Test(arguments: [0, -1, 65])
    func threadCountsOutOfRangeAreRefused(_ threads: Int) {
        #expect(throws: HostMemoryError.invalidArgument(name: "handler threads", value: UInt64(max(threads, 0)),
                                                        reason: "must be 1 to 64")) {
            _ = try UserFaultService(threads: threads) { _, _ in .wake }
        }
    }
}

/// Several handler threads against several touching threads: every page of
/// a registered range is filled exactly once, whichever thread's event
/// arrives first. Run under the thread sanitizer in CI.
@Suite("HostConcurrencyTests: the fault service under contention", .userfaultfdOrRoot)
struct HostConcurrencyTests {
    @Test func manyTouchersManyHandlersEachPageOnce() throws {
        try Kit.gated {
            let pages = 1024
            let r = try HostReservation(size: 8 << 20)
            defer { r.destroy() }
            try r.mapAnonymous(at: r.base, length: UInt64(pages) * Kit.page, protection: .readWrite)
            let filled = HMLocked<[UInt64: Int]>([:])
            let present = HMLocked(0)
            let base = r.base
            let service = try UserFaultService(threads: 4) { fault, service in
                var page = [UInt64](repeating: fault.page, count: 512)
                page[1] = (fault.page - base) / 4096
                let result = page.withUnsafeBytes { try? service.copy(to: fault.page, from: $0.baseAddress!, length: 4096) }
                switch result {
                case .filled?: filled.withLock { $0[fault.page, default: 0] += 1 }
                case .alreadyPresent?:
                    present.withLock { $0 += 1 }
                    try? service.wake(at: fault.page, length: 4096)
                case nil: return .refuse
                }
                return .resolved
            }
            defer { try? service.stop() }
            try service.register(at: base, length: UInt64(pages) * Kit.page, modes: .missing)
            let bad = HMLocked(0)
            var threads: [pthread_t] = []
            final class Job: @unchecked Sendable {
                let body: () -> Void
                init(_ body: @escaping () -> Void) { self.body = body }
            }
            for t in 0..<6 {
                let job = Job {
                    for k in 0..<pages {
                        let i = (k * 7 + t * 131) % pages
                        let p = UnsafePointer<UInt64>(bitPattern: UInt(base) + UInt(i) * 4096)!
                        if p[0] != base + UInt64(i) * 4096 || p[1] != UInt64(i) { bad.withLock { $0 += 1 } }
                    }
                }
                var th = pthread_t()
                let box = Unmanaged.passRetained(job).toOpaque()
                #expect(pthread_create(&th, nil, { raw in
                    Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue().body()
                    return nil
                }, box) == 0)
                threads.append(th)
            }
            for th in threads { pthread_join(th, nil) }
            #expect(bad.get == 0)
            // The handler records a fill after the copy has woken the toucher:
            // once stopped, every event read has been handled and recorded.
            try service.stop()
            let counts = filled.get
            #expect(counts.count == pages)
            #expect(counts.values.allSatisfy { $0 == 1 }, "a page copied twice")
            #expect(service.eventsRead >= UInt64(pages))
            #expect(service.eventsRead == UInt64(pages + present.get))
        }
    }
}
