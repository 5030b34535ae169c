/// How a segment driver operation fails.
public enum SegmentError: Error, Hashable, Sendable {
    /// The driver's ops table has no such entry (illumos: NULL, `*_badop`
    /// which panics, or `seg_inherit_notsup`).
    case notSupported(SegmentOperation, driver: String)
    /// A fault or faulta result (`faultcode_t`).
    case fault(FaultCode, address: UInt64)
    /// `EAGAIN`: pages in the range are locked; the caller may wait and retry.
    case again(address: UInt64, size: UInt64)
    /// `IE_RETRY`: the driver changed the segment structure; start over.
    case retry
    /// Any other errno (`EINVAL`, `ENOMEM`, `EACCES`, `EFAULT`, `ENOTSUP` ...),
    /// with the operation that returned it.
    case errno(Int32, operation: SegmentOperation)
    /// A driver answered an op with something the address space cannot apply
    /// (an unmap outcome outside the segment, say); the text says what.
    case invalidResult(String)
}

/// errno values the model uses (Linux and illumos agree on these).
public enum Errno {
    public static let EPERM: Int32 = 1
    public static let EAGAIN: Int32 = 11
    public static let ENOMEM: Int32 = 12
    public static let EACCES: Int32 = 13
    public static let EFAULT: Int32 = 14
    public static let EINVAL: Int32 = 22
    /// illumos `EDEADLK` (45); `as_fault` retries after it.
    public static let EDEADLK: Int32 = 45
    /// illumos `ENOTSUP` (48).
    public static let ENOTSUP: Int32 = 48
}

extension SegmentError: CustomStringConvertible {
    public var description: String {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        switch self {
        case let .notSupported(op, d): return "\(d): \(op) not supported"
        case let .fault(c, a): return "\(c) at \(hex(a))"
        case let .again(a, s): return "EAGAIN: pages locked in [\(hex(a)), +\(hex(s)))"
        case .retry: return "IE_RETRY"
        case let .errno(e, op): return "\(op): errno \(e)"
        case .invalidResult(let s): return "invalid driver result: \(s)"
        }
    }
}
