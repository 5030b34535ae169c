import Testing
import HostTestSupport
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import AddressSpace
import HostMemory
import VmemWorkloads
@testable import HostSegments

private typealias Kit = HostSegTestKit
private let page = HostSegTestKit.page

/// Faults from many threads at once, and unmaps racing faults in flight.
/// Both are bounded by a time limit of their own: a hang is reported as a
/// failure, after which the address space is destroyed (closing the
/// userfaultfd wakes every thread still asleep in a fault). Run under the
/// thread sanitizer in CI (`--filter HostConcurrencyTests`). VMKIT_SOAK=1
/// runs the unmap race for 30 s instead of 0.7 s.
@Suite("HostConcurrencyTests: faults from many threads, unmaps racing faults", .userfaultfdOrRoot)
struct HostConcurrencyTests {
    /// Waits until `done` reaches `count` or `seconds` pass; false on timeout.
    static func wait(_ done: borrowing Atomic<Int>, for count: Int, seconds: Double) -> Bool {
        let deadline = Double(HSClock.now()) + seconds * 1e9
        while done.load(ordering: .acquiring) < count {
            if Double(HSClock.now()) > deadline { return false }
            usleep(1000)
        }
        return true
    }

    @Test func eightThreadsFaultOneLazyRangeAndEachPageIsFilledOnce() throws {
        try Kit.gated {
            let size: UInt64 = 64 << 20
            let pages = Int(size / page)
            let seed: UInt64 = 0xC0FF_EE00
            let object = try Kit.wordMemfd(size: size, seed: seed)
            let host = try HostAddressSpace(windowSize: 256 << 20, faultThreads: 2)
            defer { try? host.destroy() }
            let seg = try host.mapLazyFill(object, size: size)
            let d = try #require(seg.driver as? HostLazyFill)
            let base = seg.base
            let threads = 8
            let ready = Atomic<Int>(0)
            let finished = Atomic<Int>(0)
            let wrong = Atomic<Int>(0)
            var handles: [pthread_t] = []
            for t in 0..<threads {
                handles.append(Kit.thread {
                    // Two threads sweep up, two down, four hop with different odd strides:
                    // every page is met by several threads, some at the same moment.
                    let stride = [1, 1, pages - 1, pages - 1, 3, 5, 7, 4093][t]
                    let start = t < 4 ? (t % 2) * 17 : t * 977
                    var rng = SplitMix64(seed: UInt64(t) + 1)
                    ready.add(1, ordering: .acquiringAndReleasing)
                    while ready.load(ordering: .acquiring) < threads {}
                    for k in 0..<pages {
                        let i = (start + k * stride) % pages
                        let offset = UInt64(i) * page + (rng.below(512) << 3)
                        let p = UnsafePointer<UInt64>(bitPattern: UInt(base + offset))!
                        if p.pointee != Kit.word(offset, seed: seed) { wrong.add(1, ordering: .relaxed) }
                    }
                    finished.add(1, ordering: .releasing)
                })
            }
            let inTime = Self.wait(finished, for: threads, seconds: 60)
            #expect(inTime, "eight threads faulting 64 MiB did not finish in 60 s")
            if !inTime { try host.destroy() }
            for h in handles { pthread_join(h, nil) }
            guard inTime else { return }
            #expect(wrong.load(ordering: .relaxed) == 0)
            let s = d.statistics
            #expect(s.bytes == size, "every byte copied once: \(s)")
            #expect(d.filledPages(seg) == pages)
            #expect(s.refused == 0)
            #expect(s.copies >= UInt64(pages) / 16, "a copy is at most one 64 KiB read-ahead run")
            #expect(s.faults >= s.copies)
            #expect(host.residentPages(seg) == UInt64(pages))
            let view = try ObjectView(object, offset: 0, length: size)
            #expect(Kit.equal(base, view.base, Int(size)), "the whole range against the object")
        }
    }

