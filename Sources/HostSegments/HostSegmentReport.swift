import AddressSpace
import HostMemory

/// One segment of a host address space as a report shows it: where it is,
/// which driver runs it, what backs it, who serves its faults, how many of
/// its pages are resident now (`mincore`) and what its driver did about
/// faults.
///
/// Built by ``HostAddressSpace/report()``; rendered as a table
/// (``HostSegmentReport/table(_:)``), as JSON (``HostSegmentReport/json``)
/// and summed per driver (``HostAddressSpace/driverTotals()``).
public struct HostSegmentReport: Hashable, Sendable {
    /// The segment record's address (the SEG column of `::seg`).
    public let segmentAddress: UInt64
    /// The segment's first address.
    public let base: UInt64
    /// Its size in bytes.
    public let size: UInt64
    /// The driver's ops vector (`segvn_ops`, `segdev_ops`, `seghole_ops`,
    /// `segkp_ops`, `seglazy_ops`).
    public let driver: String
    /// What backs it: `anon`, `private`, `shared`, `hole`, `stack`, `lazy`.
    public let backing: String
    /// Who serves its faults: `userfaultfd`, `kernel` or `none`.
    public let servedBy: String
    /// The object it maps (`file /tmp/x`, `memfd "y"`), nil for anonymous memory.
    public let object: String?
    /// Pages resident now (`mincore`; for a file, pages in the page cache).
    public let residentPages: UInt64
    /// What the driver did about the segment's faults.
    public let statistics: HostFaultStatistics

    public init(segmentAddress: UInt64, base: UInt64, size: UInt64, driver: String, backing: String,
                servedBy: String, object: String?, residentPages: UInt64, statistics: HostFaultStatistics) {
        self.segmentAddress = segmentAddress
        self.base = base
        self.size = size
        self.driver = driver
        self.backing = backing
        self.servedBy = servedBy
        self.object = object
        self.residentPages = residentPages
        self.statistics = statistics
    }

    /// The segment's size in host pages.
    public var pages: UInt64 { size / HostReservation.pageSize }
}

/// One driver's figures summed over its segments.
public struct HostDriverTotals: Hashable, Sendable {
    /// The driver's ops vector.
    public let ops: String
    /// How many segments it runs.
    public let segments: Int
    /// Bytes of those segments.
    public let size: UInt64
    /// Their resident pages.
    public let residentPages: UInt64
    /// Their fault statistics, added up.
    public let statistics: HostFaultStatistics

    public init(ops: String, segments: Int, size: UInt64, residentPages: UInt64, statistics: HostFaultStatistics) {
        self.ops = ops
        self.segments = segments
        self.size = size
        self.residentPages = residentPages
        self.statistics = statistics
    }
}

extension HostAddressSpace {
    /// One row per segment, lowest base first. Resident pages come from
    /// ``residentPages(_:)`` and statistics from each driver at the moment
    /// its row is made.
    public func report() -> [HostSegmentReport] {
        HostSegmentReport.rows(segments, residentPages: residentPages)
    }

    /// The figures of ``report()`` summed per driver, in the order each
    /// driver first appears (lowest base first).
    public func driverTotals() -> [HostDriverTotals] {
        HostSegmentReport.totals(report())
    }

    /// The text report: mdb's `::seg` lines exactly as
    /// `SegRendering.render(segments)` prints them, a blank line, the
    /// segment table (``HostSegmentReport/table(_:)``) and, with `totals`,
    /// a blank line and the per-driver table.
    public func renderReport(totals: Bool = true) -> String {
        let segs = segments
        let rows = HostSegmentReport.rows(segs, residentPages: residentPages)
        var out = SegRendering.render(segs) + "\n" + HostSegmentReport.table(rows)
        if totals { out += "\n" + HostSegmentReport.totalsTable(HostSegmentReport.totals(rows)) }
        return out
    }

    /// The report as one JSON object: `window` (`base`, `size`),
    /// `userfaultfd` (true or false), `userfaultfdReason` (null when it is
    /// used), `segments` (``HostSegmentReport/jsonValue`` each) and
    /// `drivers` (``HostDriverTotals/jsonValue`` each).
    public func reportJSON() -> String { reportJSONValue().rendered() }

    /// ``reportJSON()`` as a value, to embed in a larger document.
    public func reportJSONValue() -> HostJSON {
        let rows = report()
        return .object([
            ("window", .object([("base", .hex(reservation.base)), ("size", .hex(reservation.size))])),
            ("userfaultfd", .bool(usesUserfaultfd)),
            ("userfaultfdReason", userfaultfdUnavailableReason.map { .string($0) } ?? .null),
            ("segments", .array(rows.map(\.jsonValue))),
            ("drivers", .array(HostSegmentReport.totals(rows).map(\.jsonValue))),
        ])
    }
}

extension HostSegmentReport {
    /// Rows for `segments`, counting resident pages with `resident`.
    static func rows(_ segments: [Segment], residentPages resident: (Segment) -> UInt64) -> [HostSegmentReport] {
        segments.map { seg in
            let host = seg.driver as? HostSegmentDriver
            return HostSegmentReport(segmentAddress: seg.address, base: seg.base, size: seg.size,
                                     driver: seg.driver.opsName, backing: host?.backing ?? "-",
                                     servedBy: host?.servedBy ?? "-", object: host?.object?.name,
                                     residentPages: resident(seg), statistics: host?.statistics ?? HostFaultStatistics())
        }
    }

