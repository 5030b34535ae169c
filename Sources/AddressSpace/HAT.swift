import PhysicalMemory

/// The translation layer under an address space (illumos's HAT).
///
/// The address space and its drivers only load, unload and query
/// translations through this protocol; what holds them — software page
/// tables of a model kernel, or real `mmap`/`mprotect` of a host-backed
/// address space — is the implementer's business.
public protocol HAT: AnyObject, Sendable {
    /// `hat_memload` / `hat_devload`: translate the page at `address` to `pfn`.
    func load(address: UInt64, pfn: PageFrameNumber, attributes: HATAttributes,
              flags: HATLoadFlags) throws(HATError)
    /// `hat_unload`: remove translations in `[address, address + size)`.
    func unload(address: UInt64, size: UInt64, flags: HATUnloadFlags) throws(HATError)
    /// `hat_chgprot`: set the protections of translations in the range.
    func changeProtection(address: UInt64, size: UInt64, protection: Protection) throws(HATError)
    /// `hat_getpfnum` plus attributes: the translation of `address`, or nil.
    func translation(of address: UInt64) -> HATTranslation?
}

extension HAT {
    /// `hat_memload` for `count` consecutive frames from `pfn`.
    public func loadRange(address: UInt64, pfn: PageFrameNumber, count: UInt64, attributes: HATAttributes,
                          flags: HATLoadFlags) throws(HATError) {
        for i in 0..<count {
            try load(address: address &+ i << PhysicalMemory.pageShift, pfn: pfn &+ i,
                     attributes: attributes, flags: flags)
        }
    }

    /// `hat_probe`
    public func probe(_ address: UInt64) -> Bool { translation(of: address) != nil }
}

/// What a HAT reports for one address.
public struct HATTranslation: Hashable, Sendable {
    public var pfn: PageFrameNumber
    public var protection: Protection
    /// Bytes mapped by the page holding the address.
    public var pageSize: UInt64
    public init(pfn: PageFrameNumber, protection: Protection, pageSize: UInt64 = PhysicalMemory.pageSize) {
        self.pfn = pfn
        self.protection = protection
        self.pageSize = pageSize
    }
}

/// `hat_memload` attributes: the protection bits plus `HAT_NOFAULT` (0x10)
/// and `HAT_NOSYNC` (0x20).
public struct HATAttributes: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ protection: Protection) { self.init(rawValue: protection.rawValue & 0x0F) }
    public static let noFault = HATAttributes(rawValue: 0x10)
    public static let noSync = HATAttributes(rawValue: 0x20)
    /// The `PROT_*` part (`HAT_PROT_MASK`).
    public var protection: Protection { Protection(rawValue: rawValue & 0x0F) }
}

/// `HAT_LOAD_*` flags of `hat_memload` (`vm/hat.h`).
public struct HATLoadFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `HAT_LOAD_LOCK` (0x01): the translation may not be stolen.
    public static let lock = HATLoadFlags(rawValue: 0x01)
    /// `HAT_LOAD_ADV` (0x04)
    public static let advisory = HATLoadFlags(rawValue: 0x04)
    /// `HAT_LOAD_CONTIG` (0x10)
    public static let contiguous = HATLoadFlags(rawValue: 0x10)
    /// `HAT_LOAD_NOCONSIST` (0x20)
    public static let noConsist = HATLoadFlags(rawValue: 0x20)
    /// `HAT_LOAD_SHARE` (0x40)
    public static let share = HATLoadFlags(rawValue: 0x40)
    /// `HAT_LOAD_REMAP` (0x80)
    public static let remap = HATLoadFlags(rawValue: 0x80)
    /// `HAT_NO_KALLOC` (0x200): use reserves, do not allocate.
    public static let noKernelAllocation = HATLoadFlags(rawValue: 0x200)
    /// `HAT_LOAD_TEXT` (0x400)
    public static let text = HATLoadFlags(rawValue: 0x400)
}

/// `HAT_UNLOAD_*` flags of `hat_unload`.
public struct HATUnloadFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `HAT_UNLOAD_NOSYNC` (0x02)
    public static let noSync = HATUnloadFlags(rawValue: 0x02)
    /// `HAT_UNLOAD_UNLOCK` (0x04): drop the `HAT_LOAD_LOCK` hold too.
    public static let unlock = HATUnloadFlags(rawValue: 0x04)
    /// `HAT_UNLOAD_OTHER` (0x08)
    public static let other = HATUnloadFlags(rawValue: 0x08)
    /// `HAT_UNLOAD_UNMAP` (0x10)
    public static let unmap = HATUnloadFlags(rawValue: 0x10)
}

/// How a HAT operation fails.
public enum HATError: Error, Hashable, Sendable {
    /// Nothing translates the address.
    case notMapped(address: UInt64)
    /// Something translates the address already.
    case alreadyMapped(address: UInt64)
    /// The translation layer refused, for the reason given.
    case failed(address: UInt64, reason: String)
}
