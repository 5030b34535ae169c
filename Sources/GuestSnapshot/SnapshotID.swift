/// A snapshot file's identity: 128 random bits drawn when it is written. A
/// diff records its parent's id (and its base's), so a chain applied in the
/// wrong order, or to the wrong base, is refused before any page moves.
public struct SnapshotID: Hashable, Sendable, CustomStringConvertible {
    public let high: UInt64
    public let low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A fresh random id (the system generator: `getrandom`).
    public static func random() -> SnapshotID {
        var g = SystemRandomNumberGenerator()
        return SnapshotID(high: g.next(), low: g.next())
    }

    /// All zeros: "none" (a full snapshot's parent).
    public static let none = SnapshotID(high: 0, low: 0)

    /// 32 hex digits.
    public var description: String {
        let h = String(high, radix: 16), l = String(low, radix: 16)
        return String(repeating: "0", count: 16 - h.count) + h + String(repeating: "0", count: 16 - l.count) + l
    }
}
