import Foundation
import Testing
import HostTestSupport
import AddressSpace
import HostMemory
@testable import HostSegments

/// A small host address space with one segment of each kind the report
/// distinguishes: anonymous segvn, a private mapping of a memfd (segvn), a
/// hole, a stack, a memfd (segdev) and a lazy fill from a memfd.
private struct Fixture {
    let host: HostAddressSpace
    let anon: Segment
    let priv: Segment
    let hole: Segment
    let stack: Segment
    let dev: Segment
    let lazy: Segment
    let source: MemoryObject

    init() throws {
        let page = HostReservation.pageSize
        host = try HostAddressSpace(windowSize: 64 << 20)
        source = try MemoryObject.memfd(name: "report-source", size: 32 * page)
        try source.write((0..<Int(32 * page)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }, offset: 0)
        anon = try host.mapAnonymous(size: 16 * page)
        priv = try host.mapFile(source, size: 8 * page, protection: .readWrite, shared: false)
        hole = try host.mapHole(size: 4 * page, name: "report-hole")
        stack = try host.mapStack(size: 4 * page, name: "report-stack")
        dev = try host.mapDevice(try MemoryObject.memfd(name: "report-dev", size: 4 * page), size: 4 * page)
        lazy = try host.mapLazyFill(source, size: 32 * page, readAhead: 4 * page)
    }

    var all: [Segment] { [anon, priv, hole, stack, dev, lazy] }
}

