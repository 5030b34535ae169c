/// Why a SIZE argument (`4096`, `0x1000`, `512M`, `12.5G`, `2T`) was refused.
///
/// Every case carries the text that was given, so a message built from the
/// error alone tells the user what to fix.
public enum SizeParseError: Error, Hashable, Sendable {
    /// Nothing but white space.
    case empty
    /// A leading minus sign: sizes are never negative.
    case negative(String)
    /// The text is not a number optionally followed by a unit.
    case malformed(String)
    /// The number is followed by something that is not one of
    /// `K M G T P` (optionally with `B` or `iB`), or `B` alone.
    case unknownUnit(text: String, unit: String)
    /// The value does not fit in 64 bits.
    case overflow(String)
    /// The value is not a whole number of bytes (`1.5` or `0.3K`).
    case fractionalBytes(String)
}

extension SizeParseError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .empty:
            return "empty size"
        case .negative(let text):
            return "size '\(text)' is negative"
        case .malformed(let text):
            return "size '\(text)' is not a number (expected e.g. 4096, 0x1000, 512M, 12.5G, 2T)"
        case .unknownUnit(let text, let unit):
            return "size '\(text)' has unknown unit '\(unit)' (expected K, M, G, T or P, optionally followed by B or iB)"
        case .overflow(let text):
            return "size '\(text)' does not fit in 64 bits"
        case .fractionalBytes(let text):
            return "size '\(text)' is not a whole number of bytes"
        }
    }
}
