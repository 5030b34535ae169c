/// Ours against a C baseline measured in the same rounds: the two medians
/// and their ratio.
public struct Comparison: Hashable, Sendable {
    /// The Swift path's samples.
    public let ours: TimingSamples
    /// The C baseline's samples, taken turn about with ours.
    public let baseline: TimingSamples

    public init(ours: TimingSamples, baseline: TimingSamples) {
        self.ours = ours
        self.baseline = baseline
    }

    /// Median ns per operation of ours over the C baseline's (above 1: ours
    /// is slower). 0 when the baseline has no samples.
    public var ratio: Double { Self.ratio(ours.median, baseline.median) }

    /// `ours / baseline`, 0 for a baseline of 0 (nothing measured).
    public static func ratio(_ ours: Double, _ baseline: Double) -> Double {
        baseline > 0 ? ours / baseline : 0
    }
}
