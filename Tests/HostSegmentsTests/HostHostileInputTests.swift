import Testing
#if canImport(Glibc)
import Glibc
#endif
import AddressSpace
import HostMemory
import VmemWorkloads
@testable import HostSegments

private typealias Kit = HostSegTestKit
private let page = HostSegTestKit.page

/// Every public entry point of HostAddressSpace, HostReservation and
/// MemoryObject with numbers drawn to hurt: zero, unaligned, outside the
/// window, wrapping past 2^64, overlapping what is mapped, offsets past an
/// object's end, protections beyond what an object allows or with stray
/// bits, objects that shrink under their mappings. Each call succeeds or
/// throws a typed error; nothing traps; after every step the segment tree
/// verifies, `a_size` is the sum of the non-hole segments, and every
/// segment lies in the window. Touches go through system calls (EFAULT, not
/// a signal, where nothing accessible is mapped). VMKIT_SOAK=1 takes 50,000
/// steps per seed instead of 1,500.
@Suite("Host hostile input: typed errors, never a trap")
struct HostHostileInputTests {
    struct Draw {
        var rng: SplitMix64
        let window: Range<UInt64>

        mutating func next() -> UInt64 { rng.next() }
        mutating func below(_ n: UInt64) -> UInt64 { rng.below(n) }
        mutating func chance(_ p: UInt64) -> Bool { rng.chance(p) }

        mutating func address() -> UInt64? {
            let w = window
            switch below(12) {
            case 0: return nil
            case 1: return [0, 1, 0xFFF, w.lowerBound - page, w.lowerBound + 1, w.upperBound - page, w.upperBound,
                            .max, .max - 0xFFF, 1 << 47, 1 << 63][Int(below(11))]
            case 2: return next()
            case 3: return w.lowerBound + below(UInt64(w.count) / page) * page + below(2) * 7
            default: return w.lowerBound + below(256) * page
            }
        }

        mutating func size() -> UInt64 {
            switch below(10) {
            case 0: return [0, 1, 0xFFF, .max, .max - 0xFFF, 1 << 47, 1 << 63, UInt64(window.count),
                            UInt64(window.count) + page][Int(below(9))]
            case 1: return next()
            case 2: return (1 + below(64)) * page + below(2)
            default: return (1 + below(16)) * page
            }
        }

        mutating func offset() -> UInt64 {
            switch below(8) {
            case 0: return [1, 0xFFF, .max, .max - 0xFFF, 1 << 63, UInt64(Int64.max)][Int(below(6))]
            case 1: return next()
            default: return below(20) * page
            }
        }

        mutating func protection() -> HostProtection {
            chance(10) ? HostProtection(rawValue: UInt8(truncatingIfNeeded: next())) : HostProtection(rawValue: UInt8(below(8)))
        }

        mutating func pick<T>(_ xs: [T]) -> T { xs[Int(below(UInt64(xs.count)))] }
    }

    /// Whether an error is one of the package's typed errors.
    static func typed(_ error: any Error) -> Bool {
        error is HostSegmentError || error is HostMemoryError || error is AddressSpaceError
    }

    static func checkInvariants(_ host: HostAddressSpace) throws {
        try host.space.verify()
        let segs = host.segments
        var counted: UInt64 = 0
        for (i, s) in segs.enumerated() {
            #expect(host.reservation.window.contains(s.base) && s.base + s.size <= host.reservation.window.upperBound,
                    "segment \(s) outside the window")
            #expect(s.driver is HostSegmentDriver)
            if i > 0 { #expect(segs[i - 1].base + segs[i - 1].size <= s.base, "overlap") }
            if !s.flags.contains(.hole) { counted += s.size }
        }
        #expect(host.space.size == counted, "a_size \(host.space.size) != mapped \(counted)")
    }

