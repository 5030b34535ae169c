/// What the amd64 large-memory adjustment of `startup_memlist()` did.
///
/// Both rules compute a candidate `segkpm_base` and then clamp it. The
/// candidate and the clamp are what the checks report: a pre-12608 candidate
/// *above* `SEGKPM_BASE` is the 12608 miscalculation; a candidate below
/// `AMD64_VA_HOLE_END + 1 TiB` means the rule wanted more VA than exists.
public struct LargeMemoryAdjustment: Sendable, Hashable {
    public enum Clamp: String, Sendable, Hashable {
        /// The candidate was used as computed.
        case none
        /// Raised to the floor `AMD64_VA_HOLE_END + 1 TiB`.
        case toFloor = "floor"
        /// Lowered to the default `SEGKPM_BASE` (pre-12608 only).
        case toDefault = "default"
    }

    /// Whether the adjustment branch ran (memory above 256 GiB, or, before
    /// 12608, a DR maximum above 256 GiB).
    public var triggered: Bool
    /// The amount the rule scales: `PMAX` (post), or
    /// `kpm_resv_amount = max(PMAX, ptob(plat_dr_physmax))` (pre).
    public var reservation: UInt64
    /// The shift below `SEGKPM_BASE` the post rule asked for,
    /// `P2ROUNDUP(8 × (PMAX − 256 GiB), 512 GiB)`; 0 for pre-12608 or when not triggered.
    public var shift: UInt64
    /// The `segkpm_base` the rule computed before clamping (pre-12608: the
    /// two's-complement `−P2ROUNDUP(4K, 512 GiB)`).
    public var candidateSegkpmBase: UInt64
    /// Which clamp, if any, applied.
    public var clamp: Clamp

    public static let notTriggered = LargeMemoryAdjustment(
        triggered: false, reservation: 0, shift: 0, candidateSegkpmBase: 0, clamp: .none)

    /// The pre-12608 expression `−P2ROUNDUP(4 × K, KERNEL_REDZONE_SIZE)` in
    /// 64-bit two's complement, before any clamp (`kernel-layout.md` §1.6).
    /// `nil` if `4 × K` does not fit in 64 bits.
    public static func pre12608Candidate(reservation: UInt64) -> UInt64? {
        var tracker = OverflowTracker()
        let rounded = tracker.roundUp(tracker.mul(4, reservation), AMD64.kernelRedzoneSize)
        return tracker.wrapped ? nil : 0 &- rounded
    }

    /// The post-12608 shift `P2ROUNDUP(8 × (PMAX − 256 GiB), KERNEL_REDZONE_SIZE)`
    /// (0 at or below the threshold). `nil` if it does not fit in 64 bits.
    public static func post12608Shift(physmax: UInt64) -> UInt64? {
        guard physmax > AMD64.largeMemoryThreshold else { return 0 }
        var tracker = OverflowTracker()
        let shift = tracker.roundUp(tracker.mul(8, physmax - AMD64.largeMemoryThreshold),
                                    AMD64.kernelRedzoneSize)
        return tracker.wrapped ? nil : shift
    }
}

