/// Parses the SIZE arguments of the `vmkit` commands.
///
/// Accepted forms (binary units, as the kernel counts memory):
///
/// | text | bytes |
/// |---|---|
/// | `4096` | 4096 |
/// | `0x1000` | 4096 |
/// | `512M`, `512MB`, `512MiB`, `512m` | 512 × 2^20 |
/// | `12.5G` | 12.5 × 2^30 |
/// | `2T` | 2 × 2^40 |
/// | `1P` | 2^50 |
/// | `4096B` | 4096 |
///
/// A hexadecimal number may carry a unit too (`0x10M`). A fraction is allowed
/// only if the result is a whole number of bytes. Surrounding white space is
/// ignored; anything else that is not part of the grammar is an error, and so
/// is a result above `UInt64.max`.
public enum SizeParser {
    /// The multiplier of each unit letter.
    @usableFromInline
    static func multiplier(ofUnit letter: UInt8) -> UInt64? {
        switch letter | 0x20 {  // ASCII lower case
        case UInt8(ascii: "k"): return 1 << 10
        case UInt8(ascii: "m"): return 1 << 20
        case UInt8(ascii: "g"): return 1 << 30
        case UInt8(ascii: "t"): return 1 << 40
        case UInt8(ascii: "p"): return 1 << 50
        default: return nil
        }
    }

    /// Parses `text` into a number of bytes.
    public static func parse(_ text: String) throws(SizeParseError) -> UInt64 {
        let bytes = Array(text.utf8)
        var start = 0
        var end = bytes.count
        while start < end, isSpace(bytes[start]) { start += 1 }
        while end > start, isSpace(bytes[end - 1]) { end -= 1 }
        guard start < end else { throw .empty }
        let trimmed = String(decoding: bytes[start..<end], as: UTF8.self)
        if bytes[start] == UInt8(ascii: "-") { throw .negative(trimmed) }
        if bytes[start] == UInt8(ascii: "+") { start += 1 }
        guard start < end else { throw .malformed(trimmed) }

        // The number: hexadecimal, or decimal with an optional fraction.
        var index = start
        var integer: UInt64 = 0
        var fraction: UInt64 = 0        // the fraction's digits as an integer
        var fractionScale: UInt64 = 1   // 10^(number of fraction digits)
        var sawDigit = false
        let isHex = end - start >= 2 && bytes[start] == UInt8(ascii: "0")
            && (bytes[start + 1] | 0x20) == UInt8(ascii: "x")
        if isHex {
            index = start + 2
            while index < end, let digit = hexValue(bytes[index]) {
                let (shifted, o1) = integer.multipliedReportingOverflow(by: 16)
                let (sum, o2) = shifted.addingReportingOverflow(digit)
                if o1 || o2 { throw .overflow(trimmed) }
                integer = sum
                sawDigit = true
                index += 1
            }
        } else {
            while index < end, let digit = decimalValue(bytes[index]) {
                let (shifted, o1) = integer.multipliedReportingOverflow(by: 10)
                let (sum, o2) = shifted.addingReportingOverflow(digit)
                if o1 || o2 { throw .overflow(trimmed) }
                integer = sum
                sawDigit = true
                index += 1
            }
            if index < end, bytes[index] == UInt8(ascii: ".") {
                index += 1
                while index < end, let digit = decimalValue(bytes[index]) {
                    sawDigit = true
                    // Digits beyond 18 cannot change a whole number of bytes
                    // unless they are zero; keep them only while they fit.
                    if fractionScale < 1_000_000_000_000_000_000 {
                        fraction = fraction * 10 + digit
                        fractionScale *= 10
                    } else if digit != 0 {
                        throw .fractionalBytes(trimmed)
                    }
                    index += 1
                }
            }
        }
        guard sawDigit else { throw .malformed(trimmed) }

        // The unit: K M G T P, then optionally "B" or "iB"; or "B" alone.
        var unit: UInt64 = 1
        if index < end {
            let unitText = String(decoding: bytes[index..<end], as: UTF8.self)
            if let m = multiplier(ofUnit: bytes[index]) {
                unit = m
                let rest = bytes[(index + 1)..<end].map { $0 | 0x20 }
                guard rest.isEmpty || rest == [UInt8(ascii: "b")]
                        || rest == [UInt8(ascii: "i"), UInt8(ascii: "b")]
                        || rest == [UInt8(ascii: "i")] else {
                    throw .unknownUnit(text: trimmed, unit: unitText)
                }
            } else if end - index == 1, bytes[index] | 0x20 == UInt8(ascii: "b") {
                unit = 1
            } else if isUnitLike(bytes[index]) {
                throw .unknownUnit(text: trimmed, unit: unitText)
            } else {
                throw .malformed(trimmed)
            }
        }

        let (whole, o1) = integer.multipliedReportingOverflow(by: unit)
        if o1 { throw .overflow(trimmed) }
        guard fraction != 0 else { return whole }
        // fraction / fractionScale × unit must be a whole number of bytes.
        let product = unit.multipliedFullWidth(by: fraction)
        guard product.high < fractionScale else { throw .overflow(trimmed) }
        let (quotient, remainder) = fractionScale.dividingFullWidth(product)
        guard remainder == 0 else { throw .fractionalBytes(trimmed) }
        let (total, o2) = whole.addingReportingOverflow(quotient)
        if o2 { throw .overflow(trimmed) }
        return total
    }

    private static func isSpace(_ c: UInt8) -> Bool {
        c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D
    }

    private static func isUnitLike(_ c: UInt8) -> Bool {
        let lower = c | 0x20
        return lower >= UInt8(ascii: "a") && lower <= UInt8(ascii: "z")
    }

    private static func decimalValue(_ c: UInt8) -> UInt64? {
        c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") ? UInt64(c - UInt8(ascii: "0")) : nil
    }

    private static func hexValue(_ c: UInt8) -> UInt64? {
        if let d = decimalValue(c) { return d }
        let lower = c | 0x20
        if lower >= UInt8(ascii: "a") && lower <= UInt8(ascii: "f") {
            return UInt64(lower - UInt8(ascii: "a") + 10)
        }
        return nil
    }
}
