import AddressSpace
import PhysicalMemory
import class Vmem.Arena

/// `seg_kmem`: the kernel heap, the core heap, the nucleus, valloc, the
/// debugger range, segzio and segkvmm.
///
/// Its pages are created by the arena import functions (``KernelArenas``),
/// not by faults: a page is named on this segment's vnode at offset = its VA,
/// loaded locked, and never faults in. So the driver's `fault` only soft-locks
/// and soft-unlocks pages that are already loaded (`F_SOFTLOCK` /
/// `F_SOFTUNLOCK`); anything else is `FC_NOSUPPORT`. On i386, faults on
/// segkp's pages inside the heap are handed to segkp (`segkp_bitmap`).
///
/// Which vnode is `segkmem_create`'s choice: `kvps[KV_ZVP]` for kzioseg,
/// `kvps[KV_VVP]` for kvmmseg, `kvps[KV_KVP]` for the rest. The vnode also
/// decides `::memstat`'s row and whether `dump` writes the pages out.
public final class SegKmem: SegmentDriver, @unchecked Sendable {
    /// How `segkmem_dump` finds the pages to write.
    public enum DumpPolicy: Sendable {
        /// Walk the allocated segments of this arena (kvseg: `heap`,
        /// kvseg_core: `heap_core`) instead of the whole huge range.
        case allocatedIn(Arena)
        /// Every translation in the segment.
        case wholeRange
        /// Never dumped: kzioseg (file data) and kvmmseg (guest memory).
        case never
    }

    /// The segment's name in illumos (`kvseg`, `kzioseg`, ...).
    public let segmentName: String
    /// `s_data`: the vnode pages are named on.
    public let vnode: Vnode
    public let dataAddress: UInt64
    public let dumpPolicy: DumpPolicy
    let memory: KernelMemory
    /// i386: segkp lives in the heap and takes the faults on its pages.
    var segkp: SegKp?

    init(name: String, vnode: Vnode, dataAddress: UInt64, dumpPolicy: DumpPolicy, memory: KernelMemory) {
        self.segmentName = name
        self.vnode = vnode
        self.dataAddress = dataAddress
        self.dumpPolicy = dumpPolicy
        self.memory = memory
    }

    public var opsName: String { "segkmem_ops" }

    /// The entries `segkmem_ops` fills in; the rest are `segkmem_badop`.
    public var supportedOperations: SegmentOperations {
        [.fault, .setprot, .checkprot, .kluster, .dump, .pagelock, .getmemid, .getpolicy, .capable]
    }

    static func checkRange(_ segment: Segment, _ address: UInt64, _ size: UInt64, _ op: SegmentOperation) throws(SegmentError) {
        let (end, o) = address.addingReportingOverflow(size)
        guard size > 0, !o, address >= segment.base, end &- 1 <= segment.last else {
            throw .errno(Errno.EINVAL, operation: op)
        }
    }

    public func fault(_ hat: any HAT, _ segment: Segment, address: UInt64, size: UInt64,
                      type: FaultType, access: SegmentAccess) throws(SegmentError) {
        try Self.checkRange(segment, address, size, .fault)
        if let segkp, segkp.owns(address) {
            return try segkp.fault(hat, segment, address: address, size: size, type: type, access: access)
        }
        guard access == .read || access == .write || access == .other else { throw .fault(.notSupported, address: address) }
        let pages = (size + PhysicalMemory.pageSize - 1) >> PhysicalMemory.pageShift
        let base = address & ~(PhysicalMemory.pageSize - 1)
        switch type {
        case .softLock:
            var locked: [PageFrameNumber] = []
            for i in 0..<pages {
                let va = base + i << PhysicalMemory.pageShift
                let pfn = try? memory.physical.pageLookup(vnode: vnode, offset: va, lock: .shared)
                if let pfn = pfn ?? nil {
                    locked.append(pfn)
                } else if !hat.probe(va) {
                    for p in locked { try? memory.physical.pageUnlock(p) }
                    throw .fault(.noMapping, address: va)
                }
            }
        case .softUnlock:
            for i in 0..<pages {
                if let pfn = memory.physical.pageFind(vnode: vnode, offset: base + i << PhysicalMemory.pageShift) {
                    try? memory.physical.pageUnlock(pfn)
                }
            }
        case .invalid, .protection:
            // Kernel heap pages never fault in (that would recurse).
            throw .fault(.notSupported, address: address)
        }
    }

