/// Every way a ``PhysicalMemory`` operation can refuse a request.
///
/// illumos panics on most of these (destroying a page it does not hold, an
/// identity that is already hashed); the model throws, and each case names the
/// values that were wrong.
public enum PhysicalMemoryError: Error, Hashable, Sendable {
    /// A machine of no pages, or a memory range that is empty or reversed.
    case emptyMemory
    /// A frame range `[start, end)` that is empty, reversed, overlaps another
    /// or lies beyond ``PhysicalMemory/maximumFrameNumber``.
    case invalidMemoryRange(start: PageFrameNumber, end: PageFrameNumber)
    /// `physmem` larger than `total_pages`.
    case physmemExceedsTotal(physmem: UInt64, totalPages: UInt64)
    /// A frame number the machine does not have.
    case pfnOutOfRange(pfn: PageFrameNumber, limit: PageFrameNumber)
    /// A frame number in a hole of the memory list, or excluded by `physmem`.
    case pfnNotPresent(pfn: PageFrameNumber)
    /// No `page_t` is in use at this frame (it is free on the free list).
    case pageNotFound(pfn: PageFrameNumber)
    /// A claim of a specific frame that is already in use.
    case frameInUse(pfn: PageFrameNumber)
    /// The operation needs an in-use page but the page is on the cache list.
    case pageIsCached(pfn: PageFrameNumber)
    /// The operation is not allowed on a boot page.
    case pageIsBootPage(pfn: PageFrameNumber)
    /// An identity offset that is not a multiple of the page size.
    case offsetNotPageAligned(offset: UInt64)
    /// `offset + pages × page size` does not fit in 64 bits.
    case offsetOverflow(offset: UInt64, pageCount: UInt64)
    /// A page with this identity exists already (`page_hashin` failed).
    case identityExists(vnode: Vnode, offset: UInt64, pfn: PageFrameNumber)
    /// A vnode this memory never made, or one that was released.
    case unknownVnode(Vnode)
    /// Pages cannot be created on `unused_pages_vp`.
    case reservedVnode(Vnode)
    /// A vnode that still names pages cannot be released.
    case vnodeHasPages(Vnode, pageCount: UInt64)
    /// The operation needs the page held `SE_EXCL`.
    case notExclusivelyLocked(pfn: PageFrameNumber, lock: PageLockState)
    /// Unlock of a page nobody holds.
    case notLocked(pfn: PageFrameNumber)
    /// The page is held in a mode that excludes the request (illumos would wait).
    case lockConflict(pfn: PageFrameNumber, held: PageLockState, requested: PageLockMode)
    /// Destroy or free of a page whose `p_lckcnt` (or `p_cowcnt`) is not zero.
    case pageLocked(pfn: PageFrameNumber, lockCount: UInt16, cowCount: UInt16)
    /// `p_lckcnt` or the shared-hold count would pass 65535.
    case lockCountOverflow(pfn: PageFrameNumber)
    /// `p_lckcnt` decremented below zero.
    case lockCountUnderflow(pfn: PageFrameNumber)
    /// Not enough free or cached pages for the request.
    case outOfMemory(requested: UInt64, available: UInt64)
    /// No run of `pageCount` free consecutive frames aligned to `alignment` pages.
    case noContiguousRun(pageCount: UInt64, alignment: UInt64)
    /// A request for zero pages.
    case zeroPageCount
    /// The memory keeps metadata only; page contents need ``PhysicalMemory/Backing/hostMemory``.
    case notBacked
    /// The host refused the reservation for page contents.
    case hostMemoryUnavailable(bytes: UInt64, errno: Int32)
    /// `[offset, offset + length)` does not lie within one page.
    case rangeOutsidePage(offset: Int, length: Int)
    /// ``PhysicalMemory/verify()`` found a broken invariant; the text says which.
    case invariantViolated(String)
}

extension PhysicalMemoryError: CustomStringConvertible {
    public var description: String {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        switch self {
        case .emptyMemory: return "physical memory: no pages"
        case let .invalidMemoryRange(s, e): return "physical memory: invalid frame range [\(hex(s)), \(hex(e)))"
        case let .physmemExceedsTotal(p, t): return "physical memory: physmem \(p) exceeds total_pages \(t)"
        case let .pfnOutOfRange(p, l): return "physical memory: pfn \(hex(p)) out of range (limit \(hex(l)))"
        case let .pfnNotPresent(p): return "physical memory: pfn \(hex(p)) is not present"
        case let .pageNotFound(p): return "physical memory: no page in use at pfn \(hex(p))"
        case let .frameInUse(p): return "physical memory: pfn \(hex(p)) is already in use"
        case let .pageIsCached(p): return "physical memory: page \(hex(p)) is on the cache list"
        case let .pageIsBootPage(p): return "physical memory: page \(hex(p)) is a boot page"
        case let .offsetNotPageAligned(o): return "physical memory: offset \(hex(o)) is not page aligned"
        case let .offsetOverflow(o, n): return "physical memory: offset \(hex(o)) + \(n) pages overflows"
        case let .identityExists(v, o, p): return "physical memory: page (\(v), \(hex(o))) exists at pfn \(hex(p))"
        case let .unknownVnode(v): return "physical memory: unknown vnode \(v)"
        case let .reservedVnode(v): return "physical memory: pages cannot be created on \(v)"
        case let .vnodeHasPages(v, n): return "physical memory: \(v) still names \(n) pages"
        case let .notExclusivelyLocked(p, l): return "physical memory: page \(hex(p)) is \(l), not SE_EXCL"
        case let .notLocked(p): return "physical memory: page \(hex(p)) is not locked"
        case let .lockConflict(p, h, r): return "physical memory: page \(hex(p)) is \(h); \(r) would wait"
        case let .pageLocked(p, l, c): return "physical memory: page \(hex(p)) has p_lckcnt \(l), p_cowcnt \(c)"
        case let .lockCountOverflow(p): return "physical memory: page \(hex(p)) lock count overflow"
        case let .lockCountUnderflow(p): return "physical memory: page \(hex(p)) lock count underflow"
        case let .outOfMemory(r, a): return "physical memory: \(r) pages requested, \(a) available"
        case let .noContiguousRun(n, a): return "physical memory: no run of \(n) free frames aligned to \(a)"
        case .zeroPageCount: return "physical memory: zero pages requested"
        case .notBacked: return "physical memory: pages hold no bytes (metadata only)"
        case let .hostMemoryUnavailable(b, e): return "physical memory: host refused \(b) bytes (errno \(e))"
        case let .rangeOutsidePage(o, l): return "physical memory: [\(o), +\(l)) is outside the page"
        case let .invariantViolated(s): return "physical memory: invariant violated: \(s)"
        }
    }
}
