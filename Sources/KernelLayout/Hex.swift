/// Hexadecimal and human-readable renderings of addresses and sizes, without
/// Foundation.
public enum Hex {
    /// `0x` and lower-case digits, no padding: the JSON form (`0xfffffa8000000000`).
    public static func lower(_ value: UInt64) -> String {
        "0x" + String(value, radix: 16, uppercase: false)
    }

    /// `0x` and upper-case digits, no padding: the form of the design tables
    /// (`0xFFFFFE064BE00000`).
    public static func upper(_ value: UInt64) -> String {
        "0x" + String(value, radix: 16, uppercase: true)
    }

    /// Upper-case digits padded to `digits`, prefixed `0x`.
    public static func padded(_ value: UInt64, digits: Int) -> String {
        let body = String(value, radix: 16, uppercase: true)
        let zeros = max(0, digits - body.count)
        return "0x" + String(repeating: "0", count: zeros) + body
    }

    /// The address as the illumos layout comment writes it: 16 digits with a
    /// dot between the high and low words (`0xFFFFFFFF.FB800000`).
    public static func dotted(_ value: UInt64) -> String {
        let high = String(value >> 32, radix: 16, uppercase: true)
        let low = String(value & 0xFFFF_FFFF, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: 8 - high.count) + high + "."
            + String(repeating: "0", count: 8 - low.count) + low
    }
}

/// Sizes in binary units for people: `4 MiB`, `2021.815 GiB`, `84 KiB`.
public enum HumanSize {
    private static let units: [(String, UInt64)] = [
        ("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10),
    ]

    /// The largest unit in which the value is at least 1, with up to three
    /// decimals (trailing zeros dropped), rounded half up.
    public static func format(_ bytes: UInt64) -> String {
        for (name, unit) in units where bytes >= unit {
            var whole = bytes / unit
            let remainder = bytes % unit
            // remainder < 2^50, so remainder * 1000 does not overflow.
            var thousandths = (remainder * 1000 + unit / 2) / unit
            if thousandths == 1000 { whole += 1; thousandths = 0 }
            return decimal(whole, thousandths) + " " + name
        }
        return "\(bytes) B"
    }

    static func decimal(_ whole: UInt64, _ thousandths: UInt64) -> String {
        guard thousandths != 0 else { return String(whole) }
        var digits = String(thousandths)
        digits = String(repeating: "0", count: 3 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(whole).\(digits)"
    }
}
