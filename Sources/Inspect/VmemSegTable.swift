import Vmem

/// mdb's `::vmem_seg` over the segments of one arena (address-space.md §3.9).
public enum VmemSegTable {
    public struct Options: Sendable {
        /// `-s`: print SIZE instead of END.
        public var showSize = false
        /// `-v`: two-line header, decimal size, then thread, timestamp and stack.
        public var verbose = false
        /// `-T`: only segments of these kinds.
        public var kinds: Set<SegmentKind>? = nil
        /// `-m` / `-M`: size bounds.
        public var minSize: UInt64? = nil
        public var maxSize: UInt64? = nil
        /// `-c`: only segments one of whose stack frames is in this function
        /// (a symbol name, or an address inside the function).
        public var caller: String? = nil {
            // Resolved once here, not again for every frame of every segment.
            didSet { callerFunction = caller.map(CallerFunction.init) }
        }
        var callerFunction: CallerFunction? = nil
        /// `-e` / `-l`: only segments allocated at or after / at or before
        /// this timestamp (monotonic nanoseconds, as `-v` prints them).
        public var earliest: UInt64? = nil
        public var latest: UInt64? = nil
        /// `-t`: only segments allocated by this thread.
        public var thread: UInt64? = nil
        public init(showSize: Bool = false, kinds: Set<SegmentKind>? = nil, minSize: UInt64? = nil, maxSize: UInt64? = nil) {
            self.showSize = showSize; self.kinds = kinds; self.minSize = minSize; self.maxSize = maxSize
        }

        /// Whether a filter needs the audit record (`-c`, `-e`, `-l`, `-t`):
        /// then a segment without one is not shown, as in mdb.
        var needsAudit: Bool { caller != nil || earliest != nil || latest != nil || thread != nil }
    }

    /// The header; `%?s` is `pointerWidth` wide (`-v`'s columns are 16 on every target).
    public static func header(_ o: Options = .init(), pointerWidth: Int = 16) -> String {
        if o.verbose {
            // mdb underlines the second line on a terminal; the words are the same.
            return MdbFormat.right("ADDR", 16) + " " + MdbFormat.right("TYPE", 4) + " " + MdbFormat.right("START", 16) + " "
                + MdbFormat.right("END", 16) + " " + MdbFormat.right("SIZE", 16) + "\n"
                + MdbFormat.right("", 16) + " " + MdbFormat.right("", 4) + " " + MdbFormat.right("THREAD", 16) + " "
                + MdbFormat.right("TIMESTAMP", 16) + " " + MdbFormat.right("", 16)
        }
        let w = pointerWidth
        return MdbFormat.right("ADDR", w) + " " + MdbFormat.right("TYPE", 4) + " " + MdbFormat.right("START", w) + " "
            + MdbFormat.right(o.showSize ? "SIZE" : "END", w) + " WHO"
    }

    /// Whether `s` passes the type, size and audit filters of `o`.
    public static func selects(_ s: Segment, _ o: Options) -> Bool {
        if let k = o.kinds, !k.contains(s.kind) { return false }
        if let m = o.minSize, s.size < m { return false }
        if let m = o.maxSize, s.size > m { return false }
        guard o.needsAudit else { return true }
        guard let a = s.audit, !a.stack.isEmpty else { return false }
        if let t = o.thread, a.thread != t { return false }
        if let e = o.earliest, a.timestamp < e { return false }
        if let l = o.latest, a.timestamp > l { return false }
        if let c = o.callerFunction, !a.stack.contains(where: { c.contains($0) }) { return false }
        return true
    }

    /// The row (or, with `-v`, the lines) for `s`, without a final newline;
    /// its ADDR as `addresses` number it.
    public static func row(_ s: Segment, _ o: Options = .init(), _ addresses: StructAddresses = .wide) -> String {
        let tag = addresses.display(s.tagAddress)
        if o.verbose {
            var lines = [MdbFormat.hexRight(tag) + " " + MdbFormat.right(s.kind.mdbName, 4) + " "
                         + MdbFormat.hexRight(s.start) + " " + MdbFormat.hexRight(s.end) + " "
                         + MdbFormat.right(String(s.size), 16)]
            guard let a = s.audit, !a.stack.isEmpty else { return lines[0] }
            lines.append(MdbFormat.right("", 16) + " " + MdbFormat.right("", 4) + " " + MdbFormat.hexRight(a.thread) + " "
                         + MdbFormat.hexRight(a.timestamp))
            lines += a.stack.map { String(repeating: " ", count: 17) + symbol($0) }
            lines.append("")
            return lines.joined(separator: "\n")
        }
        let w = addresses.pointerWidth
        var line = MdbFormat.pointer(tag, width: w) + " " + MdbFormat.right(s.kind.mdbName, 4) + " "
            + MdbFormat.pointer(s.start, width: w) + " "
            // `-s` puts the size in END's `%0?p` slot: zero-padded hex, as mdb prints it.
            + MdbFormat.pointer(o.showSize ? s.size : s.end, width: w)
        if s.kind == .allocated, let who = s.audit?.caller { line += " " + who.description }
        return line
    }

    public static func render(_ arena: Arena, _ o: Options = .init()) -> String {
        var lines = [header(o)]
        for s in arena.segments([.allocated, .free, .spans, .markers]) where selects(s, o) {
            lines.append(row(s, o))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `%a`: `symbol+0xoff`, or the raw address when there is no symbol.
    static func symbol(_ pc: UInt) -> String { StackSymbol(pc).description }

    /// `-c`'s argument: a function named by its symbol (as linked or
    /// demangled), or by an address inside it.
    struct CallerFunction: Sendable {
        let text: String
        /// The argument read as an address (hex, `0x` optional), if it is one.
        let address: UInt?
        /// The start of the function that address is in, if it has a symbol.
        let start: UInt?

        init(_ text: String) {
            self.text = text
            address = UInt(text.hasPrefix("0x") ? String(text.dropFirst(2)) : text, radix: 16)
            start = address.flatMap { StackSymbol($0).functionStart }
        }

        /// Whether return address `pc` lies in the function.
        func contains(_ pc: UInt) -> Bool {
            let frame = StackSymbol(pc)
            if let raw = frame.rawName, raw == text || frame.name == text { return true }
            guard let address else { return false }
            guard let frameStart = frame.functionStart else { return address == pc }
            return start == frameStart
        }
    }
}
