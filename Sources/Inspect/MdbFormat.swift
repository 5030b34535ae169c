/// printf-style helpers for mdb's output formats on a 64-bit target, where
/// `%?` means pointer width (16 columns).
enum MdbFormat {
    static let pointerWidth = 16

    /// `%0?p`: a zero-padded 16-digit hex pointer, no `0x`.
    static func pointer(_ v: UInt64) -> String {
        let h = String(v, radix: 16)
        return String(repeating: "0", count: max(0, pointerWidth - h.count)) + h
    }

    /// `%?p` / `%?lx`: right-justified hex in 16 columns.
    static func hexRight(_ v: UInt64, width: Int = pointerWidth) -> String { right(String(v, radix: 16), width) }

    static func right(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }

    static func left(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }
}
