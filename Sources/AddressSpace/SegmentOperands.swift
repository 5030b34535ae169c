/// What a driver's `unmap` did to its segment; the address space applies it.
public enum UnmapOutcome: Sendable {
    /// The whole segment is gone (the driver has released what it must; the
    /// address space calls `free` and removes the segment).
    case removed
    /// The segment now covers `[base, base + size)`, a sub-range of what it
    /// was, shrunk from one end.
    case trimmed(base: UInt64, size: UInt64)
    /// The segment was cut in two around the unmapped range: it keeps
    /// `[keepBase, + keepSize)` and a new segment run by `newDriver` takes
    /// `[newBase, + newSize)` (illumos's drivers `seg_alloc` that piece).
    case split(keepBase: UInt64, keepSize: UInt64, newBase: UInt64, newSize: UInt64, newDriver: any SegmentDriver)
}

/// `MAP_SHARED` (1) or `MAP_PRIVATE` (2).
public enum MappingType: Int32, Hashable, Sendable {
    case shared = 1
    case `private` = 2
}

/// `MC_LOCK` (2) / `MC_UNLOCK` (3) for `lockop`.
public enum LockOperation: Int32, Hashable, Sendable {
    case lock = 2
    case unlock = 3
}

/// `enum lock_type` for `pagelock`.
public enum PageLockType: Int, Hashable, Sendable {
    /// `L_PAGELOCK`
    case lock = 0
    /// `L_PAGEUNLOCK`
    case unlock = 1
    /// `L_PAGERECLAIM`
    case reclaim = 2
}

/// `MS_*` flags for `sync`.
public struct SyncFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let async = SyncFlags(rawValue: 0x1)
    public static let invalidate = SyncFlags(rawValue: 0x2)
    public static let sync = SyncFlags(rawValue: 0x4)
}

/// An `madvise` behaviour (`MADV_*`).
public struct Advice: RawRepresentable, Hashable, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let normal = Advice(rawValue: 0)
    public static let random = Advice(rawValue: 1)
    public static let sequential = Advice(rawValue: 2)
    public static let willNeed = Advice(rawValue: 3)
    public static let dontNeed = Advice(rawValue: 4)
    public static let free = Advice(rawValue: 5)
}

/// `SEG_PAGE_*` bits of `incore`.
public struct PageIncoreStatus: OptionSet, Hashable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let inCore = PageIncoreStatus(rawValue: 0x01)
    public static let locked = PageIncoreStatus(rawValue: 0x02)
    public static let hasCOW = PageIncoreStatus(rawValue: 0x04)
    public static let softLocked = PageIncoreStatus(rawValue: 0x08)
    public static let vnodeBacked = PageIncoreStatus(rawValue: 0x10)
    public static let anon = PageIncoreStatus(rawValue: 0x20)
    public static let vnode = PageIncoreStatus(rawValue: 0x40)
}

/// `memid_t`: two words naming the backing object and offset.
public struct MemoryID: Hashable, Sendable {
    public var object: UInt64
    public var offset: UInt64
    public init(object: UInt64, offset: UInt64) {
        self.object = object
        self.offset = offset
    }
}

/// `lgrp_mem_policy_info_t`.
public struct MemoryPolicy: Hashable, Sendable {
    public var policy: Int32
    public var lgroup: Int32
    public init(policy: Int32, lgroup: Int32) {
        self.policy = policy
        self.lgroup = lgroup
    }
}

/// `segcapability_t`.
public enum SegmentCapability: Int, Hashable, Sendable {
    /// `S_CAPABILITY_NOMINFLT`: no minor faults once mapped.
    case noMinorFaults = 0
}

/// `SEGP_INH_*` for `inherit`.
public enum Inheritance: Int32, Hashable, Sendable {
    /// `SEGP_INH_ZERO`: the child gets zero-filled pages.
    case zero = 1
}
