/// How an arena chooses among free segments (illumos `VM_INSTANTFIT`,
/// `VM_BESTFIT`, `VM_FIRSTFIT`, `VM_NEXTFIT`).
public enum AllocationPolicy: Sendable, Hashable, CaseIterable {
    /// Constant time: the head of the lowest free list whose every member is big
    /// enough. The default.
    case instantFit
    /// The smallest free segment that fits (first among equals).
    case bestFit
    /// The first segment that fits, walking the lists upward from the
    /// "might fit" list.
    case firstFit
    /// The first big-enough free segment after the rotor; cycles through the
    /// whole space before reusing an address (identifiers, use-after-free).
    /// `alloc` only: `xalloc` searches with it as with ``instantFit``.
    case nextFit
}

/// Whether an allocation that finds no room fails at once or waits for a free.
///
/// A plain value of two words so that passing the default costs nothing on the
/// allocation fast path.
public struct WaitPolicy: Sendable {
    public enum Mode: UInt8, Sendable { case noSleep, sleep }
    public var mode: Mode
    /// Monotonic-clock nanoseconds after which a sleeping allocation gives up
    /// with ``VmemError/timedOut(arena:size:)``; 0 means never.
    public var deadlineNanoseconds: UInt64
    /// When set, cancelling the token wakes the waiter with ``VmemError/cancelled(arena:size:)``.
    public var token: CancellationToken?

    @inlinable
    public init(mode: Mode, deadlineNanoseconds: UInt64 = 0, token: CancellationToken? = nil) {
        self.mode = mode; self.deadlineNanoseconds = deadlineNanoseconds; self.token = token
    }

    /// Fail at once (`VM_NOSLEEP`).
    @inlinable public static var noSleep: WaitPolicy { WaitPolicy(mode: .noSleep) }
    /// Wait as long as it takes (`VM_SLEEP`).
    @inlinable public static var sleep: WaitPolicy { WaitPolicy(mode: .sleep) }
    /// Wait until `deadline` at the latest.
    public static func until(_ deadline: ContinuousClock.Instant, token: CancellationToken? = nil) -> WaitPolicy {
        timeout(ContinuousClock.now.duration(to: deadline), token: token)
    }
    /// Wait at most `timeout` (a zero or negative timeout fails at the first wait).
    public static func timeout(_ timeout: Duration, token: CancellationToken? = nil) -> WaitPolicy {
        let (secs, atto) = timeout.components
        let ns: Int64
        if secs < 0 || (secs == 0 && atto <= 0) { ns = 1 }
        else { ns = secs > Int64.max / 1_000_000_000 - 1 ? Int64.max / 2 : secs * 1_000_000_000 + atto / 1_000_000_000 }
        return WaitPolicy(mode: .sleep, deadlineNanoseconds: monotonicNanoseconds() &+ UInt64(max(ns, 1)), token: token)
    }
    /// Wait until the token is cancelled or a free makes room.
    public static func cancellable(_ token: CancellationToken) -> WaitPolicy {
        WaitPolicy(mode: .sleep, token: token)
    }
}
