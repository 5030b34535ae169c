/// Mapping protections (`PROT_*` of `sys/mman.h`), as segment drivers and the
/// HAT take them.
public struct Protection: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `PROT_READ`
    public static let read = Protection(rawValue: 0x1)
    /// `PROT_WRITE`
    public static let write = Protection(rawValue: 0x2)
    /// `PROT_EXEC`
    public static let execute = Protection(rawValue: 0x4)
    /// `PROT_USER`: user-accessible (kernel segments leave it out).
    public static let user = Protection(rawValue: 0x8)
    /// `PROT_ZFOD` = read | write | exec | user.
    public static let zfod: Protection = [.read, .write, .execute, .user]
    /// `PROT_ALL`
    public static let all: Protection = [.read, .write, .execute, .user]
    /// `PROT_NONE`
    public static let none: Protection = []

    public var description: String {
        (contains(.read) ? "r" : "-") + (contains(.write) ? "w" : "-") + (contains(.execute) ? "x" : "-")
            + (contains(.user) ? "u" : "-")
    }
}

/// `enum fault_type`: why `as_fault` is called.
public enum FaultType: Int, Hashable, Sendable, CaseIterable {
    /// `F_INVAL`: no valid translation.
    case invalid = 0
    /// `F_PROT`: a protection violation.
    case protection = 1
    /// `F_SOFTLOCK`: fault in and lock the translations (physio).
    case softLock = 2
    /// `F_SOFTUNLOCK`: release an `F_SOFTLOCK`.
    case softUnlock = 3
}

/// `enum seg_rw`: the access that caused a fault.
public enum SegmentAccess: Int, Hashable, Sendable, CaseIterable {
    /// `S_OTHER`: none in particular (used to undo soft locks).
    case other = 0
    /// `S_READ`
    case read = 1
    /// `S_WRITE`
    case write = 2
    /// `S_EXEC`
    case execute = 3
    /// `S_CREATE`
    case create = 4
    /// `S_READ_NOCOW`
    case readNoCOW = 5
}

/// `faultcode_t`: how a fault failed (`vm/faultcode.h`).
public enum FaultCode: Hashable, Sendable, CustomStringConvertible {
    /// `FC_HWERR` (0x1)
    case hardwareError
    /// `FC_ALIGN` (0x2)
    case alignment
    /// `FC_OBJERR` (0x3) with the errno in bits 8 and up (`FC_MAKE_ERR`).
    case objectError(errno: Int32)
    /// `FC_PROT` (0x4)
    case protection
    /// `FC_NOMAP` (0x5): no segment maps the address.
    case noMapping
    /// `FC_NOSUPPORT` (0x6)
    case notSupported

    /// The `faultcode_t` value.
    public var rawValue: UInt32 {
        switch self {
        case .hardwareError: return 0x1
        case .alignment: return 0x2
        case .objectError(let e): return UInt32(bitPattern: e) << 8 | 0x3
        case .protection: return 0x4
        case .noMapping: return 0x5
        case .notSupported: return 0x6
        }
    }

    public var description: String {
        switch self {
        case .hardwareError: return "FC_HWERR"
        case .alignment: return "FC_ALIGN"
        case .objectError(let e): return "FC_OBJERR(\(e))"
        case .protection: return "FC_PROT"
        case .noMapping: return "FC_NOMAP"
        case .notSupported: return "FC_NOSUPPORT"
        }
    }
}
