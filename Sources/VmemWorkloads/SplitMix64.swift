/// splitmix64, the generator vmem.md §6 fixes so that any allocator can run
/// the identical sequence. Also the reproducible generator of every
/// randomized test in the package.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64 = 42) { state = seed }
    @inlinable public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// A value in `0..<n` (n > 0).
    @inlinable public mutating func below(_ n: UInt64) -> UInt64 { next() % n }
    /// True `percent` times in a hundred.
    @inlinable public mutating func chance(_ percent: UInt64) -> Bool { next() % 100 < percent }
}
