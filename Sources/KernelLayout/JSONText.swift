/// The few pieces of JSON text the renderers need, without Foundation.
enum JSONText {
    /// `text` as a JSON string literal.
    static func string(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// A number that may exceed 2^53, as a `"0x…"` string.
    static func hex(_ value: UInt64) -> String { "\"" + Hex.lower(value) + "\"" }

    /// `{"k": v, ...}` on one line, from already-encoded values.
    static func object(_ members: [(String, String)]) -> String {
        "{" + members.map { string($0.0) + ": " + $0.1 }.joined(separator: ", ") + "}"
    }

    /// Seconds with at most six decimals and no trailing zeros (`0.12`).
    static func seconds(_ value: Double) -> String {
        guard value.isFinite, value > 0 else { return "0" }
        let micros = (value * 1_000_000).rounded()
        guard micros < 9.0e18 else { return "9e12" }
        let total = UInt64(micros)
        var fraction = String(total % 1_000_000)
        fraction = String(repeating: "0", count: 6 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return fraction.isEmpty ? String(total / 1_000_000) : "\(total / 1_000_000).\(fraction)"
    }
}
