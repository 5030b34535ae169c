import Testing
import PageTables
import PhysicalMemory

typealias X86Table = PageTable<X86PTEFormat, HostTableAllocator>

@Suite("Page table map / lookup / unmap / protect")
struct PageTableTests {
    @Test func mapAndLookupA4KPage() throws {
        let pt = try X86Table(frames: try HostTableAllocator())
        #expect(pt.tableCount == 1)
        try pt.map(0x40_0000, to: 0x1234_5000, attributes: .userData)
        #expect(pt.tableCount == 4)
        let t = try #require(try pt.lookup(0x40_0ABC))
        #expect(t.physicalAddress == 0x1234_5ABC)
        #expect(t.size == .size4K)
        #expect(t.attributes == .userData)
        #expect(t.pageBase == 0x40_0000 && t.frameAddress == 0x1234_5000)
        #expect(try pt.physicalAddress(of: 0x40_0FFF) == 0x1234_5FFF)
        #expect(try pt.lookup(0x40_1000) == nil)
        // A neighbour in the same PT needs no new table.
        try pt.map(0x40_1000, to: 0x9000, attributes: .kernelData)
        #expect(pt.tableCount == 4)
        #expect(pt.leafCount(.size4K) == 2)
        #expect(pt.mappedBytes == 8192)
        #expect(throws: PageTableError.alreadyMapped(address: 0x40_0000, existing: .size4K)) {
            try pt.map(0x40_0000, to: 0x5000, attributes: .kernelData)
        }
    }

    @Test func addressAndAlignmentErrorsAreTyped() throws {
        let pt = try X86Table(frames: try HostTableAllocator())
        #expect(throws: PageTableError.nonCanonicalAddress(0x0000_9000_0000_0000)) {
            try pt.map(0x0000_9000_0000_0000, to: 0, attributes: .kernelData)
        }
        #expect(throws: PageTableError.nonCanonicalAddress(0x0000_9000_0000_0000)) { try pt.lookup(0x0000_9000_0000_0000) }
        #expect(throws: PageTableError.misalignedAddress(0x1800, size: .size4K)) {
            try pt.map(0x1800, to: 0, attributes: .kernelData)
        }
        #expect(throws: PageTableError.misalignedAddress(0x1000, size: .size2M)) {
            try pt.map(0x1000, to: 0, size: .size2M, attributes: .kernelData)
        }
        #expect(throws: PageTableError.misalignedPhysicalAddress(0x1000, size: .size2M)) {
            try pt.map(0x20_0000, to: 0x1000, size: .size2M, attributes: .kernelData)
        }
        #expect(throws: PageTableError.invalidLength(0)) { try pt.unmap(0x1000, length: 0) }
        #expect(throws: PageTableError.invalidLength(0x800)) { try pt.unmap(0x1000, length: 0x800) }
        #expect(throws: PageTableError.rangeOverflow(address: 0xFFFF_FFFF_FFFF_F000, length: 0x2000)) {
            try pt.unmap(0xFFFF_FFFF_FFFF_F000, length: 0x2000)
        }
        #expect(throws: PageTableError.nonCanonicalAddress(0x0000_8000_0000_0000)) {
            try pt.unmap(0x0000_7FFF_FFFF_F000, length: 0x2000)
        }
        #expect(pt.tableCount == 1)
    }

    @Test func largePagesAndOverlaps() throws {
        let pt = try X86Table(frames: try HostTableAllocator())
        try pt.map(0x4000_0000, to: 0x8000_0000, size: .size1G, attributes: .kernelData)
        #expect(pt.tableCount == 2)                          // root + PDPT
        #expect(try pt.lookup(0x4123_4567)?.physicalAddress == 0x8123_4567)
        #expect(try pt.lookup(0x4123_4567)?.size == .size1G)
        #expect(throws: PageTableError.alreadyMapped(address: 0x4000_0000, existing: .size1G)) {
            try pt.map(0x4020_0000, to: 0, size: .size2M, attributes: .kernelData)
        }
        try pt.map(0x20_0000, to: 0x60_0000, size: .size2M, attributes: .kernelText)
        #expect(try pt.lookup(0x3F_FFFF)?.physicalAddress == 0x7F_FFFF)
        #expect(throws: PageTableError.alreadyMapped(address: 0x20_0000, existing: .size2M)) {
            try pt.map(0x20_1000, to: 0, attributes: .kernelData)
        }
        // A 4K page under a 2M slot blocks a 2M mapping; once unmapped the
        // empty PT is replaced by the large leaf.
        try pt.map(0x40_3000, to: 0x3000, attributes: .kernelData)
        #expect(throws: PageTableError.alreadyMapped(address: 0x40_3000, existing: .size4K)) {
            try pt.map(0x40_0000, to: 0x0, size: .size2M, attributes: .kernelData)
        }
        let tables = pt.tableCount
        try pt.unmap(0x40_3000, length: 0x1000)
        try pt.map(0x40_0000, to: 0x0, size: .size2M, attributes: .kernelData)
        #expect(pt.tableCount == tables - 1)
        #expect(pt.leafCount(.size2M) == 2 && pt.leafCount(.size1G) == 1 && pt.leafCount(.size4K) == 0)
    }

    @Test func partialUnmapOfALargePageDemotesIt() throws {
        let pt = try X86Table(frames: try HostTableAllocator())
        try pt.map(0x20_0000, to: 0x4000_0000, size: .size2M, attributes: .kernelText)
        let removed = try pt.unmap(0x20_5000, length: 0x2000)
        #expect(removed == 0x2000)
        #expect(pt.leafCount(.size2M) == 0)
        #expect(pt.leafCount(.size4K) == 510)
        #expect(try pt.lookup(0x20_5000) == nil && pt.lookup(0x20_6000) == nil)
        #expect(try pt.lookup(0x20_4FFF)?.physicalAddress == 0x4000_4FFF)
        #expect(try pt.lookup(0x20_7000)?.physicalAddress == 0x4000_7000)
        #expect(try pt.lookup(0x20_7000)?.attributes == .kernelText)
        // 1G demotes to 2M leaves, then one of those to 4K.
        try pt.map(0x4000_0000, to: 0x8000_0000, size: .size1G, attributes: .kernelData)
        try pt.unmap(0x4000_0000, length: 0x1000)
        #expect(pt.leafCount(.size1G) == 0 && pt.leafCount(.size2M) == 511)
        #expect(pt.leafCount(.size4K) == 510 + 511)
        #expect(try pt.lookup(0x7FFF_FFFF)?.physicalAddress == 0xBFFF_FFFF)
        // Unmapping everything, holes included.
        let rest = try pt.unmap(0, length: 0x8000_0000)
        #expect(rest == 510 * 4096 + 511 * 4096 + 511 * (2 << 20))
        #expect(pt.mappedBytes == 0)
        #expect(pt.reclaimEmptyTables() > 0)
        #expect(pt.tableCount == 1)
    }

    @Test func reclaimFreesEmptyTablesOnly() throws {
        let alloc = try HostTableAllocator()
        let pt = try X86Table(frames: alloc)
        try pt.map(0x1000, to: 0x1000, attributes: .kernelData)
        try pt.map(0xFFFF_FE00_0000_0000, to: 0x2000, attributes: .kernelData)
        #expect(pt.tableCount == 7)
        try pt.unmap(0x1000, length: 0x1000)
        #expect(pt.reclaimEmptyTables() == 3)
        #expect(pt.tableCount == 4)
        #expect(alloc.framesInUse == 4)
        #expect(try pt.lookup(0xFFFF_FE00_0000_0000)?.physicalAddress == 0x2000)
    }

    @Test func protectChangesRightsAndSplitsLargePagesAtTheEdges() throws {
        let pt = try X86Table(frames: try HostTableAllocator())
        try pt.map(0x20_0000, to: 0x4000_0000, size: .size2M, attributes: .kernelData)
        try pt.map(0x40_0000, to: 0x5000_0000, attributes: .kernelData)
        let visited = try pt.protect(0x20_0000, length: 0x20_1000, access: .read)
        #expect(visited == 0x20_1000)
        #expect(pt.leafCount(.size2M) == 1)
        #expect(try pt.lookup(0x30_0000)?.attributes.access == .read)
        #expect(try pt.lookup(0x40_0000)?.attributes.access == .read)
        try pt.protect(0x20_0000, length: 0x1000, access: .all)
        #expect(pt.leafCount(.size2M) == 0 && pt.leafCount(.size4K) == 513)
        #expect(try pt.lookup(0x20_0000)?.attributes.access == .all)
        #expect(try pt.lookup(0x20_1000)?.attributes.access == .read)
        #expect(throws: PageTableError.attributesNotRepresentable(format: "x86-64", reason: "a present page that is not readable (---)")) {
            try pt.protect(0x40_0000, length: 0x1000, access: [])
        }
    }

    @Test func simulatedAccessSetsAccessedAndDirty() throws {
        let pt = try X86Table(frames: try HostTableAllocator())
        try pt.map(0x40_0000, to: 0x1000, attributes: .kernelData)
        try pt.map(0x40_1000, to: 0x2000, attributes: PageAttributes(access: .read, user: true))
        guard case .translated(let r) = try pt.access(0x40_0010, .read) else { Issue.record("read failed"); return }
        #expect(r.attributes.accessed && !r.attributes.dirty)
        guard case .translated(let w) = try pt.access(0x40_0010, .write) else { Issue.record("write failed"); return }
        #expect(w.attributes.dirty)
        #expect(w.entry == 0x8000_0000_0000_1063)
        #expect(try pt.access(0x40_1000, .write) == .protectionViolation(try #require(try pt.lookup(0x40_1000))))
        if case .protectionViolation = try pt.access(0x40_0000, .execute) {} else { Issue.record("NX page executed") }
        if case .protectionViolation = try pt.access(0x40_0000, .read, user: true) {} else { Issue.record("user read kernel page") }
        if case .translated = try pt.access(0x40_1000, .read, user: true) {} else { Issue.record("user read failed") }
        #expect(try pt.access(0x80_0000_0000, .read) == .notMapped(level: 4))
        #expect(try pt.access(0x40_2000, .read) == .notMapped(level: 1))
        #expect(try pt.harvestDirty(0x40_0000, length: 0x2000) == [0x40_0000])
        #expect(try pt.harvestDirty(0x40_0000, length: 0x2000) == [])
        #expect(try pt.lookup(0x40_0000)?.attributes.accessed == false)
    }

    @Test func kernelHighHalfAddressesWalkSignExtended() throws {
        let pt = try X86Table(frames: try HostTableAllocator())
        try pt.map(0xFFFF_FE00_0000_0000, to: 0x20_0000, size: .size2M, attributes: .kernelData)
        try pt.map(0xFFFF_FFFF_FFFF_F000, to: 0x3000, attributes: .kernelData)
        try pt.map(0x1000, to: 0x4000, attributes: .userData)
        let bases = pt.mappings.map(\.virtualAddress)
        #expect(bases == [0x1000, 0xFFFF_FE00_0000_0000, 0xFFFF_FFFF_FFFF_F000])
        #expect(try pt.unmap(0xFFFF_FFFF_FFFF_F000, length: 0x1000) == 0x1000)
    }

    @Test func mapRangeUsesTheLargestAlignedPages() throws {
        let pt = try X86Table(frames: try HostTableAllocator())
        // 4K up to 2M, 2M pages up to 1G, one 1G page, then 2M and 4K tails.
        let va: UInt64 = 0x3FF000, len: UInt64 = 0x8040_3000 - 0x3FF000
        let leaves = try pt.mapRange(va, to: va, length: len, attributes: .kernelData)
        #expect(pt.leafCount(.size1G) == 1)
        #expect(pt.leafCount(.size2M) == 510 + 2)
        #expect(pt.leafCount(.size4K) == 1 + 3)
        #expect(leaves == 1 + 512 + 4)
        #expect(pt.mappedBytes == len)
        #expect(try pt.lookup(0x8040_2FFF)?.physicalAddress == 0x8040_2FFF)
        #expect(try pt.lookup(0x8040_3000) == nil)
        // A clash rolls back everything mapped so far.
        let pt2 = try X86Table(frames: try HostTableAllocator())
        try pt2.map(0x60_0000, to: 0, attributes: .kernelData)
        #expect(throws: PageTableError.alreadyMapped(address: 0x60_0000, existing: .size4K)) {
            try pt2.mapRange(0, to: 0, length: 0x80_0000, attributes: .kernelData, largestPage: .size2M)
        }
        #expect(pt2.mappedBytes == 0x1000)
    }

    @Test func eptTablesTranslateGuestPhysicalAddresses() throws {
        let ept = try PageTable<EPTFormat, HostTableAllocator>(frames: try HostTableAllocator())
        try ept.map(0, to: 0x1_0000_0000, size: .size2M, attributes: PageAttributes(access: .all))
        try ept.map(0xFFFF_FFFF_F000, to: 0x5000, attributes: PageAttributes(access: .read))
        #expect(try ept.lookup(0x1234)?.physicalAddress == 0x1_0000_1234)
        #expect(try ept.lookup(0xFFFF_FFFF_F000)?.attributes.access == .read)
        #expect(throws: PageTableError.addressOutOfRange(1 << 48, limit: 1 << 48)) { try ept.lookup(1 << 48) }
        guard case .translated(let w) = try ept.access(0x10, .write) else { Issue.record("write failed"); return }
        #expect(w.entry & (EPTFormat.accessed | EPTFormat.dirty) == EPTFormat.accessed | EPTFormat.dirty)
        let pointer = try EPTFormat.eptPointer(root: ept.root, accessedDirtyEnabled: true)
        #expect(pointer & ~0xFFF == ept.root)
    }

    @Test func tablesCanLiveInPhysicalMemoryAsKernelPages() throws {
        for backing in [PhysicalMemory.Backing.hostMemory, .metadataOnly] {
            let pm = try PhysicalMemory(pageCount: 4096, backing: backing)
            do {
                let alloc = PhysicalMemoryTableAllocator(memory: pm)
                let pt = try PageTable<X86PTEFormat, PhysicalMemoryTableAllocator>(frames: alloc)
                try pt.map(0xFFFF_FE00_0000_0000, to: 0x5000, attributes: .kernelData)
                try pt.map(0x1000, to: 0x6000, attributes: .kernelData)
                #expect(pt.tableCount == 7)
                #expect(pm.memstat().kernel == 7)
                #expect(try pm.pageCount(of: .kvp) == 7)
                #expect(try pt.lookup(0xFFFF_FE00_0000_0123)?.physicalAddress == 0x5123)
                // The root is a real frame: its entry for the kernel half is readable in memory.
                if backing == .hostMemory {
                    let rootEntry = try pm.read(pt.root >> 12, at: 508 * 8, count: 8)
                    #expect(rootEntry[0] & 0x7 == 0x7)
                }
                try pt.unmap(0x1000, length: 0x1000)
                #expect(pt.reclaimEmptyTables() == 3)
                #expect(pm.memstat().kernel == 4)
            }
            #expect(pm.memstat().kernel == 0)
            #expect(pm.freelistPages == 4096)
            try pm.verify()
        }
    }

    @Test func tableAllocationFailureIsTyped() throws {
        let pm = try PhysicalMemory(pageCount: 2)
        let pt = try PageTable<X86PTEFormat, PhysicalMemoryTableAllocator>(frames: PhysicalMemoryTableAllocator(memory: pm))
        #expect(throws: PageTableError.tableAllocationFailed("physical memory: 1 pages requested, 0 available")) {
            try pt.map(0x1000, to: 0, attributes: .kernelData)
        }
        let small = try X86Table(frames: try HostTableAllocator(frameLimit: 2))
        #expect(throws: PageTableError.tableAllocationFailed("host allocator limit of 2 frames reached")) {
            try small.map(0x1000, to: 0, attributes: .kernelData)
        }
    }
}
