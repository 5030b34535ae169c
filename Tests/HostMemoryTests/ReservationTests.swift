import Testing
import HostTestSupport
#if canImport(Glibc)
import Glibc
#endif
import HostMemory

private typealias Kit = HostMemTestKit

/// The window: 2 MiB aligned, inaccessible until something is mapped into
/// it (checked three ways: `/proc/self/maps`, `mincore`, and a touch from a
/// forked child that must die of SIGSEGV), released by `destroy`, and
/// refusing bad sizes and ranges with typed errors.
@Suite("HostReservation: a PROT_NONE window")
struct ReservationTests {
    @Test func windowIsAlignedAndInaccessibleUntilMapped() throws {
        try Kit.gated {
            // The guard reporter's handler, not the runtime's backtracer, meets the children's faults.
            try GuardReporter.install()
            let size: UInt64 = 6 << 20
            let r = try HostReservation(size: size)
            defer { r.destroy() }
            #expect(r.base % HostReservation.alignment == 0)
            #expect(r.size == size)
            #expect(r.window == r.base ..< r.base + size)

            // Reserved: one PROT_NONE mapping covers the whole window.
            let m = try #require(ProcessMaps.mapping(containing: r.base))
            #expect(m.perms == "---p")
            #expect(m.start <= r.base && m.end >= r.base + size)
            #expect(try r.residentPages(at: r.base, length: size) == 0)
            let before = try ChildTouch.touch(r.base + 3 * Kit.page + 17, write: false)
            #expect(before.signal == SIGSEGV, "a read of the reserved window must fault: \(before)")

            // Mapped: readable and writable, resident once touched.
            let at = r.base + (2 << 20)
            try r.mapAnonymous(at: at, length: 4 * Kit.page, protection: .readWrite)
            #expect(ProcessMaps.perms(at: at) == "rw-p")
            #expect(ProcessMaps.perms(at: at - Kit.page) == "---p")
            #expect(try r.residentPages(at: at, length: 4 * Kit.page) == 0)
            r.pointer(at + Kit.page).storeBytes(of: 0xAB, as: UInt8.self)
            #expect(r.pointer(at + Kit.page).load(as: UInt8.self) == 0xAB)
            #expect(try r.residentPages(at: at, length: 4 * Kit.page) == 1)
            let read = try ChildTouch.touch(at + Kit.page, write: true)
            #expect(read.signal == 0 && read.exitCode == 0, "\(read)")

            // Read-only: a write in a child dies, a read does not.
            try r.protect(at: at, length: 2 * Kit.page, protection: .read)
            #expect(ProcessMaps.perms(at: at) == "r--p")
            #expect(ProcessMaps.perms(at: at + 2 * Kit.page) == "rw-p")
            let write = try ChildTouch.touch(at + Kit.page, write: true)
            #expect(write.signal == SIGSEGV, "\(write)")
            #expect(try ChildTouch.touch(at + Kit.page, write: false).signal == 0)

            // Released: inaccessible again, and the bytes are gone.
            try r.release(at: at, length: 4 * Kit.page)
            #expect(ProcessMaps.perms(at: at + Kit.page) == "---p")
            #expect(try r.residentPages(at: at, length: 4 * Kit.page) == 0)
            #expect(try ChildTouch.touch(at + Kit.page, write: false).signal == SIGSEGV)
            try r.mapAnonymous(at: at, length: Kit.page, protection: .readWrite, populate: true)
            #expect(try r.residentPages(at: at, length: Kit.page) == 1, "populate faults the page in")
            #expect(r.pointer(at).load(as: UInt8.self) == 0)
        }
    }

    @Test func destroyReleasesTheWindow() throws {
        try Kit.gated {
            let size: UInt64 = 10 << 20
            let r = try HostReservation(size: size)
            let base = r.base
            #expect(ProcessMaps.mappings().contains { $0.start <= base && $0.end >= base + size && $0.perms == "---p" })
            #expect(!r.isDestroyed)
            r.destroy()
            #expect(r.isDestroyed)
            // The window's PROT_NONE span is gone (whatever reuses the range
            // later, nothing maps these 10 MiB PROT_NONE right away).
            #expect(!ProcessMaps.mappings().contains { $0.start <= base && $0.end >= base + size && $0.perms == "---p" })
            r.destroy()  // idempotent
            #expect(throws: HostMemoryError.destroyed(what: "the reservation at \(Kit.hex(base))")) {
                try r.check(base, Kit.page)
            }
            #expect(throws: HostMemoryError.destroyed(what: "the reservation at \(Kit.hex(base))")) {
                try r.mapAnonymous(at: base, length: Kit.page, protection: .readWrite)
            }
            // A reservation dropped without destroy releases its window too.
            var inner: HostReservation? = try HostReservation(size: size)
            let innerBase = inner!.base
            inner = nil
            #expect(!ProcessMaps.mappings().contains { $0.start <= innerBase && $0.end >= innerBase + size && $0.perms == "---p" })
        }
    }

    @Test(arguments: [0, 1, 4096, (2 << 20) + 4096, (2 << 20) - 1, 1 << 47, (1 << 47) + (2 << 20),
                      UInt64.max, UInt64.max - (2 << 20) + 1, 1 << 63] as [UInt64])
    func invalidSizesAreTypedErrors(_ size: UInt64) {
        #expect(throws: HostMemoryError.invalidWindowSize(size)) { try HostReservation(size: size) }
    }

    @Test func rangesAreCheckedWithTypedErrors() throws {
        try Kit.gated {
            let r = try HostReservation(size: 2 << 20)
            defer { r.destroy() }
            let b = r.base
            #expect(throws: HostMemoryError.zeroLength(address: b)) { try r.check(b, 0) }
            #expect(throws: HostMemoryError.notAligned(what: "address", value: b + 1, alignment: 4096)) {
                try r.check(b + 1, 4096)
            }
            #expect(throws: HostMemoryError.notAligned(what: "length", value: 100, alignment: 4096)) {
                try r.check(b, 100)
            }
            #expect(throws: HostMemoryError.rangeWraps(address: b, length: UInt64.max - 4095)) {
                try r.check(b, UInt64.max - 4095)
            }
            #expect(throws: HostMemoryError.outsideWindow(address: b - 4096, length: 8192, windowBase: b,
                                                          windowSize: 2 << 20)) {
                try r.check(b - 4096, 8192)
            }
            #expect(throws: HostMemoryError.outsideWindow(address: b + (2 << 20) - 4096, length: 8192,
                                                          windowBase: b, windowSize: 2 << 20)) {
                try r.mapAnonymous(at: b + (2 << 20) - 4096, length: 8192, protection: .readWrite)
            }
            // A refused call changed nothing.
            #expect(ProcessMaps.perms(at: b) == "---p")
            #expect(ProcessMaps.perms(at: b + (2 << 20) - 4096) == "---p")
            try r.check(b, 2 << 20)
            #expect(throws: HostMemoryError.zeroLength(address: b)) { try r.protect(at: b, length: 0, protection: .read) }
            #expect(throws: HostMemoryError.self) { try r.residentPages(at: b + (2 << 20), length: 4096) }
        }
    }
}
