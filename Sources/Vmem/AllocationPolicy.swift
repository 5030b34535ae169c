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
    case nextFit
}

/// Whether an allocation that finds no room fails at once or waits for a free.
public struct WaitPolicy: Sendable {
    public enum Mode: Sendable { case noSleep, sleep }
    public var mode: Mode
    /// When set, a sleeping allocation gives up with ``VmemError/timedOut(arena:size:)``.
    public var deadline: ContinuousClock.Instant?
    /// When set, cancelling the token wakes the waiter with ``VmemError/cancelled(arena:size:)``.
    public var token: CancellationToken?

    /// Fail at once (`VM_NOSLEEP`).
    public static let noSleep = WaitPolicy(mode: .noSleep, deadline: nil, token: nil)
    /// Wait as long as it takes (`VM_SLEEP`).
    public static let sleep = WaitPolicy(mode: .sleep, deadline: nil, token: nil)
    /// Wait until `deadline` at the latest.
    public static func until(_ deadline: ContinuousClock.Instant, token: CancellationToken? = nil) -> WaitPolicy {
        WaitPolicy(mode: .sleep, deadline: deadline, token: token)
    }
    /// Wait at most `timeout`.
    public static func timeout(_ timeout: Duration, token: CancellationToken? = nil) -> WaitPolicy {
        WaitPolicy(mode: .sleep, deadline: ContinuousClock.now.advanced(by: timeout), token: token)
    }
    /// Wait until the token is cancelled or a free makes room.
    public static func cancellable(_ token: CancellationToken) -> WaitPolicy {
        WaitPolicy(mode: .sleep, deadline: nil, token: token)
    }
}
