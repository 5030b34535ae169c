/// How an address-space operation fails; each case names the values involved.
public enum AddressSpaceError: Error, Hashable, Sendable {
    /// A size of zero where a range is needed.
    case zeroSize(address: UInt64)
    /// `address + size` (page-rounded) wraps past 2^64 (as_map's `ENOMEM`).
    case rangeWraps(address: UInt64, size: UInt64)
    /// `a_size` would overflow.
    case sizeOverflow(current: UInt64, adding: UInt64)
    /// The range overlaps an existing segment (`as_addseg` fails).
    case overlap(base: UInt64, size: UInt64, existingBase: UInt64, existingSize: UInt64)
    /// The range reaches above the user limit or into the VA hole.
    case invalidRange(base: UInt64, size: UInt64, reason: String)
    /// `RLIMIT_VMEM` would be exceeded.
    case resourceLimit(size: UInt64, limit: UInt64)
    /// A segment's base or size is not page aligned (attach of a prepared segment).
    case notPageAligned(UInt64)
    /// A fault that could not be resolved.
    case fault(FaultCode, address: UInt64)
    /// A segment driver refused the operation.
    case segment(SegmentError, segmentBase: UInt64)
    /// Unmap found locked pages and may not wait (`EAGAIN`).
    case busy(segmentBase: UInt64, address: UInt64, size: UInt64)
    /// A driver kept answering `IE_RETRY` (or `EDEADLK`) past the retry limit.
    case retryLimitExceeded(operation: String, attempts: Int)
    /// No hole of the size asked for in the range.
    case noGap(minimumLength: UInt64, base: UInt64, length: UInt64)
    /// No segment at this address.
    case noSegment(address: UInt64)
    /// ``AddressSpace/verify()`` found a broken invariant.
    case invariantViolated(String)

    /// The fault code when this error ended a fault.
    public var faultCode: FaultCode? {
        switch self {
        case .fault(let c, _): return c
        case .segment(.fault(let c, _), _): return c
        case .segment(.notSupported(.fault, _), _): return .notSupported
        default: return nil
        }
    }
}

extension AddressSpaceError: CustomStringConvertible {
    public var description: String {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        switch self {
        case .zeroSize(let a): return "as: zero size at \(hex(a))"
        case let .rangeWraps(a, s): return "as: [\(hex(a)), +\(hex(s))) wraps"
        case let .sizeOverflow(c, a): return "as: a_size \(hex(c)) + \(hex(a)) overflows"
        case let .overlap(b, s, eb, es):
            return "as: [\(hex(b)), +\(hex(s))) overlaps segment [\(hex(eb)), +\(hex(es)))"
        case let .invalidRange(b, s, r): return "as: [\(hex(b)), +\(hex(s))) invalid: \(r)"
        case let .resourceLimit(s, l): return "as: \(hex(s)) exceeds RLIMIT_VMEM \(hex(l))"
        case .notPageAligned(let v): return "as: \(hex(v)) is not page aligned"
        case let .fault(c, a): return "as: \(c) at \(hex(a))"
        case let .segment(e, b): return "as: segment at \(hex(b)): \(e)"
        case let .busy(b, a, s): return "as: segment at \(hex(b)) has locked pages in [\(hex(a)), +\(hex(s)))"
        case let .retryLimitExceeded(op, n): return "as: \(op) still retrying after \(n) attempts"
        case let .noGap(m, b, l): return "as: no gap of \(hex(m)) in [\(hex(b)), +\(hex(l)))"
        case .noSegment(let a): return "as: no segment at \(hex(a))"
        case .invariantViolated(let s): return "as: invariant violated: \(s)"
        }
    }
}
