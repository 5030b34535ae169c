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
}