    /// `rows` summed per driver, in order of first appearance.
    public static func totals(_ rows: [HostSegmentReport]) -> [HostDriverTotals] {
        var order: [String] = []
        var sums: [String: (segments: Int, size: UInt64, resident: UInt64, stats: HostFaultStatistics)] = [:]
        for r in rows {
            if sums[r.driver] == nil {
                order.append(r.driver)
                sums[r.driver] = (0, 0, 0, HostFaultStatistics())
            }
            let s = sums[r.driver]!
            sums[r.driver] = (s.segments + 1, s.size &+ r.size, s.resident &+ r.residentPages, s.stats + r.statistics)
        }
        return order.map { ops in
            let s = sums[ops]!
            return HostDriverTotals(ops: ops, segments: s.segments, size: s.size, residentPages: s.resident,
                                    statistics: s.stats)
        }
    }

    // MARK: Text

    /// `0x1f000`.
    static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

    /// Nanoseconds as microseconds with one decimal: `12.3`.
    static func microseconds(_ ns: UInt64) -> String {
        let tenths = (ns + 50) / 100
        return String(tenths / 10) + "." + String(tenths % 10)
    }

    /// The column titles of ``table(_:)``.
    public static let columns = ["BASE", "SIZE", "DRIVER", "BACKING", "SERVED", "RESIDENT", "FAULTS", "BYTES",
                                 "TIME(us)"]

    /// The segment table: a header line with ``columns``, then one line per
    /// row. Text columns are left-aligned, numbers right-aligned; each line
    /// ends in a newline.
    public static func table(_ rows: [HostSegmentReport]) -> String {
        let cells = rows.map { r in
            [hex(r.base), hex(r.size), r.driver, r.backing, r.servedBy, String(r.residentPages),
             String(r.statistics.faults), String(r.statistics.bytes), microseconds(r.statistics.nanoseconds)]
        }
        return layout(header: columns, rows: cells, rightAligned: [5, 6, 7, 8])
    }

    /// The per-driver table: DRIVER SEGMENTS SIZE RESIDENT FAULTS BYTES TIME(us).
    public static func totalsTable(_ totals: [HostDriverTotals]) -> String {
        let cells = totals.map { t in
            [t.ops, String(t.segments), hex(t.size), String(t.residentPages), String(t.statistics.faults),
             String(t.statistics.bytes), microseconds(t.statistics.nanoseconds)]
        }
        return layout(header: ["DRIVER", "SEGMENTS", "SIZE", "RESIDENT", "FAULTS", "BYTES", "TIME(us)"],
                      rows: cells, rightAligned: [1, 3, 4, 5, 6])
    }

    /// Pads `header` and `rows` into columns two spaces apart.
    static func layout(header: [String], rows: [[String]], rightAligned: Set<Int>) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for (i, cell) in cells.enumerated() where i < widths.count {
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                let last = i == widths.count - 1
                parts.append(rightAligned.contains(i) ? pad + cell : (last ? cell : cell + pad))
            }
            return parts.joined(separator: "  ") + "\n"
        }
        return line(header) + rows.map(line).joined()
    }

    // MARK: JSON

    /// The row as a JSON object: `seg`, `base` and `size` as `"0x…"`
    /// strings, `pages`, `driver`, `backing`, `servedBy`, `object` (null for
    /// anonymous memory), `residentPages`, `faultsServed`, `bytes`,
    /// `nanoseconds`, `copies`, `zeroPages`, `continues`, `alreadyPresent`,
    /// `refused`.
    public var jsonValue: HostJSON {
        .object([
            ("seg", .hex(segmentAddress)), ("base", .hex(base)), ("size", .hex(size)), ("pages", .number(pages)),
            ("driver", .string(driver)), ("backing", .string(backing)), ("servedBy", .string(servedBy)),
            ("object", object.map { .string($0) } ?? .null), ("residentPages", .number(residentPages)),
            ("faultsServed", .number(statistics.faults)), ("bytes", .number(statistics.bytes)),
            ("nanoseconds", .number(statistics.nanoseconds)), ("copies", .number(statistics.copies)),
            ("zeroPages", .number(statistics.zeroPages)), ("continues", .number(statistics.continues)),
            ("alreadyPresent", .number(statistics.alreadyPresent)), ("refused", .number(statistics.refused)),
        ])
    }

    /// The row as compact JSON text.
    public var json: String { jsonValue.rendered() }
}

extension HostDriverTotals {
    /// `driver`, `segments`, `size` (`"0x…"`), `residentPages`,
    /// `faultsServed`, `bytes`, `nanoseconds`.
    public var jsonValue: HostJSON {
        .object([
            ("driver", .string(ops)), ("segments", .number(UInt64(segments))), ("size", .hex(size)),
            ("residentPages", .number(residentPages)), ("faultsServed", .number(statistics.faults)),
            ("bytes", .number(statistics.bytes)), ("nanoseconds", .number(statistics.nanoseconds)),
        ])
    }
}
