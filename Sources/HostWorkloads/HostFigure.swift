/// One figure of `vmkit bench as`: a workload's median nanoseconds per
/// operation, with its spread, and — where it was measured against a C
/// baseline in the same rounds — the ratio of ours over C.
public struct HostFigure: Hashable, Sendable {
    /// What a figure must reach: the issue's targets.
    public enum Target: Hashable, Sendable, CustomStringConvertible {
        /// Ours over the C baseline at most this.
        case ratioAtMost(Double)
        /// Nanoseconds per operation at most this.
        case nsPerOpAtMost(Double)
        /// At least this many 10^9 bytes per second.
        case gbPerSecondAtLeast(Double)

        public var description: String {
            switch self {
            case .ratioAtMost(let r): return "<= \(HostFigure.number(r, 2))x C"
            case .nsPerOpAtMost(let n): return "<= \(HostFigure.number(n, 0)) ns"
            case .gbPerSecondAtLeast(let g): return ">= \(HostFigure.number(g, 2)) GB/s"
            }
        }
    }

    /// `fault.zero-fill`, `fault.zero-fill.c`, `lazy-fill`, `segat`, ...
    public var name: String
    /// What one operation is: `fault`, `page`, `pair`, `lookup`.
    public var operation: String
    /// The median repeat's nanoseconds per operation.
    public var nsPerOp: Double
    /// The fastest and slowest repeat's.
    public var nsPerOpMin: Double
    public var nsPerOpMax: Double
    /// Timed repeats, and operations in each.
    public var repeats: Int
    public var opsPerRepeat: Int
    /// Ours over the C baseline's median (only on figures that have one).
    public var ratio: Double?
    /// The C baseline's figure name (only with `ratio`).
    public var baseline: String?
    /// 10^9 bytes per second (the lazy fill).
    public var gbPerSecond: Double?
    /// The target, if the issue sets one.
    public var target: Target?

    public init(name: String, operation: String, samples: TimingSamples, ratio: Double? = nil,
                baseline: String? = nil, gbPerSecond: Double? = nil, target: Target? = nil) {
        self.name = name
        self.operation = operation
        nsPerOp = samples.median
        nsPerOpMin = samples.minimum
        nsPerOpMax = samples.maximum
        repeats = samples.count
        opsPerRepeat = samples.opsPerRepeat
        self.ratio = ratio
        self.baseline = baseline
        self.gbPerSecond = gbPerSecond
        self.target = target
    }

    /// Whether the figure meets its target (nil without one).
    public var meetsTarget: Bool? {
        switch target {
        case nil: return nil
        case .ratioAtMost(let r)?: return ratio.map { $0 <= r }
        case .nsPerOpAtMost(let n)?: return nsPerOp <= n
        case .gbPerSecondAtLeast(let g)?: return gbPerSecond.map { $0 >= g }
        }
    }

    /// The figure as one line of JSON: `name`, `nsPerOp`, then `ratio` and
    /// `baseline` only where there is a C baseline, `gbPerSecond` only for
    /// the lazy fill, then the spread and the target.
    public var jsonLine: String {
        var fields: [String] = ["\"name\": \(Self.quoted(name))", "\"nsPerOp\": \(Self.json(nsPerOp, 2))"]
        if let ratio { fields.append("\"ratio\": \(Self.json(ratio, 3))") }
        if let baseline { fields.append("\"baseline\": \(Self.quoted(baseline))") }
        if let gbPerSecond { fields.append("\"gbPerSecond\": \(Self.json(gbPerSecond, 3))") }
        fields.append("\"operation\": \(Self.quoted(operation))")
        fields.append("\"nsPerOpMin\": \(Self.json(nsPerOpMin, 2))")
        fields.append("\"nsPerOpMax\": \(Self.json(nsPerOpMax, 2))")
        fields.append("\"repeats\": \(repeats)")
        fields.append("\"opsPerRepeat\": \(opsPerRepeat)")
        if let target {
            fields.append("\"target\": \(Self.quoted(target.description))")
            fields.append("\"met\": \(meetsTarget.map { $0 ? "true" : "false" } ?? "null")")
        }
        return "{" + fields.joined(separator: ", ") + "}"
    }

    /// `value` rounded to `places` decimals, as JSON (`null` when not finite).
    static func json(_ value: Double, _ places: Int) -> String {
        value.isFinite ? number(value, places) : "null"
    }

    /// `value` with `places` decimals, no exponent (finite values).
    static func number(_ value: Double, _ places: Int) -> String {
        guard value.isFinite else { return value.isNaN ? "nan" : (value < 0 ? "-inf" : "inf") }
        var scale: Double = 1
        for _ in 0..<places { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9.0e18 else { return String(value) }
        let n = UInt64(scaled)
        let s = UInt64(scale)
        let whole = String(n / s)
        let sign = value < 0 && n != 0 ? "-" : ""
        guard places > 0 else { return sign + whole }
        var frac = String(n % s)
        while frac.count < places { frac = "0" + frac }
        return sign + whole + "." + frac
    }

    static func quoted(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default:
                if c.value < 0x20 { out += "\\u00" + (c.value < 0x10 ? "0" : "") + String(c.value, radix: 16) }
                else { out.unicodeScalars.append(c) }
            }
        }
        return out + "\""
    }
}
