/// Which end of a range `gap` prefers (`AH_LO` / `AH_HI`).
public enum GapDirection: Hashable, Sendable {
    /// `AH_LO`: the lowest hole that fits.
    case low
    /// `AH_HI`: the highest hole that fits (mmap's choice), helped by `a_lastgap`.
    case high
}

extension AddressSpace {
    /// `as_gap`: a hole of at least `minimumLength` bytes within
    /// `[base, base + length)`, lowest or highest, optionally one that contains
    /// `containing` (`AH_CONTAIN`). Returns the part of the hole inside the range.
    ///
    /// Follows illumos exactly, including its hints: the search starts from
    /// `as_findseg` (which updates `a_seglast`); a successful search going
    /// down records the segment above the hole in `a_lastgap`, and a later
    /// downward search for at least that segment's size starts below it. The
    /// VA hole counts as occupied. As in illumos, an address space with no
    /// segments answers with the whole range without checking `containing`.
    public func gap(minimumLength: UInt64, base: UInt64, length: UInt64, direction: GapDirection = .low,
                    containing: UInt64? = nil) throws(AddressSpaceError) -> (base: UInt64, length: UInt64) {
        let (hiboundFull, o) = base.addingReportingOverflow(length)
        guard !o else { throw .rangeWraps(address: base, size: length) }
        let lobound = base
        let noGap = AddressSpaceError.noGap(minimumLength: minimumLength, base: base, length: length)
        // The write lock, not illumos's reader lock: the search writes `a_lastgap`.
        return try withWriteLock { () throws(AddressSpaceError) -> (base: UInt64, length: UInt64) in
            // Candidate [lo, hi) -> the pieces that avoid the VA hole, in search order.
            func pieces(_ lo: UInt64, _ hi: UInt64, forward: Bool) -> [(UInt64, UInt64)] {
                guard let h = virtualHole, lo < h.upperBound, hi > h.lowerBound else { return [(lo, hi)] }
                var out: [(UInt64, UInt64)] = []
                if lo < h.lowerBound { out.append((lo, h.lowerBound)) }
                if hi > h.upperBound { out.append((h.upperBound, hi)) }
                return forward ? out : out.reversed()
            }
            func fits(_ lo: UInt64, _ hi: UInt64) -> Bool {
                guard hi > lo, hi - lo >= minimumLength else { return false }
                if let a = containing { return lo <= a && a < hi }
                return true
            }
            let forward = direction == .low
            if tree.pointee.count == 0 {
                for (lo, hi) in pieces(lobound, hiboundFull, forward: forward)
                where hi > lo && hi - lo >= minimumLength {
                    return (lo, hi - lo)
                }
                throw noGap
            }
            var hibound = hiboundFull
            var lseg: Segment?
            var hseg: Segment?
            if forward {
                hseg = _findseg(lobound, tail: true)
                lseg = hseg.flatMap { _previous($0) }
            } else {
                if let lg = _lastGap, minimumLength >= lg.size, hibound >= lg.base { hibound = lg.base }
                hseg = _findseg(hibound, tail: true)
                if let h = hseg, h.last != UInt64.max, h.last + 1 < hibound {
                    lseg = h
                    hseg = nil
                } else {
                    lseg = hseg.flatMap { _previous($0) }
                }
            }
            while true {
                // The hole between lseg and hseg; nil lo means "above 2^64".
                let lo: UInt64? = lseg.map { $0.last == UInt64.max ? nil : $0.last + 1 } ?? 0
                let hi: UInt64 = hseg?.base ?? hibound
                let loBeyond = lo.map { $0 > hibound } ?? true
                if (forward && loBeyond) || (!forward && hi < lobound) { break }
                if !(loBeyond || hi < lobound), let lo {
                    let clippedLo = max(lo, lobound)
                    let clippedHi = min(hi, hibound)
                    for (plo, phi) in pieces(clippedLo, clippedHi, forward: forward) where fits(plo, phi) {
                        if !forward { _lastGap = hseg }
                        _lastGapInsertionHint = hseg ?? lseg
                        return (plo, phi - plo)
                    }
                }
                if forward {
                    lseg = hseg
                    guard let l = lseg else { break }
                    hseg = _next(l)
                } else {
                    hseg = lseg
                    guard let h = hseg else { break }
                    lseg = _previous(h)
                }
            }
            throw noGap
        }
    }
}
