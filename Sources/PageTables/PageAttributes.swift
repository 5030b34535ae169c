/// What a mapping allows and how it is cached, independent of the entry
/// format; each ``PTEFormat`` encodes what it can and refuses what it cannot.
public struct PageAttributes: Hashable, Sendable, CustomStringConvertible {
    /// Kinds of access a mapping permits.
    public struct Access: OptionSet, Hashable, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let read = Access(rawValue: 1)
        public static let write = Access(rawValue: 2)
        public static let execute = Access(rawValue: 4)
        public static let readWrite: Access = [.read, .write]
        public static let all: Access = [.read, .write, .execute]
    }

    /// Memory types. x86-64 entries without the PAT bit reach the first four
    /// through PWT/PCD with the power-on PAT; EPT names its own in bits 3..5.
    public enum CacheType: Hashable, Sendable {
        case writeBack
        case writeThrough
        /// UC- (x86 PAT entry 2).
        case uncacheableMinus
        case uncacheable
        case writeCombining
        case writeProtected
    }

    public var access: Access
    /// User-accessible (x86 US).
    public var user: Bool
    /// Global (x86 G): survives a CR3 reload.
    public var global: Bool
    public var cache: CacheType
    /// Accessed bit (set by the walker on use).
    public var accessed: Bool
    /// Dirty bit (set by the walker on write).
    public var dirty: Bool
    /// EPT IPAT: ignore the guest's PAT for this mapping.
    public var ignoreGuestPAT: Bool

    public init(access: Access = .readWrite, user: Bool = false, global: Bool = false,
                cache: CacheType = .writeBack, accessed: Bool = false, dirty: Bool = false,
                ignoreGuestPAT: Bool = false) {
        self.access = access
        self.user = user
        self.global = global
        self.cache = cache
        self.accessed = accessed
        self.dirty = dirty
        self.ignoreGuestPAT = ignoreGuestPAT
    }

    /// Kernel data: read/write, not executable, supervisor only.
    public static let kernelData = PageAttributes(access: .readWrite)
    /// Kernel text: read/execute.
    public static let kernelText = PageAttributes(access: [.read, .execute])
    /// User data.
    public static let userData = PageAttributes(access: .readWrite, user: true)

    public var description: String {
        var s = ""
        s += access.contains(.read) ? "r" : "-"
        s += access.contains(.write) ? "w" : "-"
        s += access.contains(.execute) ? "x" : "-"
        if user { s += " user" }
        if global { s += " global" }
        if cache != .writeBack { s += " \(cache)" }
        if accessed { s += " A" }
        if dirty { s += " D" }
        if ignoreGuestPAT { s += " ipat" }
        return s
    }
}
