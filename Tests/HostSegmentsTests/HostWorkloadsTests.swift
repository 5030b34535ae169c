import Foundation
import Testing
import HostTestSupport
import HostWorkloads
import CHostMemory
import CVmemSupport

/// The workloads of `vmkit bench as`, at tiny sizes: each times real work
/// and returns positive, finite figures; ratios are ours over C; bad
/// arguments are typed errors.
@Suite("Host workloads (vmkit bench as)", .userfaultfdOrRoot)
struct HostWorkloadsTests {
    static func positive(_ s: TimingSamples, _ repeats: Int, _ what: String) {
        #expect(s.count == repeats, "\(what): \(s.count) samples")
        #expect(s.nsPerOp.allSatisfy { $0.isFinite && $0 > 0 }, "\(what): \(s.nsPerOp)")
        #expect(s.median.isFinite && s.median > 0, "\(what)")
        #expect(s.minimum <= s.median && s.median <= s.maximum, "\(what)")
    }

    @Test("zero-fill faults: ours, the C handler and the kernel, each positive; the ratio is ours / C")
    func zeroFill() throws {
        let w = try ZeroFillFaultWorkload(pages: 16)
        let r = try w.run(repeats: 3)
        Self.positive(r.comparison.ours, 3, "ours")
        Self.positive(r.comparison.baseline, 3, "C")
        Self.positive(r.kernel, 3, "kernel")
        #expect(r.comparison.ratio == r.comparison.ours.median / r.comparison.baseline.median)
        #expect(w.host.segments.isEmpty, "every repeat unmapped its segment")
    }

    @Test("file-copy faults: one page copied per fault, checked against the file")
    func copyFile() throws {
        let w = try FileCopyFaultWorkload(pages: 16)
        let c = try w.run(repeats: 2, warmup: 0)
        Self.positive(c.ours, 2, "ours")
        Self.positive(c.baseline, 2, "C")
        #expect(c.ratio.isFinite && c.ratio > 0)
        // One repeat by hand: the driver copied each page once.
        let seg = try w.prepare()
        #expect(w.touch(seg) > 0)
        try w.finish(seg)
        #expect(w.host.segments.isEmpty)
    }

    @Test("lazy fill: ns per page and GB/s, the sum of the bytes read checked")
    func lazyFill() throws {
        let w = try LazyFillWorkload(size: 256 << 10, readAhead: 64 << 10)
        #expect(w.pages == 64)
        let c = try w.run(repeats: 2)
        Self.positive(c.ours, 2, "ours")
        Self.positive(c.baseline, 2, "C")
        let gb = LazyFillWorkload.gigabytesPerSecond(nsPerPage: c.ours.median)
        #expect(gb.isFinite && gb > 0)
        #expect(LazyFillWorkload.gigabytesPerSecond(nsPerPage: 4096) == 1)
    }

    @Test("map and unmap pairs leave no segment; segat finds every segment and leaves the hint alone")
    func mapUnmapAndSegat() throws {
        let m = try MapUnmapWorkload(pairs: 5)
        let c = try m.run(repeats: 2)
        Self.positive(c.ours, 2, "map-unmap")
        Self.positive(c.baseline, 2, "map-unmap C")
        #expect(m.host.segments.isEmpty)

        let s = try SegatWorkload(segments: 50, lookups: 500)
        #expect(s.host.segments.count == 50)
        let r = try s.run(repeats: 2)
        Self.positive(r.segat, 2, "segat")
        Self.positive(r.segatLockHeld, 2, "segat, lock held")
        Self.positive(r.segatBorrowed, 2, "segat, borrowed")
        #expect(s.lookUp(100).found == 100)
        #expect(s.lookUpBorrowed(100).found == 100)
    }

