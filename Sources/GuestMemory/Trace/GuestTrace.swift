/// One parsed line of a guest-memory trace (guest-memory.md §7).
///
/// ```
/// vm [ad=hardware|emulated] [format=ept|rvi]     first line, optional
/// memseg ID LEN [name=NAME]
/// memmap GPA ID OFF LEN PROT [wired]
/// munmap GPA LEN
/// reset
/// translate GPA LEN PROT
/// write GPA HEXBYTES
/// read GPA LEN
/// touch GPA r|w|x
/// dirty GPA LEN
/// maps
/// ```
///
/// Numbers are decimal or `0x` hex, with an optional `K`, `M`, `G` or `T`
/// suffix (binary units); `#` starts a comment. Parsing checks only the
/// shape of a line and §7's length limits; the rules of the guest (ids,
/// alignment, protections) are the runner's, which answers them with
/// `invalid`, `exists`, `nospace` or `fault` as §7 says.
public enum GuestTraceCommand: Hashable, Sendable {
    /// How the nested page tables keep accessed/dirty bits.
    public enum AccessDirtyMode: String, Hashable, Sendable { case hardware, emulated }
    /// The nested page-table format.
    public enum TableFormat: String, Hashable, Sendable { case ept, rvi }

    case vm(ad: AccessDirtyMode, format: TableFormat)
    /// `id` is the number as written (§7 answers an id outside 0...15 with `invalid`).
    case memseg(id: UInt64, length: UInt64, name: String?)
    /// `protection` is nil when the word is not a non-empty subset of `rwx`
    /// in that order (§7: `invalid`).
    case memmap(gpa: UInt64, id: UInt64, offset: UInt64, length: UInt64, protection: GuestProtection?, wired: Bool)
    case munmap(gpa: UInt64, length: UInt64)
    case reset
    case translate(gpa: UInt64, length: UInt64, protection: GuestProtection)
    case write(gpa: UInt64, bytes: [UInt8])
    case read(gpa: UInt64, length: UInt64)
    case touch(gpa: UInt64, access: GuestProtection)
    case dirty(gpa: UInt64, length: UInt64)
    case maps
}

/// Why a trace line cannot be run: printed as `line N: error: MESSAGE`.
public struct GuestTraceError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum GuestTrace {
    /// The most bytes `translate` and `read` take, and `write` writes.
    public static let maxAccess: UInt64 = 4096

    /// The words of a line, comment and white space removed.
    static func words(_ line: some StringProtocol) -> [Substring] {
        var text = Substring(line)
        if let hash = text.firstIndex(of: "#") { text = text[..<hash] }
        return text.split(whereSeparator: isSpace)
    }

    /// White space between words: space, tab, CR, LF, CR LF, VT, FF.
    static func isSpace(_ c: Character) -> Bool {
        c == " " || c == "\t" || c == "\r" || c == "\n" || c == "\r\n" || c == "\u{0B}" || c == "\u{0C}"
    }

    /// The lines of a trace: LF or CR LF ends a line (Swift reads CR LF as
    /// one character, so splitting on LF alone would not).
    public static func lines(_ text: String) -> [Substring] {
        text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
    }

    /// `text` with control characters (C0, DEL, C1) and the Unicode line and
    /// paragraph separators shown as `\u{N}`, so that an error line quoting a
    /// hostile word stays one printable line.
    public static func printable(_ text: String) -> String {
        func isControl(_ u: Unicode.Scalar) -> Bool {
            u.value < 0x20 || (u.value >= 0x7F && u.value <= 0x9F) || u.value == 0x2028 || u.value == 0x2029
        }
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = ""
        for u in text.unicodeScalars {
            if isControl(u) {
                out += "\\u{" + String(u.value, radix: 16) + "}"
            } else {
                out.unicodeScalars.append(u)
            }
        }
        return out
    }

