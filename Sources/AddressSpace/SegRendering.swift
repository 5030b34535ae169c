/// mdb's `::seg` dcmd over a `seg` walk (`kas::walk seg | ::seg`).
///
/// Header `"%?s %?s %?s %?s %s"` and rows `"%?p %?p %?lx %?p %a"`: `%?` is
/// the target's pointer width, right-justified (16 columns on a 64-bit
/// target, the default; 8 on a 32-bit one); `%p` and `%lx` print
/// lower-case hex without `0x`; `%a` prints the ops vector's symbol.
public enum SegRendering {
    /// The pointer width of a 64-bit target.
    public static let pointerWidth = 16

    static func right(_ s: String, _ width: Int = pointerWidth) -> String {
        s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }

    static func hex(_ v: UInt64) -> String { String(v, radix: 16) }

    /// `             SEG             BASE             SIZE             DATA OPS`
    public static func header(pointerWidth w: Int = pointerWidth) -> String {
        right("SEG", w) + " " + right("BASE", w) + " " + right("SIZE", w) + " " + right("DATA", w) + " OPS"
    }

    /// One segment's row.
    public static func row(_ segment: Segment, pointerWidth w: Int = pointerWidth) -> String {
        row(address: segment.address, base: segment.base, size: segment.size,
            data: segment.driver.dataAddress, ops: segment.driver.opsName, pointerWidth: w)
    }

    /// A row from raw values.
    public static func row(address: UInt64, base: UInt64, size: UInt64, data: UInt64, ops: String,
                           pointerWidth w: Int = pointerWidth) -> String {
        right(hex(address), w) + " " + right(hex(base), w) + " " + right(hex(size), w) + " " + right(hex(data), w) + " " + ops
    }

    /// The header and one row per segment, each line ending in a newline.
    public static func render(_ segments: [Segment], pointerWidth w: Int = pointerWidth) -> String {
        var out = header(pointerWidth: w) + "\n"
        for s in segments { out += row(s, pointerWidth: w) + "\n" }
        return out
    }
}

extension AddressSpace {
    /// `<as>::walk seg | ::seg`: every segment in ascending base order.
    public func renderSegWalk() -> String { SegRendering.render(segments) }
}
