/// Host page protections, as `mmap` and `mprotect` take them.
public struct HostProtection: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let read = HostProtection(rawValue: 1)
    public static let write = HostProtection(rawValue: 2)
    public static let execute = HostProtection(rawValue: 4)
    public static let none: HostProtection = []
    public static let readWrite: HostProtection = [.read, .write]
    public static let all: HostProtection = [.read, .write, .execute]

    /// The `PROT_*` bits (Linux numbers them as illumos does: 1, 2, 4).
    public var systemValue: Int32 { Int32(rawValue & 7) }

    /// `rwx`, `r--`, `---`.
    public var description: String {
        (contains(.read) ? "r" : "-") + (contains(.write) ? "w" : "-") + (contains(.execute) ? "x" : "-")
    }
}
