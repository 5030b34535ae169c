import HostMemory
import HostSegments

/// How a host-memory workload fails. A bad argument is an error naming the
/// value, never a trap; a failure of the host or of the C baseline names the
/// call and its errno; a fill that put the wrong bytes in place names the
/// page, so that a benchmark cannot report the speed of a wrong answer.
public enum HostWorkloadError: Error, Hashable, Sendable {
    /// A count or size out of its range (0 pages, a size not a multiple of
    /// 4096, too many segments for the window, ...).
    case invalidArgument(name: String, value: UInt64, reason: String)
    /// The host address space refused (it names the values).
    case host(HostSegmentError)
    /// A C baseline failed: which one and the errno it returned.
    case baseline(name: String, errno: Int32)
    /// userfaultfd cannot be used here, so the fault workloads cannot run.
    case userfaultfdUnavailable(reason: String)
    /// After a timed touch, a page did not hold what its fill should have put there.
    case wrongContents(workload: String, page: UInt64, expected: UInt64, found: UInt64)
    /// A system call of the workload itself (making the page-cache file) failed.
    case system(call: String, errno: Int32, detail: String)
}

extension HostWorkloadError: CustomStringConvertible {
    public var description: String {
        switch self {
        case let .invalidArgument(name, value, reason): return "\(name) \(value): \(reason)"
        case let .host(e): return e.description
        case let .baseline(name, e): return "the C baseline \(name) failed with \(HostMemoryError.errnoName(e))"
        case let .userfaultfdUnavailable(reason): return "userfaultfd is not available: \(reason)"
        case let .wrongContents(workload, page, expected, found):
            return "\(workload): page \(page) holds \(found) where \(expected) was expected"
        case let .system(call, e, detail): return "\(call) failed (\(HostMemoryError.errnoName(e))) \(detail)"
        }
    }
}

extension HostWorkloadError {
    /// Wraps a host-memory error.
    static func hostMemory(_ e: HostMemoryError) -> HostWorkloadError { .host(.host(e)) }

    /// Refuses a count below `minimum` or above `maximum`.
    static func checkCount(_ name: String, _ value: Int, minimum: Int = 1,
                           maximum: Int = Int.max) throws(HostWorkloadError) {
        guard value >= minimum else {
            throw .invalidArgument(name: name, value: UInt64(max(value, 0)),
                                   reason: "must be at least \(minimum)" + (value < 0 ? " (got \(value))" : ""))
        }
        guard value <= maximum else {
            throw .invalidArgument(name: name, value: UInt64(value), reason: "must be at most \(maximum)")
        }
    }
}
