import AddressSpace
import HostMemory

/// How an operation on a host address space fails: the host refused
/// (a system call, a range outside the window, rights an object does not
/// give), or the address space did (overlap, no gap, locked pages).
public enum HostSegmentError: Error, Hashable, Sendable {
    case host(HostMemoryError)
    case addressSpace(AddressSpaceError)
    /// A count, size or option out of its range.
    case invalidArgument(name: String, value: UInt64, reason: String)
}

extension HostSegmentError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .host(let e): return e.description
        case .addressSpace(let e): return e.description
        case let .invalidArgument(n, v, r): return "\(n) \(v) (0x\(String(v, radix: 16))): \(r)"
        }
    }
}
