extension PhysicalMemory {
    /// Takes a frame for the boot allocator (`boot_alloc`). Boot pages have no
    /// identity and are counted in `::memstat`'s "Boot pages" row until
    /// ``releaseBootPages()``.
    public func bootPageAllocate() throws(PhysicalMemoryError) -> PageFrameNumber {
        try locked { (t) throws(PhysicalMemoryError) -> PageFrameNumber in
            guard let pfn = t.free.take() else { throw .outOfMemory(requested: 1, available: 0) }
            guard let slot = t.slab.allocate() else {
                t.free.put(pfn)
                throw .outOfMemory(requested: 1, available: 0)
            }
            t.slab[slot].pfn = pfn
            t.slab[slot].count = 1
            t.slab[slot].flags = [.live, .boot]
            t.frames.insert(slot, in: t.slab)
            t.bootCount += 1
            return pfn
        }
    }

    /// Returns every boot page to the free list (`release_bootstrap`).
    /// Returns how many there were.
    @discardableResult
    public func releaseBootPages() -> UInt64 {
        locked { t in
            var boot: [UInt32] = []
            t.forEachSlot { if t.slab[$0].flags.contains(.boot) { boot.append($0) } }
            for slot in boot { t.releaseFrame(slot) }
            t.bootCount = 0
            return UInt64(boot.count)
        }
    }
}
