import PhysicalMemory

/// Table frames taken from a model `PhysicalMemory`, named on a vnode
/// (the kernel's `kvps[KV_KVP]` by default), so that page tables show up in
/// `::memstat` as kernel memory the way illumos's htables do.
///
/// When the memory holds bytes (`PhysicalMemory.Backing.hostMemory`), a table
/// is read in place at `unsafeHostBase + address`. When it keeps metadata
/// only, the table's 4 KiB live in host memory beside it, found by frame
/// number.
public final class PhysicalMemoryTableAllocator: TableFrameAllocator {
    public let memory: PhysicalMemory
    public let vnode: Vnode
    /// Identity offsets used for table pages: `offsetBase + n × 4096`.
    public let offsetBase: UInt64
    @usableFromInline let hostBase: UnsafeMutableRawPointer?
    @usableFromInline var sideTables: [UInt64: UnsafeMutablePointer<UInt64>] = [:]
    private var nextOffsetIndex: UInt64 = 0
    private var freeOffsets: [UInt64] = []
    private var offsetOf: [UInt64: UInt64] = [:]

    /// - Parameters:
    ///   - memory: the model physical memory whose pages become table frames.
    ///   - vnode: the vnode table pages are named on (`kvps[KV_KVP]` by default).
    ///   - offsetBase: where the identities of table pages start on `vnode`;
    ///     choose a range no other user of the vnode names.
    public init(memory: PhysicalMemory, vnode: Vnode = .kvp, offsetBase: UInt64 = 0xFFFF_FFFF_0000_0000) {
        self.memory = memory
        self.vnode = vnode
        self.offsetBase = offsetBase
        self.hostBase = memory.unsafeHostBase
    }

    deinit {
        for t in sideTables.values { t.deallocate() }
    }

    /// Table frames currently held.
    public var framesInUse: Int { offsetOf.count }

    public func allocateTableFrame() throws(PageTableError) -> UInt64 {
        let index = freeOffsets.popLast() ?? nextOffsetIndex
        if index == nextOffsetIndex { nextOffsetIndex += 1 }
        let offset = offsetBase &+ index << 12
        let pfn: PageFrameNumber
        do {
            pfn = try memory.pageCreate(vnode: vnode, offset: offset)
        } catch {
            freeOffsets.append(index)
            throw .tableAllocationFailed(error.description)
        }
        let pa = pfn << 12
        offsetOf[pa] = index
        if let hostBase {
            (hostBase + Int(pa)).initializeMemory(as: UInt64.self, repeating: 0, count: 512)
        } else {
            let t = UnsafeMutablePointer<UInt64>.allocate(capacity: 512)
            t.initialize(repeating: 0, count: 512)
            sideTables[pa] = t
        }
        return pa
    }

    public func freeTableFrame(_ physicalAddress: UInt64) {
        guard let index = offsetOf.removeValue(forKey: physicalAddress) else { return }
        freeOffsets.append(index)
        if let t = sideTables.removeValue(forKey: physicalAddress) { t.deallocate() }
        // The page was created SE_EXCL with p_lckcnt 0 and is still held so.
        try? memory.pageDestroy(physicalAddress >> 12)
    }

    @inlinable @inline(__always)
    public func entries(ofTableAt physicalAddress: UInt64) -> UnsafeMutablePointer<UInt64> {
        if let hostBase {
            return (hostBase + Int(truncatingIfNeeded: physicalAddress)).assumingMemoryBound(to: UInt64.self)
        }
        return sideTables[physicalAddress] ?? _ScratchTable.shared.entries
    }
}
