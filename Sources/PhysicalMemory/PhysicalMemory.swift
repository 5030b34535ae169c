import HostMemory

/// The page frames of a machine: `page_t`s with identities, the free list and
/// the cache list, page locks and lock counts, boot pages, and `::memstat`.
///
/// See the module overview (`PhysicalMemory.md`) for the design. All methods
/// are safe to call from several threads: one mutex serialises them, as the
/// page hash and free-list locks would in illumos.
public final class PhysicalMemory: @unchecked Sendable {
    /// The base page size of x86-64 (`PAGESIZE`).
    public static let pageSize: UInt64 = 4096
    /// `PAGESHIFT`
    public static let pageShift: UInt64 = 12
    /// Frame numbers are below 2^40: the PFN field of an x86-64 PTE is bits
    /// 12..51, so a physical address has 52 bits.
    public static let maximumFrameNumber: PageFrameNumber = 1 << 40

    /// Whether frames hold bytes.
    public enum Backing: Hashable, Sendable {
        /// Metadata only: pages have identities, states and locks, no contents.
        case metadataOnly
        /// Every frame has 4 KiB of host memory, reserved up front without
        /// commitment and populated on first touch.
        case hostMemory
    }

    let table: UnsafeMutablePointer<_PageFrameTable>
    let mutex = HostLock()

    /// The backing chosen at creation.
    public let backing: Backing
    /// `total_pages`: frames that have a `page_t`.
    public let totalPages: UInt64
    /// `physmem`: frames the system may use (`totalPages` unless limited).
    public let physmem: UInt64
    /// The memory list (`phys_install`), ascending.
    public let memoryList: [FrameRange]
    /// One past the highest frame number.
    public let frameLimit: PageFrameNumber

    /// A machine whose frames are `0 ..< pageCount`.
    ///
    /// - Parameters:
    ///   - pageCount: the number of frames; must be greater than 0.
    ///   - physmem: limits usable frames; the highest `pageCount - physmem`
    ///     frames are named on ``Vnode/unusedPages`` and never allocated.
    ///   - backing: whether frames have host memory for their contents
    ///     (``Backing/hostMemory``) or metadata only (the default).
    public convenience init(pageCount: UInt64, physmem: UInt64? = nil,
                            backing: Backing = .metadataOnly) throws(PhysicalMemoryError) {
        guard pageCount > 0 else { throw .emptyMemory }
        try self.init(memoryList: [FrameRange(lower: 0, upper: pageCount)], physmem: physmem, backing: backing)
    }

    /// A machine whose frames are the given ranges (sorted, disjoint), with
    /// holes between them where no memory is installed.
    public init(memoryList: [FrameRange], physmem: UInt64? = nil,
                backing: Backing = .metadataOnly) throws(PhysicalMemoryError) {
        let t = try _PageFrameTable(present: memoryList, physmem: physmem, backed: backing == .hostMemory)
        table = .allocate(capacity: 1)
        table.initialize(to: t)
        self.backing = backing
        self.totalPages = t.totalPages
        self.physmem = t.physmem
        self.memoryList = memoryList
        self.frameLimit = t.frameLimit
    }

    deinit {
        table.pointee.deallocate()
        table.deinitialize(count: 1)
        table.deallocate()
    }

    @inline(__always)
    func locked<R, E: Error>(_ body: (inout _PageFrameTable) throws(E) -> R) throws(E) -> R {
        try mutex.withLock { () throws(E) -> R in try body(&table.pointee) }
    }

    // MARK: Counts

    /// Frames on the free list.
    public var freelistPages: UInt64 { locked { $0.free.count } }
    /// Pages on the cache list (free, still named).
    public var cachelistPages: UInt64 { locked { $0.cacheCount } }
    /// Boot pages not yet released.
    public var bootPages: UInt64 { locked { $0.bootCount } }
    /// Pages with a `page_t`: in use, cached or boot (a run of pages shares
    /// one record; ``recordCount`` counts records).
    public var recordedPages: UInt64 { locked { $0.physmem - $0.free.count } }
    /// Frames excluded by `physmem` (named on `unused_pages_vp`).
    public var excludedPages: UInt64 { totalPages - physmem }

    /// Host bytes used for page metadata (records, indices, free list), not
    /// counting page contents. Grows with pages in use, not with `totalPages`.
    public var metadataFootprint: Int {
        locked { t in
            t.slab.footprint + t.frames.footprint + t.identities.footprint + t.free.footprint + t.runs.footprint
                + t.vnodes.entries.capacity * MemoryLayout<_VnodeTable.Entry>.stride
        }
    }

    // MARK: Vnodes

