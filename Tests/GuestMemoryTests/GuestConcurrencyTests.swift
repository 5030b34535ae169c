import Testing
import Foundation
import Synchronization
import GuestMemory

/// Concurrency: atomics are never torn, and a get-and-reset harvest racing
/// with writers reports every page exactly once. CI runs this suite under
/// the thread sanitizer.
@Suite("Guest concurrency: untorn atomics, racing harvests")
struct GuestConcurrencyTests {
    final class Flag: Sendable {
        let done = Atomic<Bool>(false)
        let torn = Atomic<Int>(0)
        let reads = Atomic<Int>(0)
    }

    /// Runs each body on its own thread and waits for all.
    static func onThreads(_ bodies: [@Sendable () -> Void]) {
        let group = DispatchGroup()
        for body in bodies {
            group.enter()
            let t = Thread { body(); group.leave() }
            t.start()
        }
        group.wait()
    }

    static func tornCheck<T: FixedWidthInteger & UnsignedInteger & Sendable>(_ t: T.Type, a: T, b: T, gpa: UInt64) throws {
        let g = try GuestMemory(limit: 1 << 20)
        defer { try? g.destroy() }
        try g.allocateSegment(id: 0, length: 1 << 20)
        try g.map(gpa: 0, segment: 0, offset: 0, length: 1 << 20, protection: .readWrite)
        try g.store(a, at: gpa)
        let flag = Flag()
        let stores = 20_000
        let writer: @Sendable () -> Void = {
            for i in 0..<stores { try! g.store(i & 1 == 0 ? a : b, at: gpa) }
        }
        let reader: @Sendable () -> Void = {
            var n = 0
            while !flag.done.load(ordering: .acquiring) || n < 1000 {
                let v = try! g.load(T.self, at: gpa)
                if v != a && v != b { flag.torn.add(1, ordering: .relaxed) }
                n += 1
            }
            flag.reads.add(n, ordering: .relaxed)
        }
        let writers: @Sendable () -> Void = {
            onThreads([writer, writer])
            flag.done.store(true, ordering: .releasing)
        }
        onThreads([writers, reader, reader])
        #expect(flag.torn.load(ordering: .relaxed) == 0, "a load saw a mix of the two patterns")
        #expect(flag.reads.load(ordering: .relaxed) >= 2000)
    }

    @Test func eightByteAtomicsAreNeverTorn() throws {
        try GuestKit.gated {
            // Across a cache line would be the only place a byte copy tears less rarely; aligned is the rule.
            try Self.tornCheck(UInt64.self, a: 0x0123_4567_89AB_CDEF, b: 0xFEDC_BA98_7654_3210, gpa: 4096 + 56)
        }
    }

    @Test func fourAndTwoByteAtomicsAreNeverTorn() throws {
        try GuestKit.gated {
            try Self.tornCheck(UInt32.self, a: 0x0F0F_F0F0, b: 0xF0F0_0F0F, gpa: 8192 + 60)
            try Self.tornCheck(UInt16.self, a: 0x00FF, b: 0xFF00, gpa: 8192 + 62)
        }
    }

    @Test func compareExchangeCountsEveryIncrement() throws {
        try GuestKit.gated {
            let g = try GuestMemory(limit: 1 << 20)
            defer { try? g.destroy() }
            try g.allocateSegment(id: 0, length: 1 << 20)
            try g.map(gpa: 0, segment: 0, offset: 0, length: 1 << 20, protection: .readWrite)
            let adder: @Sendable () -> Void = {
                for _ in 0..<5000 {
                    var cur = try! g.load(UInt64.self, at: 64)
                    while true {
                        let r = try! g.compareExchange(at: 64, expected: cur, desired: cur + 1)
                        if r.exchanged { break }
                        cur = r.original
                    }
                }
            }
            Self.onThreads([adder, adder, adder, adder])
            #expect(try g.load(UInt64.self, at: 64) == 20_000)
        }
    }

    /// Harvests racing VMM writes lose no page. A write that races the
    /// buffer swap is marked in both buffers (the writer cannot tell whether
    /// the harvest read its word before or after its mark, and a consumer may
    /// have copied the page before the bytes landed), so it may be reported
    /// by two consecutive harvests — never more, and never by none.
    @Test func racingHarvestLosesNoPage() throws {
        try GuestKit.gated {
            let pages: UInt64 = 2048
            let g = try GuestMemory(limit: pages * 4096)
            defer { try? g.destroy() }
            try g.allocateSegment(id: 0, length: pages * 4096)
            try g.map(gpa: 0, segment: 0, offset: 0, length: pages * 4096, protection: .readWrite)
            let flag = Flag()
            let seen = HarvestLog()
            let writer: @Sendable (UInt64) -> Void = { start in
                var p = start
                while p < pages { try! g.store(UInt8(1), at: p * 4096 + 7); p += 2 }
            }
            let writers: @Sendable () -> Void = {
                GuestConcurrencyTests.onThreads([{ writer(0) }, { writer(1) }])
                flag.done.store(true, ordering: .releasing)
            }
            let harvester: @Sendable () -> Void = {
                while !flag.done.load(ordering: .acquiring) { seen.add(try! g.harvestDirty(0, pages * 4096)) }
                seen.add(try! g.harvestDirty(0, pages * 4096))
            }
            Self.onThreads([writers, harvester])
            let all = seen.pages
            #expect(Set(all) == Set(0..<pages), "every page written is reported")
            var times: [UInt64: Int] = [:]
            for p in all { times[p, default: 0] += 1 }
            #expect(times.values.allSatisfy { $0 <= 2 }, "a page written once is reported at most twice")
            // Quiet afterwards: the last harvest left nothing behind.
            #expect(try g.harvestDirty(0, pages * 4096).isEmpty)
        }
    }

    final class HarvestLog: @unchecked Sendable {
        private let lock = NSLock()
        private var _pages: [UInt64] = []
        func add(_ p: [UInt64]) { lock.lock(); _pages += p; lock.unlock() }
        var pages: [UInt64] { lock.lock(); defer { lock.unlock() }; return _pages }
    }
}
