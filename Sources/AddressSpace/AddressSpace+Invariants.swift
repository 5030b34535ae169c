extension AddressSpace {
    /// Checks the tree (order, disjointness, AVL balance, parent links,
    /// segment/node agreement), the back-references and the hints, and that
    /// `a_size` is at least the non-hole mapped size. Throws
    /// ``AddressSpaceError/invariantViolated(_:)`` naming the first problem.
    public func verify() throws(AddressSpaceError) {
        try withReadLock { () throws(AddressSpaceError) in
            if let problem = tree.pointee.check() { throw .invariantViolated(problem) }
            var n = tree.pointee.first
            var counted: UInt64 = 0
            while n != 0 {
                guard let seg = tree.pointee.segments[Int(n)] else { throw .invariantViolated("node \(n) empty") }
                guard seg.addressSpace === self else {
                    throw .invariantViolated("segment 0x\(String(seg.base, radix: 16)) names another address space")
                }
                guard seg.size > 0, seg.base & 0xFFF == 0, seg.size & 0xFFF == 0 else {
                    throw .invariantViolated("segment 0x\(String(seg.base, radix: 16)) size 0x\(String(seg.size, radix: 16)) not page granular")
                }
                if seg.countsInSize { counted &+= seg.size }
                n = tree.pointee.next(n)
            }
            guard counted <= _size else {
                throw .invariantViolated("a_size 0x\(String(_size, radix: 16)) is below the mapped size 0x\(String(counted, radix: 16))")
            }
            let h = hint.load(ordering: .relaxed)
            if h != 0 && tree.pointee.segments[Int(h)] == nil {
                throw .invariantViolated("a_seglast names freed node \(h)")
            }
            if let lg = _lastGap, lg.slot == 0 { throw .invariantViolated("a_lastgap names a detached segment") }
        }
    }
}
