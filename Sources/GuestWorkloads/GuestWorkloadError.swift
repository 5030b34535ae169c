import GuestMemory
import HostWorkloads

/// How a guest-memory workload fails: a bad argument names the value (never
/// a trap); a refusal of GuestMemory or of the turn-about runner is wrapped;
/// a wrong answer (a translation that missed, a harvest that lost a page)
/// names the workload, so that no figure is the speed of a wrong answer.
public enum GuestWorkloadError: Error, Hashable, Sendable {
    case invalidArgument(name: String, value: UInt64, reason: String)
    case guest(GuestMemoryError)
    case rounds(HostWorkloadError)
    case wrongResult(workload: String, detail: String)
}

extension GuestWorkloadError: CustomStringConvertible {
    public var description: String {
        switch self {
        case let .invalidArgument(name, value, reason): return "\(name) \(value): \(reason)"
        case let .guest(e): return "guest memory: \(e)"
        case let .rounds(e): return e.description
        case let .wrongResult(workload, detail): return "\(workload): \(detail)"
        }
    }
}

extension GuestWorkloadError {
    static func checkCount(_ name: String, _ value: Int, minimum: Int = 1, maximum: Int) throws(GuestWorkloadError) {
        guard value >= minimum, value <= maximum else {
            throw .invalidArgument(name: name, value: UInt64(max(value, 0)),
                                   reason: "must be from \(minimum) to \(maximum)" + (value < 0 ? " (got \(value))" : ""))
        }
    }

    static func checkSize(_ name: String, _ value: UInt64, minimum: UInt64, maximum: UInt64) throws(GuestWorkloadError) {
        guard value >= minimum, value <= maximum, value % GuestMemory.pageSize == 0 else {
            throw .invalidArgument(name: name, value: value,
                                   reason: "must be a multiple of 4096 from \(minimum) to \(maximum) bytes")
        }
    }

    /// Runs the arms turn about, turning the runner's error into ours and
    /// an arm's stashed failure (see ``Stash``) back into the real one.
    static func rounds(_ arms: [InterleavedRounds.Arm], repeats: Int, warmup: Int, stash: Stash,
                       progress: (Int, Int) -> Void) throws(GuestWorkloadError) -> [TimingSamples] {
        do throws(HostWorkloadError) {
            return try InterleavedRounds(arms, repeats: repeats, warmup: warmup).run(progress: progress)
        } catch {
            if let e = stash.error { throw e }
            throw .rounds(error)
        }
    }
}

/// Where an arm (whose body may only throw `HostWorkloadError`) leaves the
/// guest-side error that stopped it.
final class Stash: @unchecked Sendable {
    var error: GuestWorkloadError?

    /// Records `error` and returns the runner-side error that stops the rounds.
    func fail(_ error: GuestWorkloadError) -> HostWorkloadError {
        self.error = error
        return .invalidArgument(name: "guest workload", value: 0, reason: error.description)
    }
}

/// A seeded generator (splitmix64): the same GPAs in every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
