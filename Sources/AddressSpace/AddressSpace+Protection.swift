extension AddressSpace {
    /// Walks the page-rounded range piece by piece, requiring it to be covered
    /// by segments without holes (as `as_setprot` and `as_checkprot` do, with
    /// `ENOMEM` for a hole), calling `body` on each piece with the lock held.
    private func forEachPiece(_ address: UInt64, _ size: UInt64, write: Bool,
                              _ body: (Segment, UInt64, UInt64) throws(SegmentError) -> Void)
        throws(AddressSpaceError) {
        let (base, rsize) = try Self.pageRound(address, size)
        let walk = { () throws(AddressSpaceError) in
            guard var seg = self._segat(base) else { throw .noSegment(address: base) }
            var raddr = base
            var remaining = rsize
            while remaining != 0 {
                if raddr > seg.last {
                    guard let next = self._next(seg), next.base == raddr else { throw .noSegment(address: raddr) }
                    seg = next
                }
                let piece = min(remaining, seg.last - raddr + 1)
                do throws(SegmentError) {
                    try body(seg, raddr, piece)
                } catch {
                    throw .segment(error, segmentBase: seg.base)
                }
                remaining -= piece
                if remaining == 0 { break }
                raddr += piece
            }
        }
        if write { try withWriteLock(walk) } else { try withReadLock(walk) }
    }

    /// `as_setprot`: sets the protections of every page in the range through
    /// each segment's driver. A hole in the range is ``AddressSpaceError/noSegment(address:)``
    /// (illumos: `ENOMEM`); pieces before it keep their new protections, as in illumos.
    public func setProtection(address: UInt64, size: UInt64, protection: Protection) throws(AddressSpaceError) {
        try forEachPiece(address, size, write: true) { (seg, a, n) throws(SegmentError) in
            try Self.check(seg, .setprot)
            try seg.driver.setprot(seg, address: a, size: n, protection: protection)
        }
    }

    /// `as_checkprot`: whether every page in the range allows `protection`;
    /// the first refusal is thrown.
    public func checkProtection(address: UInt64, size: UInt64, protection: Protection) throws(AddressSpaceError) {
        try forEachPiece(address, size, write: false) { (seg, a, n) throws(SegmentError) in
            try Self.check(seg, .checkprot)
            try seg.driver.checkprot(seg, address: a, size: n, protection: protection)
        }
    }
}
