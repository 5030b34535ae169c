/// printf-style helpers for mdb's output formats. `%?` means the target's
/// pointer width: 16 columns on a 64-bit target (the default here), 8 on a
/// 32-bit one (``StructAddresses/pointerWidth``).
enum MdbFormat {
    static let pointerWidth = 16

    /// `%0?p`: a zero-padded hex pointer, no `0x`; a value wider than
    /// `width` digits is printed whole, as printf does.
    static func pointer(_ v: UInt64, width: Int = pointerWidth) -> String {
        let h = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - h.count)) + h
    }

    /// `%?p` / `%?lx`: right-justified hex in `width` columns.
    static func hexRight(_ v: UInt64, width: Int = pointerWidth) -> String { right(String(v, radix: 16), width) }

    static func right(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }

    static func left(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }
}