    /// Makes a vnode of the given type (swapfs, exec or file).
    public func makeVnode(_ type: VnodeType, name: String) throws(PhysicalMemoryError) -> Vnode {
        try locked { (t) throws(PhysicalMemoryError) -> Vnode in
            guard let v = t.vnodes.make(kind: type.kind, name: name) else {
                throw .outOfMemory(requested: 1, available: 0)
            }
            return v
        }
    }

    /// Releases a vnode that names no pages.
    public func releaseVnode(_ vnode: Vnode) throws(PhysicalMemoryError) {
        try locked { (t) throws(PhysicalMemoryError) in
            guard vnode.id >= Vnode.firstUserID, t.vnodes.isLive(vnode.id) else { throw .unknownVnode(vnode) }
            let n = t.vnodes.pageCount(vnode.id)
            guard n == 0 else { throw .vnodeHasPages(vnode, pageCount: n) }
            t.vnodes.retire(vnode.id)
        }
    }

    /// Kind, name and page count of a vnode.
    public func vnodeInfo(_ vnode: Vnode) throws(PhysicalMemoryError) -> VnodeInfo {
        try locked { (t) throws(PhysicalMemoryError) -> VnodeInfo in
            guard vnode.id != 0, t.vnodes.isLive(vnode.id) else { throw .unknownVnode(vnode) }
            if vnode == .unusedPages {
                let i = t.vnodes.info(vnode.id)
                return VnodeInfo(vnode: vnode, kind: i.kind, name: i.name, pageCount: totalPages - physmem)
            }
            return t.vnodes.info(vnode.id)
        }
    }

    /// Pages named on a vnode (in use or cached): the per-vnode count.
    public func pageCount(of vnode: Vnode) throws(PhysicalMemoryError) -> UInt64 {
        try vnodeInfo(vnode).pageCount
    }

    /// Every live vnode, kernel vnodes first.
    public var vnodes: [VnodeInfo] {
        locked { t in t.vnodes.liveIDs.map { t.vnodes.info($0) } }
    }

    // MARK: Walks

    /// The `page_t` at a frame. Excluded frames report their
    /// `unused_pages_vp` page; free frames have none.
    public func page(_ pfn: PageFrameNumber) throws(PhysicalMemoryError) -> Page {
        try locked { (t) throws(PhysicalMemoryError) -> Page in
            let slot = t.recordSlot(containing: pfn)
            if slot != 0 { return t.page(slot, pfn: pfn) }
            try t.checkPresent(pfn)
            if t.isExcluded(pfn) {
                return Page(pfn: pfn, vnode: .unusedPages, offset: pfn << Self.pageShift, state: .inUse,
                            lock: .unlocked, lockCount: 0, cowCount: 0, noRelocate: false)
            }
            throw .pageNotFound(pfn: pfn)
        }
    }

    /// Whether the frame is on the free list.
    public func isFree(_ pfn: PageFrameNumber) throws(PhysicalMemoryError) -> Bool {
        try locked { (t) throws(PhysicalMemoryError) -> Bool in
            if t.recordSlot(containing: pfn) != 0 { return false }
            try t.checkPresent(pfn)
            return !t.isExcluded(pfn)
        }
    }

    /// Every page that has a record (in use, cached, boot), in no particular
    /// order. Free-list frames and excluded frames are not visited.
    public func forEachPage(_ body: (Page) -> Void) {
        let pages = locked { t in
            var out: [Page] = []
            out.reserveCapacity(t.slab.liveCount)
            t.forEachSlot { slot in
                let r = t.slab[slot]
                for pfn in r.pfn ..< r.pfn + r.count { out.append(t.page(slot, pfn: pfn)) }
            }
            return out
        }
        pages.forEach(body)
    }

    /// The frames named on `vnode`, sorted by offset.
    public func pages(of vnode: Vnode) throws(PhysicalMemoryError) -> [Page] {
        try locked { (t) throws(PhysicalMemoryError) -> [Page] in
            guard vnode.id != 0, t.vnodes.isLive(vnode.id) else { throw .unknownVnode(vnode) }
            var out: [Page] = []
            t.forEachSlot { slot in
                let r = t.slab[slot]
                guard r.vnode == vnode.id else { return }
                for pfn in r.pfn ..< r.pfn + r.count { out.append(t.page(slot, pfn: pfn)) }
            }
            return out.sorted { $0.offset < $1.offset }
        }
    }

    /// Folds recently freed frames into free ranges (normally automatic).
    public func compactFreeList() {
        locked { $0.free.compact() }
    }

    /// The free list's ranges after ``compactFreeList()``-style merging, ascending.
    public var freeRanges: [FrameRange] {
        locked { t in
            var copy = t.free
            copy.compact()
            return copy.extents.reversed()
        }
    }
}
