import PhysicalMemory

/// `ADDR::page`: one `page_t`, after mdb's `::page` — its address, the frame,
/// the identity (the `vnode_t` address for the `kvps[]` vnodes, the vnode's
/// name for the others, `-` for boot pages), the offset, the `p_selock`
/// state (`-`, `SHR`, `EXCL`), `p_lckcnt`, `p_cowcnt` and where the page is
/// (`inuse`, `cached`, `boot`, `free`).
enum PageRendering {
    /// The header; PAGE and VNODE are pointers, `w` columns.
    static func header(_ w: Int) -> String {
        MdbFormat.right("PAGE", w) + " " + MdbFormat.right("PFN", 10) + " "
        + MdbFormat.right("VNODE", w) + " " + MdbFormat.right("OFFSET", 16) + " " + MdbFormat.left("LOCK", 4)
        + " " + MdbFormat.right("LCT", 5) + " " + MdbFormat.right("COW", 5) + " STATE"
    }

    static func lock(_ l: PageLockState) -> String {
        switch l {
        case .unlocked: return "-"
        case .shared: return "SHR"
        case .exclusive: return "EXCL"
        }
    }

    static func state(_ s: PageState) -> String {
        switch s {
        case .inUse: return "inuse"
        case .cached: return "cached"
        case .boot: return "boot"
        }
    }

    static func row(_ address: UInt64, _ p: Page, vnodeAddress: UInt64?, width w: Int) -> String {
        let vnode = vnodeAddress.map { MdbFormat.pointer($0, width: w) } ?? p.vnode.map { "\($0)" } ?? "-"
        return MdbFormat.pointer(address, width: w) + " " + MdbFormat.hexRight(p.pfn, width: 10) + " "
            + MdbFormat.right(vnode, w) + " " + MdbFormat.hexRight(p.offset) + " " + MdbFormat.left(lock(p.lock), 4)
            + " " + MdbFormat.right(String(p.lockCount), 5) + " " + MdbFormat.right(String(p.cowCount), 5) + " "
            + state(p.state)
    }

    /// A frame on the free list: a `page_t` with no identity.
    static func freeRow(_ address: UInt64, pfn: PageFrameNumber, width w: Int) -> String {
        MdbFormat.pointer(address, width: w) + " " + MdbFormat.hexRight(pfn, width: 10) + " " + MdbFormat.right("-", w) + " "
            + MdbFormat.hexRight(0) + " " + MdbFormat.left("-", 4) + " " + MdbFormat.right("0", 5) + " "
            + MdbFormat.right("0", 5) + " free"
    }
}