    public func setprot(_ segment: Segment, address: UInt64, size: UInt64, protection: Protection) throws(SegmentError) {
        try Self.checkRange(segment, address, size, .setprot)
        if protection.isEmpty {
            // hat_unload: a no-access range has no translations.
            do throws(HATError) { try memory.hat.unload(address: address, size: size, flags: []) } catch {
                throw .errno(Errno.EINVAL, operation: .setprot)
            }
            return
        }
        do throws(HATError) { try memory.hat.changeProtection(address: address, size: size, protection: protection) } catch {
            throw .errno(Errno.EINVAL, operation: .setprot)
        }
    }

    public func checkprot(_ segment: Segment, address: UInt64, size: UInt64, protection: Protection) throws(SegmentError) {
        guard KernelMemory.kernelProtection.isSuperset(of: protection) else { throw .errno(Errno.EACCES, operation: .checkprot) }
    }

    public func kluster(_ segment: Segment, address: UInt64, delta: Int64) throws(SegmentError) -> Bool { true }

    public func dump(_ segment: Segment, into sink: (UInt64, PageFrameNumber) -> Void) throws(SegmentError) {
        switch dumpPolicy {
        case .never:
            return
        case .wholeRange:
            for t in memory.hat.mappings(from: segment.base, to: segment.base &+ segment.size) {
                var va = t.virtualAddress
                let pfn = t.physicalAddress >> PhysicalMemory.pageShift
                for k in 0..<(t.size.bytes >> PhysicalMemory.pageShift) {
                    sink(va, pfn + k)
                    va &+= PhysicalMemory.pageSize
                }
            }
        case .allocatedIn(let arena):
            for s in arena.segments(.allocated) {
                var va = s.start
                while va < s.end {
                    if let t = memory.hat.translation(of: va) { sink(va, t.pfn) }
                    va += PhysicalMemory.pageSize
                }
            }
        }
    }

    public func pagelock(_ segment: Segment, address: UInt64, size: UInt64, type: PageLockType,
                         access: SegmentAccess) throws(SegmentError) -> [PageFrameNumber] {
        try Self.checkRange(segment, address, size, .pagelock)
        let base = address & ~(PhysicalMemory.pageSize - 1)
        let pages = (address + size - base + PhysicalMemory.pageSize - 1) >> PhysicalMemory.pageShift
        switch type {
        case .reclaim:
            throw .errno(Errno.ENOTSUP, operation: .pagelock)
        case .unlock:
            var out: [PageFrameNumber] = []
            for i in 0..<pages {
                if let pfn = memory.physical.pageFind(vnode: vnode, offset: base + i << PhysicalMemory.pageShift) {
                    try? memory.physical.pageUnlock(pfn)
                    out.append(pfn)
                }
            }
            return out
        case .lock:
            var out: [PageFrameNumber] = []
            for i in 0..<pages {
                let pfn = try? memory.physical.pageLookup(vnode: vnode, offset: base + i << PhysicalMemory.pageShift,
                                                          lock: .shared)
                guard let pfn = pfn ?? nil else {
                    for p in out { try? memory.physical.pageUnlock(p) }
                    throw .errno(Errno.ENOTSUP, operation: .pagelock)
                }
                out.append(pfn)
            }
            return out
        }
    }

    public func getmemid(_ segment: Segment, address: UInt64) throws(SegmentError) -> MemoryID {
        MemoryID(object: dataAddress, offset: address)
    }

    public func getpolicy(_ segment: Segment, address: UInt64) throws(SegmentError) -> MemoryPolicy? { nil }

    public func capable(_ segment: Segment, capability: SegmentCapability) throws(SegmentError) -> Bool { false }
}
