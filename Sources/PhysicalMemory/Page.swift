/// A physical page frame number: physical address >> 12.
public typealias PageFrameNumber = UInt64

/// The state of a page's `p_selock` (the shared/exclusive page lock).
///
/// The model never blocks: an attempt that would have to wait in illumos
/// fails with ``PhysicalMemoryError/lockConflict(pfn:held:requested:)``.
public enum PageLockState: Hashable, Sendable, CustomStringConvertible {
    case unlocked
    /// `SE_SHARED`, held `count` times.
    case shared(count: UInt16)
    /// `SE_EXCL`.
    case exclusive

    public var description: String {
        switch self {
        case .unlocked: return "unlocked"
        case .shared(let n): return "shared(\(n))"
        case .exclusive: return "exclusive"
        }
    }
}

/// The mode asked of `page_lookup` and friends (`se_t`).
public enum PageLockMode: Hashable, Sendable {
    /// `SE_SHARED`
    case shared
    /// `SE_EXCL`
    case exclusive
}

/// Where a page that has a `page_t` is.
public enum PageState: Hashable, Sendable {
    /// Named and in use (not free).
    case inUse
    /// Free but still named: on the cache list (`PP_ISFREE`, with a vnode),
    /// reclaimable by ``PhysicalMemory/pageLookup(vnode:offset:lock:)``.
    case cached
    /// Taken by the boot allocator (`PP_ISBOOTPAGES`).
    case boot
}

/// `page_create_va` flags (`PG_*` of `vm/page.h`).
public struct PageCreateFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `PG_EXCL`: fail if a page with one of the identities exists. The model
    /// always refuses an existing identity; the flag is accepted for fidelity.
    public static let exclusive = PageCreateFlags(rawValue: 0x0001)
    /// `PG_WAIT`: the model cannot wait (nothing else frees pages meanwhile),
    /// so this behaves like a non-blocking request.
    public static let wait = PageCreateFlags(rawValue: 0x0002)
    /// `PG_PHYSCONTIG`: the frames must be consecutive (and aligned to the
    /// largest power of two not above the count, as large pages are).
    public static let physicallyContiguous = PageCreateFlags(rawValue: 0x0004)
    /// `PG_NORELOC`: the page may never be relocated (recorded on the page).
    public static let noRelocate = PageCreateFlags(rawValue: 0x0010)
    /// `PG_PANIC`: illumos panics on failure; the model throws.
    public static let panic = PageCreateFlags(rawValue: 0x0020)
    /// `PG_PUSHPAGE`: may dip into the reserve.
    public static let pushPage = PageCreateFlags(rawValue: 0x0040)
    /// `PG_NORMALPRI`
    public static let normalPriority = PageCreateFlags(rawValue: 0x0100)
}

/// A snapshot of one `page_t`.
public struct Page: Hashable, Sendable, CustomStringConvertible {
    public let pfn: PageFrameNumber
    /// The identity's vnode; nil for boot pages.
    public let vnode: Vnode?
    /// The identity's offset (a byte offset, page aligned).
    public let offset: UInt64
    public let state: PageState
    public let lock: PageLockState
    /// `p_lckcnt`: how many times the page is locked in memory.
    public let lockCount: UInt16
    /// `p_cowcnt`
    public let cowCount: UInt16
    /// `PP_ISNORELOC`
    public let noRelocate: Bool

    /// The frame's physical address.
    public var physicalAddress: UInt64 { pfn << PhysicalMemory.pageShift }

    public var description: String {
        let name = vnode.map { "\($0)+0x\(String(offset, radix: 16))" } ?? "-"
        return "page pfn=0x\(String(pfn, radix: 16)) \(name) \(state) \(lock) lckcnt=\(lockCount)"
    }
}
