/// Parses the sizes and addresses users type: `4096`, `0x1000`, `512M`,
/// `12.5G`, `2T` (binary units K, M, G, T, P, E, optionally followed by `iB`
/// or `B`).
public enum SizeParser {
    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        case empty
        case malformed(String)
        case negative(String)
        case tooLarge(String)
        case notWhole(String)

        public var description: String {
            switch self {
            case .empty: return "empty size"
            case .malformed(let s): return "cannot parse size \"\(s)\""
            case .negative(let s): return "size \"\(s)\" is negative"
            case .tooLarge(let s): return "size \"\(s)\" does not fit in 64 bits"
            case .notWhole(let s): return "size \"\(s)\" is not a whole number of bytes"
            }
        }
    }

    public static func parse(_ text: some StringProtocol) throws(Failure) -> UInt64 {
        let s = String(text).trimmingSpaces()
        if s.isEmpty { throw .empty }
        if s.hasPrefix("-") { throw .negative(s) }
        var body = Substring(s)
        if body.hasPrefix("+") { body = body.dropFirst() }
        if body.lowercased().hasPrefix("0x") {
            let digits = body.dropFirst(2)
            guard !digits.isEmpty, let v = UInt64(digits, radix: 16) else {
                if !digits.isEmpty && digits.allSatisfy(\.isHexDigit) { throw .tooLarge(s) }
                throw .malformed(s)
            }
            return v
        }
        // Split number and unit.
        let unit = body.drop { $0.isNumber || $0 == "." }
        let number = body.prefix(body.count - unit.count)
        if number.isEmpty || number.filter({ $0 == "." }).count > 1 || number == "." { throw .malformed(s) }
        var lowered = unit.lowercased()
        if lowered.hasSuffix("ib") { lowered.removeLast(2) } else if lowered.hasSuffix("b") && lowered.count == 2 { lowered.removeLast() }
        else if lowered == "b" { lowered = "" }
        let shift: UInt64
        switch lowered {
        case "": shift = 0
        case "k": shift = 10
        case "m": shift = 20
        case "g": shift = 30
        case "t": shift = 40
        case "p": shift = 50
        case "e": shift = 60
        default: throw .malformed(s)
        }
        let parts = number.split(separator: ".", omittingEmptySubsequences: false)
        guard let whole = UInt64(parts[0].isEmpty ? "0" : parts[0]) else { throw .tooLarge(s) }
        let (scaled, o) = whole.multipliedReportingOverflow(by: 1 << shift)
        if o || (shift > 0 && whole > UInt64.max >> shift) { throw .tooLarge(s) }
        guard parts.count == 2 else { return scaled }
        // Fraction: exact arithmetic on the decimal digits, then it must give
        // a whole number of bytes.
        let frac = parts[1]
        if frac.isEmpty { return scaled }
        if frac.count > 18 { throw .malformed(s) }
        guard let f = UInt64(frac) else { throw .malformed(s) }
        var denom: UInt64 = 1
        for _ in 0..<frac.count { denom *= 10 }
        // f / denom * 2^shift must be an integer.
        let wide = f.multipliedFullWidth(by: 1 << shift)
        if wide.high != 0 { throw .tooLarge(s) }
        let num = wide.low
        if num % denom != 0 { throw .notWhole(s) }
        let (total, o3) = scaled.addingReportingOverflow(num / denom)
        if o3 { throw .tooLarge(s) }
        return total
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" || f == "\n" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" || l == "\n" { s = s.dropLast() }
        return String(s)
    }
}