    /// Parses one line; nil for a blank or comment-only line.
    public static func parse(_ line: some StringProtocol) throws(GuestTraceError) -> GuestTraceCommand? {
        let words = self.words(line)
        guard let command = words.first else { return nil }
        let args = Array(words.dropFirst())
        func count(_ range: ClosedRange<Int>, _ usage: String) throws(GuestTraceError) {
            guard range.contains(args.count) else { throw GuestTraceError("usage: \(usage)") }
        }
        switch command {
        case "vm":
            try count(0...2, "vm [ad=hardware|emulated] [format=ept|rvi]")
            var ad: GuestTraceCommand.AccessDirtyMode?, format: GuestTraceCommand.TableFormat?
            for w in args {
                let (key, value) = try option(w)
                switch key {
                case "ad":
                    guard ad == nil else { throw GuestTraceError("ad= given twice") }
                    guard let v = GuestTraceCommand.AccessDirtyMode(rawValue: value) else {
                        throw GuestTraceError("ad=\(value): expected hardware or emulated")
                    }
                    ad = v
                case "format":
                    guard format == nil else { throw GuestTraceError("format= given twice") }
                    guard let v = GuestTraceCommand.TableFormat(rawValue: value) else {
                        throw GuestTraceError("format=\(value): expected ept or rvi")
                    }
                    format = v
                default: throw GuestTraceError("unknown option \(key)")
                }
            }
            return .vm(ad: ad ?? .hardware, format: format ?? .ept)
        case "memseg":
            try count(2...3, "memseg ID LEN [name=NAME]")
            let id = try number(args[0], "ID"), length = try number(args[1], "LEN")
            var name: String?
            if args.count == 3 {
                let (key, value) = try option(args[2])
                guard key == "name" else { throw GuestTraceError("unknown option \(key)") }
                name = value
            }
            return .memseg(id: id, length: length, name: name)
        case "memmap":
            try count(5...6, "memmap GPA ID OFF LEN PROT [wired]")
            let gpa = try number(args[0], "GPA"), id = try number(args[1], "ID")
            let off = try number(args[2], "OFF"), len = try number(args[3], "LEN")
            var wired = false
            if args.count == 6 {
                guard args[5] == "wired" else { throw GuestTraceError("unexpected word \(args[5]); expected wired") }
                wired = true
            }
            return .memmap(gpa: gpa, id: id, offset: off, length: len, protection: GuestProtection(String(args[4])),
                           wired: wired)
        case "munmap":
            try count(2...2, "munmap GPA LEN")
            return .munmap(gpa: try number(args[0], "GPA"), length: try number(args[1], "LEN"))
        case "reset":
            try count(0...0, "reset")
            return .reset
        case "maps":
            try count(0...0, "maps")
            return .maps
        case "translate":
            try count(3...3, "translate GPA LEN PROT")
            let gpa = try number(args[0], "GPA"), len = try access(args[1])
            guard let p = GuestProtection(String(args[2])) else {
                throw GuestTraceError("PROT \(args[2]): expected a non-empty subset of r, w, x in that order")
            }
            return .translate(gpa: gpa, length: len, protection: p)
        case "read":
            try count(2...2, "read GPA LEN")
            return .read(gpa: try number(args[0], "GPA"), length: try access(args[1]))
        case "write":
            try count(2...2, "write GPA HEXBYTES")
            return .write(gpa: try number(args[0], "GPA"), bytes: try hexBytes(args[1]))
        case "touch":
            try count(2...2, "touch GPA r|w|x")
            let gpa = try number(args[0], "GPA")
            let a: GuestProtection
            switch args[1] {
            case "r": a = .read
            case "w": a = .write
            case "x": a = .execute
            default: throw GuestTraceError("access \(args[1]): expected r, w or x")
            }
            return .touch(gpa: gpa, access: a)
        case "dirty":
            try count(2...2, "dirty GPA LEN")
            let gpa = try number(args[0], "GPA"), len = try number(args[1], "LEN")
            guard len >= 1 else { throw GuestTraceError("LEN 0: dirty takes at least 1 byte") }
            return .dirty(gpa: gpa, length: len)
        default:
            throw GuestTraceError("unknown command \(command)")
        }
    }

    /// `key=value`.
    static func option(_ word: Substring) throws(GuestTraceError) -> (String, String) {
        guard let eq = word.firstIndex(of: "=") else { throw GuestTraceError("unexpected word \(word)") }
        return (String(word[..<eq]), String(word[word.index(after: eq)...]))
    }

