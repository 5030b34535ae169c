import ModelKernel

/// The crash-dump walk as text: `::walk dump` lists each page a kernel dump
/// would contain (address, frame, segment, identity); `::dump` sums them per
/// segment and says which segments a dump leaves out and why.
public enum DumpRendering {
    static func hex(_ v: UInt64) -> String { String(v, radix: 16) }

    /// One line per page; the address is `pointerWidth` digits (`%0?p`).
    public static func walk(_ pages: [DumpedPage], pointerWidth: Int = 16) -> String {
        var out = ""
        for p in pages {
            out += MdbFormat.pointer(p.address, width: pointerWidth) + " " + MdbFormat.hexRight(p.pfn, width: 10) + " "
                + MdbFormat.left(p.segment, 10) + " " + (p.vnode.map { "\($0)+0x\(hex(p.offset))" } ?? "-") + "\n"
        }
        return out
    }

    public static func summary(_ pages: [DumpedPage], kernel: ModelKernel) -> String {
        var counts: [String: Int] = [:]
        for p in pages { counts[p.segment, default: 0] += 1 }
        var out = MdbFormat.left("SEGMENT", 12) + MdbFormat.right("PAGES", 12) + MdbFormat.right("MB", 10) + "\n"
        for s in kernel.segments.sorted(by: { $0.base < $1.base }) {
            let note: String
            switch s.name {
            case "kzioseg": note = "  (not dumped: ZFS file data)"
            case "kvmmseg": note = "  (not dumped: guest memory)"
            case "kpmseg": note = "  (not dumped: its pages belong to other segments)"
            default: note = ""
            }
            let n = counts[s.name] ?? 0
            out += MdbFormat.left(s.name, 12) + MdbFormat.right(String(n), 12)
                + MdbFormat.right(String((UInt64(n) * 4096) >> 20), 10) + note + "\n"
        }
        out += MdbFormat.left("total", 12) + MdbFormat.right(String(pages.count), 12)
            + MdbFormat.right(String((UInt64(pages.count) * 4096) >> 20), 10) + "\n"
        return out
    }
}
