/// Nanoseconds per operation, one sample per timed repeat, and their
/// median: the figure a workload reports.
///
/// A repeat times many operations in one piece (every page of a region, a
/// thousand map and unmap pairs, a hundred thousand lookups) and divides;
/// the repeats are then summarised by their median, which one slow second
/// of a virtual machine cannot move, with the fastest and slowest repeat
/// beside it for the spread.
public struct TimingSamples: Hashable, Sendable {
    /// Nanoseconds per operation of each repeat, in the order they ran.
    public private(set) var nsPerOp: [Double] = []
    /// Operations timed in each repeat.
    public let opsPerRepeat: Int

    public init(opsPerRepeat: Int) { self.opsPerRepeat = opsPerRepeat }

    /// Records a repeat that took `nanoseconds` for ``opsPerRepeat`` operations.
    public mutating func record(nanoseconds: UInt64) {
        nsPerOp.append(Double(nanoseconds) / Double(max(opsPerRepeat, 1)))
    }

    /// Repeats recorded.
    public var count: Int { nsPerOp.count }

    /// The median (the mean of the middle two for an even count); 0 when empty.
    public var median: Double {
        guard !nsPerOp.isEmpty else { return 0 }
        let s = nsPerOp.sorted()
        let m = s.count / 2
        return s.count % 2 == 1 ? s[m] : (s[m - 1] + s[m]) / 2
    }

    /// The fastest repeat; 0 when empty.
    public var minimum: Double { nsPerOp.min() ?? 0 }
    /// The slowest repeat; 0 when empty.
    public var maximum: Double { nsPerOp.max() ?? 0 }
}
