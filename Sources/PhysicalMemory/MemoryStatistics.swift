/// The row a page lands in under mdb's `::memstat` classification.
public enum MemstatCategory: Hashable, Sendable, CaseIterable {
    case kernel
    case bootPages
    case zfsFileData
    case vmmMemory
    case anon
    case execAndLibs
    case pageCache
    case freeCachelist
}

/// What `::memstat` reports: pages per category, counted by walking the pages
/// exactly as mdb's `memstat_callback` does (first match wins):
///
/// 1. a boot page → Boot pages;
/// 2. no vnode, or `unused_pages_vp` → not counted at all;
/// 3. `kvps[KV_KVP]` → Kernel; 4. `kvps[KV_ZVP]` → ZFS File Data;
///    5. `kvps[KV_VVP]` → VMM Memory;
/// 6. on the cache list → Free (cachelist);
/// 7. a swapfs vnode → Anon; `VVMEXEC` → Exec and libs; else Page cache.
///
/// Every counted page adds one to ``total`` (`ms_total`); Free (freelist) is
/// then `physmem - total`, clamped at zero, less any balloon.
public struct MemoryStatistics: Hashable, Sendable {
    public var kernel: UInt64 = 0
    public var bootPages: UInt64 = 0
    public var zfsFileData: UInt64 = 0
    public var vmmMemory: UInt64 = 0
    public var anon: UInt64 = 0
    public var execAndLibs: UInt64 = 0
    public var pageCache: UInt64 = 0
    public var cachelist: UInt64 = 0
    /// `ms_total`: pages counted in some row above.
    public var total: UInt64 = 0
    /// `total_pages`
    public var totalPages: UInt64
    /// `physmem`
    public var physmem: UInt64
    /// `PAGESIZE` used for the MB column.
    public var pageSize: UInt64
    /// Xen's `bln_stats.bln_hv_pages` when the `bln_stats` symbol exists; nil
    /// (no Balloon row) otherwise.
    public var balloonPages: UInt64?

    public init(totalPages: UInt64, physmem: UInt64, pageSize: UInt64 = PhysicalMemory.pageSize,
                balloonPages: UInt64? = nil) {
        self.totalPages = totalPages
        self.physmem = physmem
        self.pageSize = pageSize
        self.balloonPages = balloonPages
    }

    /// Counts one page of the given category (and `ms_total`).
    public mutating func count(_ category: MemstatCategory, pages: UInt64 = 1) {
        switch category {
        case .kernel: kernel &+= pages
        case .bootPages: bootPages &+= pages
        case .zfsFileData: zfsFileData &+= pages
        case .vmmMemory: vmmMemory &+= pages
        case .anon: anon &+= pages
        case .execAndLibs: execAndLibs &+= pages
        case .pageCache: pageCache &+= pages
        case .freeCachelist: cachelist &+= pages
        }
        total &+= pages
    }

    /// Free (freelist): `physmem - ms_total` clamped at 0, then less the
    /// balloon (clamped at 0), as mdb computes it.
    public var freelist: UInt64 {
        var free = physmem > total ? physmem - total : 0
        if let balloon = balloonPages { free = free > balloon ? free - balloon : 0 }
        return free
    }

    /// The %Tot column: `(5 × total_pages + pages × 1000) / (physmem × 10)`,
    /// integer division (0 when physmem is 0, where mdb would divide by zero).
    public func percent(_ pages: UInt64) -> UInt64 {
        guard physmem != 0 else { return 0 }
        let n = 5 * UInt128(totalPages) + UInt128(pages) * 1000
        return UInt64(truncatingIfNeeded: n / (UInt128(physmem) * 10))
    }

    /// The MB column: `pages × PAGESIZE / 1 MiB`, truncated.
    public func megabytes(_ pages: UInt64) -> UInt64 {
        UInt64(truncatingIfNeeded: UInt128(pages) * UInt128(pageSize) / (1 << 20))
    }

    /// The rows in display order: label and pages, including the optional
    /// rows only when mdb shows them.
    public var rows: [(label: String, pages: UInt64)] {
        var out: [(String, UInt64)] = [("Kernel", kernel)]
        if bootPages != 0 { out.append(("Boot pages", bootPages)) }
        if zfsFileData != 0 { out.append(("ZFS File Data", zfsFileData)) }
        if vmmMemory != 0 { out.append(("VMM Memory", vmmMemory)) }
        out.append(("Anon", anon))
        out.append(("Exec and libs", execAndLibs))
        out.append(("Page cache", pageCache))
        out.append(("Free (cachelist)", cachelist))
        out.append(("Free (freelist)", freelist))
        if let balloon = balloonPages { out.append(("Balloon", balloon)) }
        return out
    }

    /// The `::memstat` text, byte for byte (each line ends with a newline).
    public func rendered() -> String {
        func right(_ v: UInt64, _ width: Int) -> String {
            let s = String(v)
            return s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
        }
        func label(_ s: String) -> String {
            s.count >= 17 ? s : s + String(repeating: " ", count: 17 - s.count)
        }
        var out = "Page Summary                Pages                MB  %Tot\n"
        out += "------------     ----------------  ----------------  ----\n"
        for (name, pages) in rows {
            out += label(name) + right(pages, 16) + "  " + right(megabytes(pages), 16)
                + "  " + right(percent(pages), 3) + "%\n"
        }
        out += "\n"
        out += label("Total") + right(physmem, 16) + "  " + right(megabytes(physmem), 16) + "\n"
        if physmem != totalPages {
            out += label("Physical") + right(totalPages, 16) + "  " + right(megabytes(totalPages), 16) + "\n"
        }
        return out
    }
}

extension _PageFrameTable {
    func category(_ slot: UInt32) -> MemstatCategory? {
        let r = slab[slot]
        if r.flags.contains(.boot) { return .bootPages }
        if r.vnode == 0 || r.vnode == Vnode.unusedPages.id { return nil }
        switch vnodes.kind(r.vnode) {
        case .kernel(.kvp): return .kernel
        case .kernel(.zvp): return .zfsFileData
        case .kernel(.vvp): return .vmmMemory
        case .unusedPages: return nil
        default: break
        }
        if r.flags.contains(.cached) { return .freeCachelist }
        switch vnodes.kind(r.vnode) {
        case .swapfs: return .anon
        case .exec: return .execAndLibs
        default: return .pageCache
        }
    }
}

extension PhysicalMemory {
    /// `::memstat`: walks every record and classifies its pages (a run's
    /// pages share a vnode and a state, so they share a row).
    public func memstat(balloonPages: UInt64? = nil) -> MemoryStatistics {
        locked { t in
            var stats = MemoryStatistics(totalPages: totalPages, physmem: physmem, balloonPages: balloonPages)
            t.forEachSlot { slot in
                if let c = t.category(slot) { stats.count(c, pages: t.slab[slot].count) }
            }
            return stats
        }
    }

    /// The `::memstat` row of the page at `pfn`, or nil if mdb skips it (free
    /// list, excluded frame).
    public func memstatCategory(of pfn: PageFrameNumber) throws(PhysicalMemoryError) -> MemstatCategory? {
        try locked { (t) throws(PhysicalMemoryError) -> MemstatCategory? in
            let slot = t.recordSlot(containing: pfn)
            if slot != 0 { return t.category(slot) }
            try t.checkPresent(pfn)
            return nil
        }
    }
}