    /// A LEN of `translate` or `read`: 1 to 4096.
    static func access(_ word: Substring) throws(GuestTraceError) -> UInt64 {
        let n = try number(word, "LEN")
        guard n >= 1, n <= maxAccess else { throw GuestTraceError("LEN \(word): must be 1 to \(maxAccess)") }
        return n
    }

    /// 1 to 4096 bytes as hex digits (two a byte, an optional `0x` before).
    static func hexBytes(_ word: Substring) throws(GuestTraceError) -> [UInt8] {
        var digits = Array(word.utf8)
        if digits.count >= 2, digits[0] == UInt8(ascii: "0"), digits[1] | 0x20 == UInt8(ascii: "x") {
            digits.removeFirst(2)
        }
        guard !digits.isEmpty, digits.count % 2 == 0 else {
            throw GuestTraceError("HEXBYTES: expected an even number of hex digits, got \(digits.count)")
        }
        guard UInt64(digits.count / 2) <= maxAccess else {
            throw GuestTraceError("HEXBYTES: \(digits.count / 2) bytes, write takes 1 to \(maxAccess)")
        }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var i = 0
        while i < digits.count {
            guard let hi = hexValue(digits[i]), let lo = hexValue(digits[i + 1]) else {
                throw GuestTraceError("HEXBYTES: not a hex digit at position \(i + 1)")
            }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    /// Decimal or `0x` hex, with an optional `K`, `M`, `G` or `T` (binary) suffix.
    public static func number(_ word: some StringProtocol, _ what: String) throws(GuestTraceError) -> UInt64 {
        var bytes = Array(word.utf8)
        var unit: UInt64 = 1
        let isHex = bytes.count >= 2 && bytes[0] == UInt8(ascii: "0") && bytes[1] | 0x20 == UInt8(ascii: "x")
        if let last = bytes.last, bytes.count > (isHex ? 2 : 0) {
            // In hex, the letters a-f are digits; K, M, G, T are not.
            switch last | 0x20 {
            case UInt8(ascii: "k"): unit = 1 << 10
            case UInt8(ascii: "m"): unit = 1 << 20
            case UInt8(ascii: "g"): unit = 1 << 30
            case UInt8(ascii: "t"): unit = 1 << 40
            default: break
            }
            if unit != 1 { bytes.removeLast() }
        }
        let digits = isHex ? bytes.dropFirst(2) : bytes[...]
        guard !digits.isEmpty else { throw GuestTraceError("\(what) \(word): not a number") }
        var value: UInt64 = 0
        for b in digits {
            guard let d = isHex ? hexValue(b) : (b >= 0x30 && b <= 0x39 ? b - 0x30 : nil) else {
                throw GuestTraceError("\(what) \(word): not a number")
            }
            let (m, o1) = value.multipliedReportingOverflow(by: isHex ? 16 : 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(d))
            guard !o1, !o2 else { throw GuestTraceError("\(what) \(word): above 2^64 - 1") }
            value = s
        }
        let (scaled, o) = value.multipliedReportingOverflow(by: unit)
        guard !o else { throw GuestTraceError("\(what) \(word): above 2^64 - 1") }
        return scaled
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x61...0x66: return c - 0x61 + 10
        case 0x41...0x46: return c - 0x41 + 10
        default: return nil
        }
    }

    /// The guest-physical space a trace needs: the end of its highest
    /// `memmap` below 2^47, rounded up to 2 MiB (at least 2 MiB). A trace
    /// replayed in a window of this size answers every `memmap` as §7's
    /// `[0, 2^47)` would, without reserving 128 TiB of host address space.
    public static func guestSpace(for text: String) -> UInt64 {
        var top: UInt64 = 2 << 20
        for line in lines(text) {
            guard let command = try? parse(line), case let .memmap(gpa, _, _, len, _, _) = command else { continue }
            let (end, o) = gpa.addingReportingOverflow(len)
            if !o, end <= GuestMemory.addressLimit, end > top { top = end }
        }
        let align: UInt64 = 2 << 20
        return min((top + align - 1) & ~(align - 1), GuestMemory.addressLimit)
    }
}
