/// A run of frames `[lower, upper)`.
public struct FrameRange: Hashable, Sendable, CustomStringConvertible {
    public var lower: PageFrameNumber
    public var upper: PageFrameNumber

    @inlinable
    public init(lower: PageFrameNumber, upper: PageFrameNumber) {
        self.lower = lower
        self.upper = upper
    }

    /// The number of frames in the run.
    @inlinable public var count: UInt64 { upper &- lower }
    @inlinable public var isEmpty: Bool { upper <= lower }
    @inlinable public func contains(_ pfn: PageFrameNumber) -> Bool { pfn >= lower && pfn < upper }

    public var description: String {
        "[0x\(String(lower, radix: 16)), 0x\(String(upper, radix: 16)))"
    }
}
