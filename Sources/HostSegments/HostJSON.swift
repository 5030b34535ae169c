/// A JSON value written by hand (HostSegments does without Foundation).
///
/// Objects keep their keys in the order given. ``rendered()`` prints an
/// object or array whose members are all scalars on one line and any other
/// over several lines, two spaces per level, with `"key": value` (one space
/// after the colon) throughout.
public indirect enum HostJSON: Hashable, Sendable {
    case null
    case bool(Bool)
    case number(UInt64)
    case signed(Int64)
    case string(String)
    case array([HostJSON])
    case object([(String, HostJSON)])

    /// An address or size as a `"0x…"` string.
    public static func hex(_ v: UInt64) -> HostJSON { .string("0x" + String(v, radix: 16)) }

    public static func == (a: HostJSON, b: HostJSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.signed(x), .signed(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let v): hasher.combine(1); hasher.combine(v)
        case .number(let v): hasher.combine(2); hasher.combine(v)
        case .signed(let v): hasher.combine(3); hasher.combine(v)
        case .string(let v): hasher.combine(4); hasher.combine(v)
        case .array(let v): hasher.combine(5); hasher.combine(v)
        case .object(let v):
            hasher.combine(6)
            for (k, x) in v { hasher.combine(k); hasher.combine(x) }
        }
    }

    var isScalar: Bool {
        switch self {
        case .array, .object: return false
        default: return true
        }
    }

    /// The value as JSON text (no trailing newline).
    public func rendered() -> String {
        var out = ""
        write(into: &out, indent: 0)
        return out
    }

    private func write(into out: inout String, indent: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let v): out += v ? "true" : "false"
        case .number(let v): out += String(v)
        case .signed(let v): out += String(v)
        case .string(let v): out += HostJSON.quoted(v)
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            if items.allSatisfy(\.isScalar) {
                out += "["
                for (i, x) in items.enumerated() {
                    if i > 0 { out += ", " }
                    x.write(into: &out, indent: indent)
                }
                out += "]"
                return
            }
            let pad = String(repeating: "  ", count: indent + 1)
            out += "[\n"
            for (i, x) in items.enumerated() {
                out += pad
                x.write(into: &out, indent: indent + 1)
                out += i + 1 < items.count ? ",\n" : "\n"
            }
            out += String(repeating: "  ", count: indent) + "]"
        case .object(let members):
            if members.isEmpty { out += "{}"; return }
            if members.allSatisfy({ $0.1.isScalar }) {
                out += "{"
                for (i, (k, x)) in members.enumerated() {
                    if i > 0 { out += ", " }
                    out += HostJSON.quoted(k) + ": "
                    x.write(into: &out, indent: indent)
                }
                out += "}"
                return
            }
            let pad = String(repeating: "  ", count: indent + 1)
            out += "{\n"
            for (i, (k, x)) in members.enumerated() {
                out += pad + HostJSON.quoted(k) + ": "
                x.write(into: &out, indent: indent + 1)
                out += i + 1 < members.count ? ",\n" : "\n"
            }
            out += String(repeating: "  ", count: indent) + "}"
        }
    }

    /// `s` as a JSON string literal: quotes, backslashes and control
    /// characters escaped (`\n`, `\t`, `\r`, `\b`, `\f`, else `\u00XX`);
    /// everything else, non-ASCII included, as UTF-8.
    public static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    let h = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
