#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
import Synchronization
import PageTables

/// Several vCPU stand-ins run `concurrentAccess` on overlapping pages (the
/// leaf install, A/D set by the processor or by the emulation: each a
/// compare-and-swap) while a harvester takes the table exclusively and
/// clears D with `scanDirty`: no page written is ever missing from the
/// harvests and the final D set, every page touched ends with exactly one
/// leaf and A set, and the leaf count is the number of pages touched (no
/// double install). Runs under the thread sanitizer in CI (the name).
@Suite("Nested table: concurrent faults, A/D and harvests (PageTablesNestedConcurrencyTests)")
struct PageTablesNestedConcurrencyTests {
    /// A pthread readers-writer lock (the sanitizer understands it): the
    /// owner's discipline — accesses shared, harvests exclusive.
    final class RW: @unchecked Sendable {
        let l = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
        init() { pthread_rwlock_init(l, nil) }
        deinit { pthread_rwlock_destroy(l); l.deallocate() }
        func shared<R>(_ body: () -> R) -> R { pthread_rwlock_rdlock(l); defer { pthread_rwlock_unlock(l) }; return body() }
        func exclusive<R>(_ body: () throws -> R) rethrows -> R {
            pthread_rwlock_wrlock(l); defer { pthread_rwlock_unlock(l) }; return try body()
        }
    }

    final class Box<F: NestedPTEFormat>: @unchecked Sendable {
        let table: NestedPageTable<F, HostTableAllocator>
        let rw = RW()
        let done = Atomic<Int>(0)
        var harvested: Set<UInt64> = []   // the harvester's only
        init(_ t: NestedPageTable<F, HostTableAllocator>) { table = t }
    }

    static func onThreads(_ bodies: [@Sendable () -> Void]) {
        final class Job { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
        var threads: [pthread_t] = []
        for b in bodies {
            var t = pthread_t()
            let job = Unmanaged.passRetained(Job(b)).toOpaque()
            let rc = pthread_create(&t, nil, { arg in
                let job = Unmanaged<Job>.fromOpaque(arg!).takeRetainedValue()
                job.body()
                return nil
            }, job)
            precondition(rc == 0)
            threads.append(t)
        }
        for t in threads { pthread_join(t, nil) }
    }

    static func run<F: NestedPTEFormat>(_ format: F.Type, vcpus: Int, pages: UInt64, steps: Int) throws {
        let frames = try HostTableAllocator()
        let table = try NestedPageTable<F, HostTableAllocator>(frames: frames, superpages: false)
        let span = pages * 0x1000
        try table.map(0, length: span, to: 0x4000_0000, access: .readWrite, populate: false)
        // The leaf tables exist (one page of each faulted in), so the
        // vCPUs install the other leaves concurrently.
        for r in stride(from: UInt64(0), to: span, by: 1 << 21) { _ = try table.guestAccess(r, .read) }
        let box = Box(table)
        var bodies: [@Sendable () -> Void] = []
        for cpu in 0..<vcpus {
            bodies.append {
                var s = UInt64(cpu + 1) &* 0x9E37_79B9_7F4A_7C15
                for _ in 0..<steps {
                    s = s &* 6364136223846793005 &+ 1442695040888963407
                    // Overlapping: every vCPU draws from the same small set.
                    let page = ((s >> 33) % pages) * 0x1000
                    let access: MemoryAccess = (s >> 20) & 1 == 0 ? .write : .read
                    let outcome = box.rw.shared { box.table.concurrentAccess(page, access) }
                    if outcome == nil {
                        _ = box.rw.exclusive { try! box.table.guestAccess(page, access) }
                    } else {
                        precondition(outcome?.hostAddress == 0x4000_0000 + page, "wrong frame for 0x\(String(page, radix: 16))")
                    }
                }
                box.done.add(1, ordering: .releasing)
            }
        }
        bodies.append {
            var rounds = 0
            while box.done.load(ordering: .acquiring) < vcpus || rounds < 20 {
                box.rw.exclusive {
                    try! box.table.scanDirty(0, length: span, clear: true) { box.harvested.insert($0) }
                }
                rounds += 1
            }
        }
        onThreads(bodies)
        // The pages written, replayed from the seeds.
        var written = Set<UInt64>(), touched = Set<UInt64>()
        for cpu in 0..<vcpus {
            var s = UInt64(cpu + 1) &* 0x9E37_79B9_7F4A_7C15
            for _ in 0..<steps {
                s = s &* 6364136223846793005 &+ 1442695040888963407
                let page = ((s >> 33) % pages) * 0x1000
                touched.insert(page)
                if (s >> 20) & 1 == 0 { written.insert(page) }
            }
        }
        var final = Set<UInt64>()
        try table.scanDirty(0, length: span, clear: false) { final.insert($0) }
        let reported = box.harvested.union(final)
        #expect(written.isSubset(of: reported), "lost D: \(written.subtracting(reported).sorted().prefix(8))")
        #expect(reported.isSubset(of: written), "D on pages never written: \(reported.subtracting(written).sorted().prefix(8))")
        for page in touched {
            let ad = try table.accessedDirty(page)
            #expect(ad?.accessed == true, "A lost at 0x\(String(page, radix: 16))")
        }
        // One leaf per page touched (plus the first page of each leaf table).
        let firsts = Set(stride(from: UInt64(0), to: span, by: 1 << 21))
        _ = try table.lookup(0)   // an exclusive call: folds the concurrent installs in
        #expect(table.table.leafCount(.size4K) == UInt64(touched.union(firsts).count))
    }

    @Test func hardwareAccessedDirty() throws {
        try Self.run(EPTFormat.self, vcpus: 3, pages: 1024, steps: 20_000)
        try Self.run(RVIFormat.self, vcpus: 3, pages: 1024, steps: 20_000)
    }

    @Test func emulatedAccessedDirty() throws {
        try Self.run(EPTEmulatedADFormat.self, vcpus: 3, pages: 1024, steps: 20_000)
    }

    /// Two vCPUs fault the same empty page at once, many times: one leaf
    /// each time, and the write's D always survives the read's install.
    @Test func racingFaultsOnOnePage() throws {
        let table = try NestedPageTable<EPTEmulatedADFormat, HostTableAllocator>(frames: try HostTableAllocator(), superpages: false)
        let pages: UInt64 = 256
        try table.map(0, length: pages * 0x1000, to: 0x4000_0000, access: .readWrite, populate: false)
        _ = try table.guestAccess(pages * 0x1000 - 0x1000, .read)   // the leaf table
        let box = Box(table)
        let go = Atomic<Int>(0)
        Self.onThreads((0..<2).map { cpu in
            {
                for p in 0..<(pages - 1) {
                    // Meet at each page.
                    go.add(1, ordering: .acquiringAndReleasing)
                    while go.load(ordering: .acquiring) < Int(2 * (p + 1)) {}
                    let outcome = box.rw.shared { box.table.concurrentAccess(p * 0x1000, cpu == 0 ? .write : .read) }
                    precondition(outcome?.hostAddress == 0x4000_0000 + p * 0x1000)
                }
            }
        })
        _ = try table.lookup(0)
        #expect(table.table.leafCount(.size4K) == pages)
        var dirty: [UInt64] = []
        try table.scanDirty(0, length: pages * 0x1000, clear: false) { dirty.append($0) }
        #expect(dirty == (0..<(pages - 1)).map { $0 * 0x1000 })
    }
}
