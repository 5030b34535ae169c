import KernelLayout
import PhysicalMemory

// The addresses mdb's `page` walker yields. illumos keeps one `page_t` per
// physical page in arrays that `startup_memlist()` carves out at
// `valloc_base`, one array per memseg, laid end to end; the model keeps page
// records instead, so it gives each frame the address its `page_t` would
// have there: `valloc_base + index × sizeof (page_t)`, where `index` counts
// the frames of the memory list below it. The map is a bijection between
// the frames of the memory list and those addresses, so an address printed
// by `::walk page` can be typed into `ADDR::page` again.
extension ModelKernel {
    /// `sizeof (page_t)` on this model's machine (120 bytes on amd64, 80 on i386).
    public var pageStructSize: UInt64 {
        layout.model == .i386 ? I386.pageStructSize : AMD64.pageStructSize
    }

    /// The address of the `page_t` of frame `pfn`, or nil when the frame is
    /// not in the memory list.
    public func pageStructAddress(of pfn: PageFrameNumber) -> UInt64? {
        var index: UInt64 = 0
        for range in physicalMemory.memoryList {
            if range.contains(pfn) { return layout.vallocBase &+ (index + (pfn - range.lower)) &* pageStructSize }
            index += range.count
        }
        return nil
    }

    /// The frame whose `page_t` starts at `address`, or nil when `address`
    /// is not the start of one.
    public func pageFrame(atStructAddress address: UInt64) -> PageFrameNumber? {
        guard address >= layout.vallocBase else { return nil }
        let offset = address - layout.vallocBase
        guard offset % pageStructSize == 0 else { return nil }
        var index = offset / pageStructSize
        for range in physicalMemory.memoryList {
            if index < range.count { return range.lower + index }
            index -= range.count
        }
        return nil
    }

    /// The kernel vnode whose `vnode_t` is at `address` (`kvps[i]`), if any.
    public func kernelVnode(at address: UInt64) -> Vnode? {
        KernelVnodeIndex.allCases.first { symbols.kvp($0.rawValue) == address }?.vnode
    }

    /// The address of a kernel vnode's `vnode_t`, or nil for other vnodes
    /// (the model gives file and swap vnodes no kernel address).
    public func vnodeAddress(_ vnode: Vnode) -> UInt64? {
        KernelVnodeIndex.allCases.first { $0.vnode == vnode }.map { symbols.kvp($0.rawValue) }
    }
}
