import Vmem
import CVmemSupport

/// mdb's `::vmem_seg` over the segments of one arena (address-space.md §3.9).
public enum VmemSegTable {
    public struct Options: Sendable {
        /// `-s`: print SIZE instead of END.
        public var showSize = false
        /// `-T`: only segments of these kinds.
        public var kinds: Set<SegmentKind>? = nil
        /// `-m` / `-M`: size bounds.
        public var minSize: UInt64? = nil
        public var maxSize: UInt64? = nil
        public init(showSize: Bool = false, kinds: Set<SegmentKind>? = nil, minSize: UInt64? = nil, maxSize: UInt64? = nil) {
            self.showSize = showSize; self.kinds = kinds; self.minSize = minSize; self.maxSize = maxSize
        }
    }

    public static func header(_ o: Options = .init()) -> String {
        MdbFormat.right("ADDR", 16) + " " + MdbFormat.right("TYPE", 4) + " " + MdbFormat.right("START", 16) + " "
            + MdbFormat.right(o.showSize ? "SIZE" : "END", 16) + " WHO"
    }

    public static func row(_ s: Segment, _ o: Options = .init()) -> String {
        var line = MdbFormat.pointer(s.tagAddress) + " " + MdbFormat.right(s.kind.mdbName, 4) + " "
            + MdbFormat.pointer(s.start) + " "
            // `-s` puts the size in END's `%0?p` slot: zero-padded hex, as mdb prints it.
            + MdbFormat.pointer(o.showSize ? s.size : s.end)
        if s.kind == .allocated, let audit = s.audit, let who = caller(audit.stack) { line += " " + who }
        return line
    }

    public static func render(_ arena: Arena, _ o: Options = .init()) -> String {
        var lines = [header(o)]
        for s in arena.segments([.allocated, .free, .spans, .markers]) {
            if let k = o.kinds, !k.contains(s.kind) { continue }
            if let m = o.minSize, s.size < m { continue }
            if let m = o.maxSize, s.size > m { continue }
            lines.append(row(s, o))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The first frame whose symbol is not part of the allocator itself (mdb
    /// skips `vmem_*` frames), as `symbol+0xoff`, or the raw address.
    static func caller(_ stack: [UInt]) -> String? {
        for pc in stack {
            var buf = [CChar](repeating: 0, count: 256)
            var off: UInt = 0
            if cvmem_symbolize(pc, &buf, UInt(buf.count), &off) != 0 {
                let name = String(cString: buf)
                if name.contains("4Vmem") || name.hasPrefix("cvmem_") { continue }
                return "\(name)+0x\(String(off, radix: 16))"
            }
            return "0x" + String(pc, radix: 16)
        }
        return nil
    }
}
