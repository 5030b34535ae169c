import AddressSpace
import PhysicalMemory

/// One page a crash dump would contain.
public struct DumpedPage: Hashable, Sendable {
    /// The kernel address it is mapped at.
    public let address: UInt64
    public let pfn: PageFrameNumber
    /// The boot-time name of the segment whose driver reported it.
    public let segment: String
    /// The page's identity, when it has one.
    public let vnode: Vnode?
    public let offset: UInt64
}

extension ModelKernel {
    /// What `dumpsys` would write for a kernel dump (`dump_as(&kas)`): each
    /// segment's `dump` op in address order. segkmem dumps kvseg and
    /// kvseg_core by walking the allocated segments of `heap` and
    /// `heap_core`, the other segkmem segments by their translations —
    /// except kzioseg (ZFS file data) and kvmmseg (guest memory), which are
    /// skipped; segkp dumps the mapped pages of its resources; segkpm
    /// nothing (its pages belong to other segments); segmap the file pages
    /// in its windows.
    public func dumpPages() -> [DumpedPage] {
        var out: [DumpedPage] = []
        for seg in kas.segments where seg.driver.supportedOperations.contains(.dump) {
            let name = segment(containing: seg.base)?.name ?? seg.driver.opsName
            try? seg.driver.dump(seg) { va, pfn in
                let page = try? physicalMemory.page(pfn)
                out.append(DumpedPage(address: va, pfn: pfn, segment: name, vnode: page?.vnode, offset: page?.offset ?? 0))
            }
        }
        return out
    }
}