@Suite("Host segment report: rows, totals, text and JSON", .userfaultfdOrRoot)
struct HostSegmentReportTests {
    @Test("one row per segment, with the segment's base, size, driver and backing")
    func rowsMatchSegments() throws {
        let f = try Fixture()
        defer { try? f.host.destroy() }
        let rows = f.host.report()
        let segments = f.host.segments
        #expect(rows.count == segments.count)
        #expect(rows.count == 6)
        for (row, seg) in zip(rows, segments) {
            #expect(row.base == seg.base)
            #expect(row.size == seg.size)
            #expect(row.segmentAddress == seg.address)
            #expect(row.driver == seg.driver.opsName)
            #expect(row.pages == seg.size / HostReservation.pageSize)
        }
        let byBase = Dictionary(uniqueKeysWithValues: rows.map { ($0.base, $0) })
        let expected: [(Segment, String, String, String)] = [
            (f.anon, "segvn_ops", "anon", "userfaultfd"),
            (f.priv, "segvn_ops", "private", "kernel"),
            (f.hole, "seghole_ops", "hole", "none"),
            (f.stack, "segkp_ops", "stack", "userfaultfd"),
            (f.dev, "segdev_ops", "shared", "userfaultfd"),
            (f.lazy, "seglazy_ops", "lazy", "userfaultfd"),
        ]
        for (seg, ops, backing, served) in expected {
            let row = try #require(byBase[seg.base])
            #expect(row.driver == ops)
            #expect(row.backing == backing)
            if f.host.usesUserfaultfd { #expect(row.servedBy == served) }
        }
        #expect(byBase[f.anon.base]?.object == nil)
        #expect(byBase[f.priv.base]?.object == "memfd \"report-source\"")
        #expect(byBase[f.hole.base]?.residentPages == 0)
    }

    @Test("resident pages and fault counts move after touches")
    func residentMovesAfterTouches() throws {
        let f = try Fixture()
        defer { try? f.host.destroy() }
        let page = Int(HostReservation.pageSize)
        func row(_ seg: Segment) throws -> HostSegmentReport {
            try #require(f.host.report().first { $0.base == seg.base })
        }
        let before = try row(f.anon)
        #expect(f.host.usesUserfaultfd, "root with /dev/userfaultfd: \(f.host.userfaultfdUnavailableReason ?? "")")
        #expect(before.residentPages == 0)
        #expect(before.statistics.faults == 0)

        let p = f.host.pointer(f.anon.base).assumingMemoryBound(to: UInt8.self)
        for k in 0..<3 { p[k * page] = UInt8(k + 1) }
        let after = try row(f.anon)
        #expect(after.residentPages >= 3)
        #expect(after.residentPages <= 16)
        #expect(after.statistics.faults == 3)
        #expect(after.statistics.copies == 3)
        #expect(after.statistics.bytes == 3 * UInt64(page))

        // One read of the lazy fill copies a read-ahead run of 4 pages.
        #expect(try row(f.lazy).residentPages == 0)
        let l = f.host.pointer(f.lazy.base).assumingMemoryBound(to: UInt8.self)
        #expect(l[5] == UInt8(truncatingIfNeeded: 5 &* 7 &+ 3))
        let lazy = try row(f.lazy)
        #expect(lazy.residentPages == 4)
        #expect(lazy.statistics.faults == 1)
        #expect(lazy.statistics.bytes == 4 * UInt64(page))

        // The totals follow the rows.
        let totals = f.host.driverTotals()
        #expect(totals.map(\.ops) == ["segvn_ops", "seghole_ops", "segkp_ops", "segdev_ops", "seglazy_ops"])
        let segvn = try #require(totals.first { $0.ops == "segvn_ops" })
        #expect(segvn.segments == 2)
        #expect(segvn.statistics.faults == 3)
        #expect(segvn.size == f.anon.size + f.priv.size)
        let rows = f.host.report()
        #expect(totals.reduce(0) { $0 + $1.residentPages } == rows.reduce(0) { $0 + $1.residentPages })
    }

    @Test("per-driver totals add up rows in order of first appearance")
    func totalsOfRows() {
        func stats(_ faults: UInt64, _ bytes: UInt64) -> HostFaultStatistics {
            var s = HostFaultStatistics()
            s.faults = faults
            s.bytes = bytes
            s.nanoseconds = faults * 1000
            return s
        }
        let rows = [
            HostSegmentReport(segmentAddress: 0x1000, base: 0x10000, size: 0x4000, driver: "segvn_ops", backing: "anon",
                              servedBy: "userfaultfd", object: nil, residentPages: 2, statistics: stats(2, 0x2000)),
            HostSegmentReport(segmentAddress: 0x1060, base: 0x20000, size: 0x1000, driver: "segdev_ops", backing: "shared",
                              servedBy: "userfaultfd", object: "memfd \"x\"", residentPages: 1, statistics: stats(1, 0x1000)),
            HostSegmentReport(segmentAddress: 0x10c0, base: 0x30000, size: 0x2000, driver: "segvn_ops", backing: "private",
                              servedBy: "kernel", object: "file /x", residentPages: 2, statistics: stats(0, 0)),
        ]
        let totals = HostSegmentReport.totals(rows)
        #expect(totals.count == 2)
        #expect(totals[0] == HostDriverTotals(ops: "segvn_ops", segments: 2, size: 0x6000, residentPages: 4,
                                              statistics: stats(2, 0x2000)))
        #expect(totals[1] == HostDriverTotals(ops: "segdev_ops", segments: 1, size: 0x1000, residentPages: 1,
                                              statistics: stats(1, 0x1000)))
        let table = HostSegmentReport.table(rows).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(table.count == 5)  // header, three rows, and the empty string after the last newline
        #expect(table[0].hasPrefix("BASE"))
        #expect(table[1].hasPrefix("0x10000 "))
        #expect(table[1].hasSuffix("2.0"))  // 2000 ns
    }

    @Test("the text starts with the ::seg lines, then the table with its columns")
    func textHasSegLines() throws {
        let f = try Fixture()
        defer { try? f.host.destroy() }
        let text = f.host.renderReport()
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let seg = SegRendering.render(f.host.segments)
        #expect(text.hasPrefix(seg))
        #expect(lines[0] == SegRendering.header())
        #expect(lines[0] == "             SEG             BASE             SIZE             DATA OPS")
        for (i, s) in f.host.segments.enumerated() {
            #expect(lines[1 + i] == SegRendering.row(s))
            #expect(lines[1 + i].hasSuffix(" " + s.driver.opsName))
        }
        let n = f.host.segments.count
        #expect(lines[n + 1] == "")
        let header = lines[n + 2]
        let titles = header.split(separator: " ").map(String.init)
        #expect(titles == ["BASE", "SIZE", "DRIVER", "BACKING", "SERVED", "RESIDENT", "FAULTS", "BYTES", "TIME(us)"])
        for (i, s) in f.host.segments.enumerated() {
            #expect(lines[n + 3 + i].hasPrefix("0x" + String(s.base, radix: 16) + " "))
        }
        #expect(lines[2 * n + 3] == "")
        #expect(lines[2 * n + 4].hasPrefix("DRIVER"))
        #expect(!f.host.renderReport(totals: false).contains("SEGMENTS"))
    }

    @Test("the JSON parses, with hex strings for addresses and one object per segment")
    func jsonParses() throws {
        let f = try Fixture()
        defer { try? f.host.destroy() }
        _ = f.host.pointer(f.anon.base).load(as: UInt8.self)
        let text = f.host.reportJSON()
        #expect(text.contains("\"userfaultfd\": \(f.host.usesUserfaultfd)"))
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        let root = try #require(object as? [String: Any])
        #expect(root["userfaultfd"] as? Bool == f.host.usesUserfaultfd)
        if f.host.usesUserfaultfd { #expect(root["userfaultfdReason"] is NSNull) }
        let window = try #require(root["window"] as? [String: Any])
        #expect(window["base"] as? String == "0x" + String(f.host.reservation.base, radix: 16))
        let segments = try #require(root["segments"] as? [[String: Any]])
        #expect(segments.count == f.host.segments.count)
        for (json, seg) in zip(segments, f.host.segments) {
            let base = try #require(json["base"] as? String)
            let size = try #require(json["size"] as? String)
            #expect(base.hasPrefix("0x") && size.hasPrefix("0x"))
            #expect(UInt64(base.dropFirst(2), radix: 16) == seg.base)
            #expect(UInt64(size.dropFirst(2), radix: 16) == seg.size)
            #expect(json["driver"] as? String == seg.driver.opsName)
            for key in ["residentPages", "faultsServed", "bytes", "nanoseconds", "pages"] {
                #expect(json[key] is NSNumber, "\(key)")
            }
            #expect(json["backing"] is String)
            #expect(json["servedBy"] is String)
        }
        let anon = try #require(segments.first { ($0["base"] as? String) == "0x" + String(f.anon.base, radix: 16) })
        #expect((anon["faultsServed"] as? NSNumber)?.intValue == (f.host.usesUserfaultfd ? 1 : 0))
        let drivers = try #require(root["drivers"] as? [[String: Any]])
        #expect(drivers.compactMap { $0["driver"] as? String }
                == ["segvn_ops", "seghole_ops", "segkp_ops", "segdev_ops", "seglazy_ops"])
    }

    @Test("JSON strings are escaped: quotes, backslashes, control characters; other text passes as UTF-8")
    func jsonEscaping() throws {
        let nasty = "a \"quoted\" \\ path\nnew line\ttab\r\u{08}\u{0C}\u{01}\u{1F}\u{7F} é → 🧵"
        let quoted = HostJSON.quoted(nasty)
        #expect(quoted.hasPrefix("\"") && quoted.hasSuffix("\""))
        #expect(!quoted.contains("\n"))
        #expect(quoted.contains("\\u0001") && quoted.contains("\\u001f") && quoted.contains("\\u007f"))
        let value = HostJSON.object([("s", .string(nasty)), ("n", .number(UInt64.max)), ("i", .signed(-11)),
                                     ("b", .bool(false)), ("z", .null), ("a", .array([])), ("o", .object([]))])
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(value.rendered().utf8)) as? [String: Any])
        #expect(parsed["s"] as? String == nasty)
        #expect(parsed["i"] as? Int == -11)
        #expect(parsed["b"] as? Bool == false)
        #expect(parsed["z"] is NSNull)
        #expect((parsed["a"] as? [Any])?.isEmpty == true)
        #expect((parsed["o"] as? [String: Any])?.isEmpty == true)
        #expect(value.rendered().contains("\"n\": 18446744073709551615"))
    }

    @Test("scalar-only objects render on one line, others over several")
    func jsonLayout() {
        let v = HostJSON.object([("a", .number(1)), ("list", .array([.object([("x", .hex(0x1000)), ("y", .bool(true))])]))])
        #expect(v.rendered() == """
            {
              "a": 1,
              "list": [
                {"x": "0x1000", "y": true}
              ]
            }
            """)
        #expect(HostJSON.array([.number(1), .string("two")]).rendered() == "[1, \"two\"]")
    }
}
