extension PhysicalMemory {
    /// The host address of frame 0 when frames hold bytes; frame `pfn` is at
    /// `+ pfn × 4096`. For page-table walkers that must not pay for a lookup
    /// per level; callers must only touch frames they own.
    public var unsafeHostBase: UnsafeMutableRawPointer? {
        table.pointee.backing?.base
    }

    /// Runs `body` on the 4096 bytes of a page that is not on the free list.
    public func withContents<R>(of pfn: PageFrameNumber,
                                _ body: (UnsafeMutableRawBufferPointer) -> R) throws(PhysicalMemoryError) -> R {
        let pointer = try locked { (t) throws(PhysicalMemoryError) -> UnsafeMutableRawPointer in
            guard let backing = t.backing else { throw .notBacked }
            _ = try t.slot(of: pfn)
            return backing.pointer(pfn)
        }
        return body(UnsafeMutableRawBufferPointer(start: pointer, count: Int(Self.pageSize)))
    }

    /// Copies `bytes` into a page at `offset`.
    public func write(_ bytes: [UInt8], to pfn: PageFrameNumber, at offset: Int = 0) throws(PhysicalMemoryError) {
        guard offset >= 0, offset <= Int(Self.pageSize), bytes.count <= Int(Self.pageSize) - offset else {
            throw .rangeOutsidePage(offset: offset, length: bytes.count)
        }
        try withContents(of: pfn) { page in
            bytes.withUnsafeBytes { src in
                guard let s = src.baseAddress, let d = page.baseAddress else { return }
                (d + offset).copyMemory(from: s, byteCount: src.count)
            }
        }
    }

    /// Reads `count` bytes of a page from `offset`.
    public func read(_ pfn: PageFrameNumber, at offset: Int = 0, count: Int) throws(PhysicalMemoryError) -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= Int(Self.pageSize), count <= Int(Self.pageSize) - offset else {
            throw .rangeOutsidePage(offset: offset, length: count)
        }
        return try withContents(of: pfn) { page in Array(page[offset ..< offset + count]) }
    }
}