    @Test func unmapsRacingInFlightFaultsNeitherHangNorCrash() throws {
        try Kit.gated {
            try GuardReporter.install()
            let host = try HostAddressSpace(windowSize: 32 << 20, faultThreads: 2)
            defer { try? host.destroy() }
            let regionPages: UInt64 = 512
            let region = host.reservation.base + (2 << 20)
            let object = try Kit.wordMemfd(size: 64 * page, seed: 7)
            let device = try MemoryObject.memfd(name: "vmk-race-dev", size: 64 * page)
            let stop = Atomic<Bool>(false)
            let finished = Atomic<Int>(0)
            let filled = Atomic<Int>(0)
            let efault = Atomic<Int>(0)
            let other = Atomic<Int>(0)
            let touchers = 4
            var handles: [pthread_t] = []
            for t in 0..<touchers {
                handles.append(Kit.thread {
                    // This thread only makes the kernel touch memory that the test
                    // remaps under it on purpose; the sanitizer need not watch it.
                    Kit.tsanIgnoringAccesses {
                        var rng = SplitMix64(seed: 1000 + UInt64(t))
                        var pipeFDs: [Int32] = [0, 0]
                        _ = pipe(&pipeFDs)
                        let zero = open("/dev/zero", O_RDONLY | O_CLOEXEC)
                        var sink = [UInt8](repeating: 0, count: 256)
                        while !stop.load(ordering: .relaxed) {
                            let address = region + rng.below(regionPages) * page + (rng.below(16) << 8)
                            let p = UnsafeMutableRawPointer(bitPattern: UInt(address))!
                            // A write fault (read into it) or a read fault (write from it).
                            let intoPipe = rng.below(2) == 0
                            let n = intoPipe ? write(pipeFDs[1], p, 64) : read(zero, p, 64)
                            if n == 64 {
                                filled.add(1, ordering: .relaxed)
                                if intoPipe { _ = read(pipeFDs[0], &sink, 256) }
                            } else if n < 0 && errno == EFAULT {
                                efault.add(1, ordering: .relaxed)
                            } else {
                                other.add(1, ordering: .relaxed)
                            }
                        }
                        close(zero)
                        close(pipeFDs[0])
                        close(pipeFDs[1])
                    }
                    finished.add(1, ordering: .releasing)
                })
            }
            // This thread maps and unmaps under them for a while.
            var rng = SplitMix64(seed: 4242)
            var maps = 0, unmaps = 0, refusals = 0
            let start = HSClock.now()
            let duration: UInt64 = Kit.soak ? 30_000_000_000 : 700_000_000
            while HSClock.now() - start < duration || maps < 200 {
                let at = region + rng.below(regionPages - 32) * page
                let pages = 1 + rng.below(32)
                do {
                    switch rng.below(10) {
                    case 0, 1: try host.mapAnonymous(size: pages * page, at: at)
                    case 2, 3: try host.mapLazyFill(object, offset: rng.below(64 - pages + 1) * page, size: pages * page,
                                                     at: at, readAhead: (1 + rng.below(8)) * page)
                    case 4: try host.mapDevice(device, offset: rng.below(64 - pages + 1) * page, size: pages * page, at: at)
                    case 5: try host.mapStack(size: pages * page, at: at, name: "race")
                    case 6: try host.mapHole(size: pages * page, at: at, name: "race")
                    case 7: try host.setProtection(address: at, size: pages * page,
                                                   protection: rng.below(2) == 0 ? .read : .readWrite)
                    default:
                        try host.unmap(address: at, size: pages * page)
                        unmaps += 1
                        continue
                    }
                    maps += 1
                } catch {
                    refusals += 1
                }
            }
            stop.store(true, ordering: .relaxed)
            let inTime = Self.wait(finished, for: touchers, seconds: 20)
            #expect(inTime, "touching threads still blocked 20 s after the churn stopped")
            if !inTime { try host.destroy() }
            for h in handles { pthread_join(h, nil) }
            guard inTime else { return }
            #expect(filled.load(ordering: .relaxed) > 0, "some touches met mapped memory")
            #expect(efault.load(ordering: .relaxed) > 0, "some touches met unmapped or read-only memory")
            #expect(other.load(ordering: .relaxed) == 0)
            #expect(maps > 0 && unmaps > 0 && refusals > 0)
            try host.space.verify()
            // Still usable: map over the whole region and read it.
            try host.unmap(address: region, size: regionPages * page)
            #expect(host.segments.isEmpty)
            let seg = try host.mapLazyFill(object, size: 64 * page, at: region)
            #expect(UnsafePointer<UInt64>(bitPattern: UInt(seg.base + 8 * page))!.pointee == Kit.word(8 * page, seed: 7))
        }
    }
}

/// A monotonic clock in nanoseconds.
enum HSClock {
    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