    @Test(arguments: [(true, 1 as UInt64), (true, 2), (false, 3)])
    func hostileCallsNeverTrap(_ userfaultfd: Bool, _ seed: UInt64) throws {
        try Kit.gated {
            try GuardReporter.install()
            let host = try HostAddressSpace(windowSize: 16 << 20, faultThreads: Int(seed % 2) + 1, userfaultfd: userfaultfd)
            var d = Draw(rng: SplitMix64(seed: seed), window: host.reservation.window)
            let (file, _) = try Kit.file(Kit.patternBytes(count: Int(16 * page), seed: 1), writable: true)
            let (roFile, _) = try Kit.file(Kit.patternBytes(count: Int(16 * page), seed: 2))
            let memfd = try Kit.memfd(Kit.patternBytes(count: Int(16 * page), seed: 3))
            let sealed = try Kit.memfd(Kit.patternBytes(count: Int(8 * page), seed: 4), name: "vmk-hostile-sealed")
            try sealed.seal([.write, .shrink, .grow])
            let objects = [file, roFile, memfd, sealed, MemoryObject.anonymous(size: 16 * page)]
            let spare = try HostReservation(size: 4 << 20)
            defer { spare.destroy() }
            var ok = 0, refused = 0
            let zero = open("/dev/zero", O_RDONLY | O_CLOEXEC)
            defer { close(zero) }

            for step in 0..<(Kit.soak ? 50_000 : 1500) {
                do {
                    switch d.below(20) {
                    case 0, 1: try host.mapAnonymous(size: d.size(), at: d.address(), protection: d.protection())
                    case 2: try host.mapFile(d.pick(objects), offset: d.offset(), size: d.size(), at: d.address(),
                                             protection: d.protection(), shared: d.chance(50))
                    case 3: try host.mapDevice(d.pick(objects), offset: d.offset(), size: d.size(), at: d.address(),
                                               protection: d.protection())
                    case 4: try host.mapHole(size: d.size(), at: d.address(), name: "hostile-\(step)")
                    case 5: try host.mapStack(size: d.size(), redZone: d.chance(70) ? page : d.size(), at: d.address(),
                                              name: "hostile-\(step)")
                    case 6: try host.mapLazyFill(d.pick(objects), offset: d.offset(), size: d.size(), at: d.address(),
                                                 readAhead: d.chance(80) ? (1 + d.below(16)) * page : d.next(),
                                                 protection: d.protection())
                    case 7, 8: try host.unmap(address: d.address() ?? 0, size: d.size())
                    case 9: try host.setProtection(address: d.address() ?? 0, size: d.size(), protection: d.protection())
                    case 10:
                        try host.fault(address: d.address() ?? 0, size: d.chance(80) ? (1 + d.below(8)) * page : d.size(),
                                       access: d.pick(SegmentAccess.allCases), type: d.pick(FaultType.allCases))
                    case 11:
                        // A touch through the kernel: filled, or EFAULT.
                        let a = d.address() ?? host.reservation.base
                        if host.reservation.window.contains(a) {
                            let n = d.chance(50) ? read(zero, UnsafeMutableRawPointer(bitPattern: UInt(a)), 16)
                                                 : Kit.readVia(a, count: 16).0
                            #expect(n == 16 || (n == -1 && errno == EFAULT), "touch at \(Kit.hex(a)): \(n)")
                        }
                    case 12:
                        // The space's own entry points, which reach the drivers with ranges of their own.
                        switch d.below(3) {
                        case 0: try host.space.checkProtection(address: d.address() ?? 0, size: d.size(),
                                                               protection: Protection(d.protection()))
                        case 1: try host.space.unmap(address: d.address() ?? 0, size: d.size())
                        default: _ = host.space.segment(overlapping: d.address() ?? 0, size: d.size())
                        }
                    case 13:
                        // The reservation directly (a spare one: this bypasses any segment tree).
                        let a = d.chance(70) ? spare.base + d.below(1024) * page : (d.address() ?? 0)
                        switch d.below(7) {
                        case 0: try spare.check(a, d.size())
                        case 1: try spare.mapAnonymous(at: a, length: d.size(), protection: d.protection(), populate: d.chance(20))
                        case 2: try spare.map(d.pick(objects), offset: d.offset(), at: a, length: d.size(),
                                              protection: d.protection(), shared: d.chance(50), populate: d.chance(20))
                        case 3: try spare.release(at: a, length: d.size())
                        case 4: try spare.protect(at: a, length: d.size(), protection: d.protection())
                        case 5: try spare.advise(at: a, length: d.size(), advice: Int32(truncatingIfNeeded: d.below(30)))
                        default: _ = try spare.residentPages(at: a, length: d.size())
                        }
                    case 14:
                        let size = d.chance(80) ? d.below(8) << 21 : d.next()
                        let r = try HostReservation(size: size)
                        #expect(r.base % HostReservation.alignment == 0 && r.size == size)
                        r.destroy()
                    case 15:
                        // The objects: sizes (objects may shrink under their mappings), reads and writes anywhere.
                        let o = d.pick(objects)
                        switch d.below(6) {
                        case 0: try o.resize(to: d.chance(80) ? d.below(24) * page + d.below(2) : d.next())
                        case 1: _ = try o.read(offset: d.offset(), count: d.chance(80) ? Int(d.below(9000)) : Int(truncatingIfNeeded: d.next() >> 40) - (1 << 23))
                        case 2: try o.write([1, 2, 3], offset: d.chance(80) ? d.below(24 * page) : d.offset())
                        case 3: try o.checkMappable(offset: d.offset(), length: d.size(), protection: d.protection(),
                                                    shared: d.chance(50))
                        case 4: try o.seal(MemoryObject.Seals(rawValue: Int32(truncatingIfNeeded: d.below(64))))
                        default: _ = try ObjectView(o, offset: d.offset(), length: d.size())
                        }
                    case 16:
                        _ = try MemoryObject.memfd(name: "vmk-hostile-\(d.below(1000))", size: d.chance(80) ? d.below(8) * page : d.next(),
                                                   sealable: d.chance(50))
                    case 17:
                        _ = try MemoryObject.file(path: d.pick(["/tmp", "/nonexistent-vmkit", "/proc/self/maps", "/dev/null", ""]),
                                                  writable: d.chance(50))
                    default:
                        for s in host.segments.prefix(4) { _ = host.residentPages(s) }
                        _ = host.pointer(host.reservation.base)
                    }
                    ok += 1
                } catch {
                    #expect(Self.typed(error), "step \(step): untyped error \(error)")
                    refused += 1
                }
                try Self.checkInvariants(host)
            }
            #expect(ok > 150 && refused > 150, "ok \(ok), refused \(refused)")
            #expect(host.segments.count > 0, "the draws map something")

            // After destroy every entry point refuses.
            let kept = host.segments.first
            try host.destroy()
            try host.destroy()
            #expect(host.isDestroyed && host.segments.isEmpty)
            let gone = HostSegmentError.host(.destroyed(what: "the host address space"))
            #expect(throws: gone) { try host.mapAnonymous(size: page) }
            #expect(throws: gone) { try host.mapHole(size: page, name: "x") }
            #expect(throws: gone) { try host.unmap(address: host.reservation.base, size: page) }
            #expect(throws: gone) { try host.setProtection(address: host.reservation.base, size: page, protection: .read) }
            #expect(throws: gone) { try host.fault(address: host.reservation.base, size: page) }
            if let kept { #expect(host.residentPages(kept) == 0) }
        }
    }

    @Test func constructorsRefuseBadArguments() throws {
        try Kit.gated {
            #expect(throws: HostSegmentError.invalidArgument(name: "faultThreads", value: 0, reason: "must be 1 to 64")) {
                _ = try HostAddressSpace(windowSize: 2 << 20, faultThreads: 0)
            }
            #expect(throws: HostSegmentError.invalidArgument(name: "faultThreads", value: 65, reason: "must be 1 to 64")) {
                _ = try HostAddressSpace(windowSize: 2 << 20, faultThreads: 65)
            }
            #expect(throws: HostSegmentError.host(.invalidWindowSize(4096))) { _ = try HostAddressSpace(windowSize: 4096) }
            let host = try HostAddressSpace(windowSize: 4 << 20)
            defer { try? host.destroy() }
            let (file, _) = try Kit.file(Kit.patternBytes(count: Int(4 * page), seed: 9))
            #expect(throws: HostSegmentError.invalidArgument(name: "readAhead", value: 100,
                                                            reason: "must be a multiple of 4096 from 4096 to 1 GiB")) {
                try host.mapLazyFill(file, size: page, readAhead: 100)
            }
            #expect(throws: HostSegmentError.host(.zeroLength(address: 0))) { try host.mapAnonymous(size: 0) }
            #expect(throws: HostSegmentError.host(.notAligned(what: "size", value: 100, alignment: page))) {
                try host.mapAnonymous(size: 100)
            }
            let a = try host.mapAnonymous(size: 4 * page)
            #expect(throws: HostSegmentError.self) { try host.mapAnonymous(size: page, at: a.base + page) }
            #expect(throws: HostSegmentError.host(.outsideWindow(address: host.reservation.base, length: 8 << 20,
                                                                windowBase: host.reservation.base,
                                                                windowSize: 4 << 20))) {
                try host.mapAnonymous(size: 8 << 20)
            }
            #expect(host.segments.count == 1)
        }
    }
}
