/// How a host-memory operation fails. Every case names the values that were
/// refused, so that a message can be read without the code.
public enum HostMemoryError: Error, Hashable, Sendable {
    /// A system call failed: which call, its errno, and on what.
    case system(call: String, errno: Int32, detail: String)
    /// A value that must be a multiple of `alignment` is not.
    case notAligned(what: String, value: UInt64, alignment: UInt64)
    /// A range of no bytes.
    case zeroLength(address: UInt64)
    /// `address + length` passes 2^64.
    case rangeWraps(address: UInt64, length: UInt64)
    /// The range is not inside the reservation's window.
    case outsideWindow(address: UInt64, length: UInt64, windowBase: UInt64, windowSize: UInt64)
    /// A reservation size that is zero, not a multiple of 2 MiB, or too large.
    case invalidWindowSize(UInt64)
    /// A mapping asked for rights the object does not give (a shared write of a
    /// file opened read-only, exec of a memfd made without it).
    case protectionExceedsObject(requested: HostProtection, allowed: HostProtection, object: String)
    /// The object ends before `offset + length`.
    case objectTooShort(object: String, objectSize: UInt64, offset: UInt64, length: UInt64)
    /// userfaultfd cannot be used here; the reason says why.
    case userfaultfdUnavailable(reason: String)
    /// The reservation or service was already destroyed.
    case destroyed(what: String)
    /// The call would wait for the thread that makes it (stopping the fault
    /// service from one of its own handler threads).
    case calledFromHandler(operation: String)
    /// The guard reporter's table is full.
    case guardTableFull(capacity: Int)
    /// A count, size or option out of its range.
    case invalidArgument(name: String, value: UInt64, reason: String)
}

extension HostMemoryError: CustomStringConvertible {
    public var description: String {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        switch self {
        case let .system(call, e, detail):
            return "\(call) failed (\(HostMemoryError.errnoName(e))) \(detail)"
        case let .notAligned(what, v, a): return "\(what) \(hex(v)) is not a multiple of \(hex(a))"
        case let .zeroLength(a): return "a range of 0 bytes at \(hex(a))"
        case let .rangeWraps(a, l): return "[\(hex(a)), +\(hex(l))) wraps past 2^64"
        case let .outsideWindow(a, l, b, s):
            return "[\(hex(a)), +\(hex(l))) is outside the window [\(hex(b)), +\(hex(s)))"
        case let .invalidWindowSize(s): return "window size \(hex(s)) must be a non-zero multiple of 2 MiB below 2^47"
        case let .protectionExceedsObject(r, a, o):
            return "protection \(r) exceeds what \(o) allows (\(a))"
        case let .objectTooShort(o, size, off, len):
            return "\(o) has \(size) bytes; [\(hex(off)), +\(hex(len))) reaches past its end"
        case let .userfaultfdUnavailable(r): return "userfaultfd is not available: \(r)"
        case let .destroyed(w): return "\(w) was already destroyed"
        case let .calledFromHandler(op): return "\(op) called from a fault-handler thread would wait for itself"
        case let .guardTableFull(c): return "the guard reporter's table of \(c) ranges is full"
        case let .invalidArgument(n, v, r): return "\(n) \(v): \(r)"
        }
    }

    /// The errno that stands for this failure where a caller reports errnos:
    /// the system call's own, else `EINVAL` (the value was refused before
    /// any call was made).
    public var errnoValue: Int32 {
        if case let .system(_, e, _) = self { return e }
        return 22  // EINVAL
    }

    /// `EINVAL (22)` style names for the errnos a host operation meets.
    public static func errnoName(_ e: Int32) -> String {
        let names: [Int32: String] = [1: "EPERM", 2: "ENOENT", 4: "EINTR", 9: "EBADF", 11: "EAGAIN", 12: "ENOMEM",
                                      13: "EACCES", 14: "EFAULT", 16: "EBUSY", 17: "EEXIST", 19: "ENODEV",
                                      22: "EINVAL", 24: "EMFILE", 28: "ENOSPC", 38: "ENOSYS", 95: "EOPNOTSUPP"]
        return "\(names[e] ?? "errno") (\(e))"
    }
}