    @Test("the suite at small sizes: ratio only on figures with a C baseline, GB/s only on the lazy fill; JSON lines")
    func suite() throws {
        let suite = try HostBenchmarkSuite(options: .small)
        var heard = 0
        let figures = try suite.run { _, done, total in
            heard += 1
            #expect(done >= 1 && done <= total)
        }
        #expect(heard > 0)
        let names = figures.map(\.name)
        #expect(names == ["fault.zero-fill", "fault.zero-fill.c", "fault.kernel-anonymous",
                          "fault.copy-file", "fault.copy-file.c", "map-unmap", "map-unmap.c",
                          "segat", "segat.lock-held", "segat.borrowed", "lazy-fill", "lazy-fill.c"])
        let byName = Dictionary(uniqueKeysWithValues: figures.map { ($0.name, $0) })
        for f in figures {
            #expect(f.nsPerOp.isFinite && f.nsPerOp > 0, "\(f.name)")
            #expect(f.repeats == HostBenchmarkSuite.Options.small.repeats)
            let hasBaseline = byName[f.name + ".c"] != nil
            #expect((f.ratio != nil) == hasBaseline, "\(f.name): ratio only where a C baseline ran")
            if let ratio = f.ratio, let c = byName[f.name + ".c"] {
                #expect(abs(ratio - f.nsPerOp / c.nsPerOp) < 1e-9 * max(1, ratio), "\(f.name): ratio is ours / C")
            }
            #expect((f.gbPerSecond != nil) == f.name.hasPrefix("lazy-fill"), "\(f.name)")

            let object = try JSONSerialization.jsonObject(with: Data(f.jsonLine.utf8)) as? [String: Any]
            let json = try #require(object, "\(f.jsonLine)")
            #expect(json["name"] as? String == f.name)
            #expect((json["nsPerOp"] as? Double).map { $0 > 0 } == true, "\(f.jsonLine)")
            #expect((json["ratio"] != nil) == hasBaseline, "\(f.jsonLine)")
            #expect((json["gbPerSecond"] != nil) == f.name.hasPrefix("lazy-fill"), "\(f.jsonLine)")
            #expect(!f.jsonLine.contains("\n"))
        }
    }

    @Test("rounds run the arms in order, then reversed, and keep the warm-up out of the samples")
    func roundOrder() throws {
        final class Log: @unchecked Sendable { var calls: [String] = [] }
        let log = Log()
        func arm(_ name: String, _ ns: UInt64) -> InterleavedRounds.Arm {
            .init(name, opsPerRepeat: 2) { () throws(HostWorkloadError) -> UInt64 in
                log.calls.append(name)
                return ns
            }
        }
        let rounds = try InterleavedRounds([arm("A", 10), arm("B", 20), arm("C", 40)], repeats: 3, warmup: 1)
        var heard: [Int] = []
        let s = try rounds.run { done, total in
            heard.append(done)
            #expect(total == 4)
        }
        #expect(log.calls == ["A", "B", "C", "C", "B", "A", "A", "B", "C", "C", "B", "A"])
        #expect(heard == [1, 2, 3, 4])
        #expect(s.map(\.count) == [3, 3, 3])
        #expect(s.map(\.median) == [5, 10, 20])
    }

    @Test("the ratio is the medians' quotient, ours over C")
    func ratio() {
        var ours = TimingSamples(opsPerRepeat: 10)
        var c = TimingSamples(opsPerRepeat: 10)
        for ns: UInt64 in [3000, 2000, 4000] { ours.record(nanoseconds: ns) }
        for ns: UInt64 in [1000, 1000, 5000, 1000] { c.record(nanoseconds: ns) }
        #expect(ours.median == 300)
        #expect(c.median == 100)
        #expect(Comparison(ours: ours, baseline: c).ratio == 3)
        #expect(Comparison(ours: c, baseline: ours).ratio == 100.0 / 300.0)
        #expect(Comparison.ratio(5, 0) == 0)
        #expect(TimingSamples(opsPerRepeat: 1).median == 0)
    }

    @Test("bad arguments are typed errors naming the value, not traps")
    func badArguments() {
        func refused(_ name: String, _ body: () throws -> Void) {
            do {
                try body()
                Issue.record("\(name): accepted")
            } catch let error as HostWorkloadError {
                guard case .invalidArgument = error else {
                    Issue.record("\(name): \(error)")
                    return
                }
            } catch {
                Issue.record("\(name): an untyped \(error)")
            }
        }
        refused("0 pages") { _ = try ZeroFillFaultWorkload(pages: 0) }
        refused("-3 pages") { _ = try ZeroFillFaultWorkload(pages: -3) }
        refused("too many pages") { _ = try ZeroFillFaultWorkload(pages: ZeroFillFaultWorkload.maximumPages + 1) }
        refused("0 pages to copy") { _ = try FileCopyFaultWorkload(pages: 0) }
        refused("lazy size 0") { _ = try LazyFillWorkload(size: 0) }
        refused("lazy size 1000") { _ = try LazyFillWorkload(size: 1000) }
        refused("read-ahead 0") { _ = try LazyFillWorkload(size: 1 << 20, readAhead: 0) }
        refused("read-ahead 100") { _ = try LazyFillWorkload(size: 1 << 20, readAhead: 100) }
        refused("0 pairs") { _ = try MapUnmapWorkload(pairs: 0) }
        refused("segment size 0") { _ = try MapUnmapWorkload(pairs: 1, size: 0) }
        refused("1 segment") { _ = try SegatWorkload(segments: 1) }
        refused("0 lookups") { _ = try SegatWorkload(segments: 10, lookups: 0) }
        refused("file size 0") { _ = try PageCacheFile(size: 0) }
        refused("file size 4097") { _ = try PageCacheFile(size: 4097) }
        refused("0 repeats") {
            _ = try InterleavedRounds([.init("x", opsPerRepeat: 1) { () throws(HostWorkloadError) in 1 }], repeats: 0)
        }
        refused("0 operations per repeat") {
            _ = try InterleavedRounds([.init("x", opsPerRepeat: 0) { () throws(HostWorkloadError) in 1 }], repeats: 1)
        }
        refused("no arms") { _ = try InterleavedRounds([], repeats: 1) }
        refused("run with 0 repeats") { _ = try MapUnmapWorkload(pairs: 1).run(repeats: 0) }
        refused("cpu -1") { try CPUAffinity.pinCallingThread(to: -1) }
        refused("cpu 1024") { try CPUAffinity.pinCallingThread(to: 1024) }
        var o = HostBenchmarkSuite.Options.small
        o.pages = 0
        refused("suite with 0 pages") { _ = try HostBenchmarkSuite(options: o) }
        o = .small
        o.lazySize = 12345
        refused("suite with a lazy size of 12345") { _ = try HostBenchmarkSuite(options: o) }
        o = .small
        o.repeats = 0
        refused("suite with 0 repeats") { try o.validate() }
    }

    @Test("the new C baselines refuse bad arguments with -EINVAL")
    func baselineArguments() {
        var sum: UInt64 = 0
        let page = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { page.deallocate() }
        #expect(vmk_baseline_uffd_fill(0, page, 1, 0, &sum) == -Int64(EINVAL))
        #expect(vmk_baseline_uffd_fill(1, page, 0, 0, &sum) == -Int64(EINVAL))
        #expect(vmk_baseline_uffd_fill(1, nil, 1, 0, &sum) == -Int64(EINVAL))
        #expect(vmk_baseline_map_unmap(0, 4096) == -Int64(EINVAL))
        #expect(vmk_baseline_map_unmap(1, 100) == -Int64(EINVAL))
        // And they time real work when the arguments are good.
        page.initializeMemory(as: UInt8.self, repeating: 3, count: 4096)
        #expect(vmk_baseline_uffd_fill(1, page, 1, 0, &sum) > 0)
        #expect(sum == 3)
        #expect(vmk_baseline_map_unmap(2, 2 << 20) > 0)
    }

    @Test("pinning: a thread bound to CPU 0 runs there, and so does a thread it creates")
    func pinning() throws {
        final class Box: @unchecked Sendable {
            var result: Result<[Int32], HostWorkloadError>?
        }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        let t = Thread {
            do throws(HostWorkloadError) {
                try CPUAffinity.pinCallingThread(to: 0)
                var cpus: [Int32] = []
                for _ in 0..<100 { sched_yield(); cpus.append(cvmem_current_cpu()) }
                let inner = DispatchSemaphore(value: 0)
                let child = Box()
                let c = Thread {
                    var seen: [Int32] = []
                    for _ in 0..<100 { sched_yield(); seen.append(cvmem_current_cpu()) }
                    child.result = .success(seen)
                    inner.signal()
                }
                c.start()
                inner.wait()
                box.result = .success(cpus + ((try? child.result?.get()) ?? [-2]))
            } catch {
                box.result = .failure(error)
            }
            done.signal()
        }
        t.start()
        done.wait()
        let cpus = try #require(try box.result?.get())
        #expect(cpus.count == 200 && cpus.allSatisfy { $0 == 0 }, "\(Set(cpus))")
    }

    @Test("JSON numbers: fixed decimals, no exponent, null when not finite")
    func numbers() {
        var s = TimingSamples(opsPerRepeat: 3)
        s.record(nanoseconds: 10)
        let f = HostFigure(name: "x\"y", operation: "op", samples: s, ratio: 1.23456, baseline: "x.c")
        #expect(f.jsonLine.hasPrefix("{\"name\": \"x\\\"y\", \"nsPerOp\": 3.33, \"ratio\": 1.235, \"baseline\": \"x.c\""))
        var g = f
        g.ratio = .infinity
        #expect(g.jsonLine.contains("\"ratio\": null"))
        #expect(HostFigure(name: "n", operation: "op", samples: s).jsonLine.contains("\"ratio\"") == false)
    }
}
