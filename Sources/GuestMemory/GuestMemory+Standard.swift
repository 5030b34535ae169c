extension GuestMemory {
    /// 3 GiB: guest RAM below the 32-bit PCI hole (libvmmapi's `lowmem_limit`).
    public static let defaultLowmemLimit: UInt64 = 3 << 30
    /// 4 GiB: where highmem starts, above the hole.
    public static let highmemBase: UInt64 = 4 << 30

    /// A guest with `size` bytes of RAM laid out as libvmmapi's
    /// `vm_setup_memory` does: one sysmem segment (id 0), its first
    /// `min(size, lowmemLimit)` bytes mapped at GPA 0 and the rest, if any,
    /// at 4 GiB from segment offset 4 GiB (the segment is `4 GiB + highmem`
    /// long, its hole never touched, so it costs nothing). Both mappings are
    /// `rwx`. The guest space ends at the end of highmem (or of lowmem).
    /// `nested` is the nested page table's format and A/D mode.
    public static func standard(size: UInt64, lowmemLimit: UInt64 = defaultLowmemLimit,
                                backing: MemorySegment.Backing = .memfd,
                                wired: Bool = false,
                                nested: NestedTableMode = NestedTableMode()) throws(GuestMemoryError) -> GuestMemory {
        guard size > 0, size % pageSize == 0 else { throw .invalidSegmentLength(id: 0, length: size) }
        guard lowmemLimit > 0, lowmemLimit % pageSize == 0, lowmemLimit <= highmemBase else {
            throw .beyondGuestSpace(gpa: 0, length: lowmemLimit, limit: highmemBase)
        }
        let lowmem = min(size, lowmemLimit)
        let highmem = size - lowmem
        let (top, o) = highmemBase.addingReportingOverflow(highmem)
        guard !o, top <= addressLimit else { throw .invalidSegmentLength(id: 0, length: size) }
        let limit = highmem > 0 ? top : lowmem
        let memory = try GuestMemory(limit: limit, nested: nested)
        try memory.allocateSegment(id: 0, length: limit, backing: backing)
        try memory.map(gpa: 0, segment: 0, offset: 0, length: lowmem, protection: .all, wired: wired)
        if highmem > 0 {
            try memory.map(gpa: highmemBase, segment: 0, offset: highmemBase, length: highmem,
                           protection: .all, wired: wired)
        }
        return memory
    }
}
