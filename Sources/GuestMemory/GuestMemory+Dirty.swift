import PageTables
import Synchronization

/// What a dirty harvest does (illumos `VM_NPT_OPERATION`'s dirty ops).
public enum DirtyOperation: Hashable, Sendable {
    /// Report the dirty pages; clear nothing.
    case get
    /// Clear the dirty pages; report nothing.
    case reset
    /// Report the dirty pages and clear exactly those reported: a page
    /// dirtied during the harvest is either reported or left dirty.
    case getAndReset
}

/// The dirty pages of a range, taken from both sources (the VMM's bitmap
/// and the nested table's D bits) and held until the consumer says what
/// became of them: ``commit()`` once they are safely written (a snapshot,
/// a migration round), ``abort()`` — or dropping the harvest — when not, and
/// every page is dirty again (Firecracker #4545: never lose dirty state
/// before the copy is safe). A page dirtied again after the harvest stays
/// dirty whatever the consumer does.
///
/// While a harvest is open its pages belong to it: another harvest does not
/// report them unless this one is aborted.
public final class DirtyHarvest: @unchecked Sendable {
    /// What became of a harvest.
    public enum State: Hashable, Sendable { case open, committed, aborted }

    /// The range harvested.
    public let gpa: UInt64
    public let length: UInt64
    /// The dirty guest pages (gpa >> 12, ascending) of the range. A segment
    /// page mapped at two addresses in the range is reported at both.
    public let pages: [UInt64]
    /// The segment pages taken, per segment (what an abort puts back).
    private let taken: [(segment: MemorySegment, pages: [UInt64])]
    /// 0 open, 1 committed, 2 aborted.
    private let stateWord = Atomic<UInt8>(0)

    init(gpa: UInt64, length: UInt64, pages: [UInt64], taken: [(segment: MemorySegment, pages: [UInt64])]) {
        self.gpa = gpa
        self.length = length
        self.pages = pages
        self.taken = taken
    }

    deinit { abort() }

    /// Open, committed or aborted.
    public var state: State {
        switch stateWord.load(ordering: .acquiring) {
        case 0: return .open
        case 1: return .committed
        default: return .aborted
        }
    }

    /// The pages are safely consumed: they stay clean (until written again).
    /// Returns false if the harvest was already committed or aborted.
    @discardableResult
    public func commit() -> Bool {
        stateWord.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing).exchanged
    }

    /// The pages were not consumed: every page of the harvest is dirty again
    /// (in its segment's bitmap, which the next harvest reads like the D
    /// bits). Returns false if the harvest was already committed or aborted.
    @discardableResult
    public func abort() -> Bool {
        guard stateWord.compareExchange(expected: 0, desired: 2, ordering: .acquiringAndReleasing).exchanged else {
            return false
        }
        for (segment, pages) in taken {
            for p in pages { segment.dirty.mark(first: p, count: 1) }
        }
        return true
    }
}

extension GuestMemory {
    /// Harvests the dirty pages of `range`: those whose segment page was
    /// written by the VMM (copies, atomic stores, writable holds — the
    /// ``DirtyBitmap``) or by the guest (a write through the nested table:
    /// its D bits, ``touch(_:_:)``), through any mapping, since the last
    /// committed harvest that covered them. Both sources are cleared for
    /// exactly the pages taken (at every address mapping them); the returned
    /// ``DirtyHarvest`` gives them back unless it is committed.
    /// Unmapped parts of the range are skipped.
    public func harvestDirty(_ range: Range<UInt64>) throws(GuestMemoryError) -> DirtyHarvest {
        guard !range.isEmpty else { throw .zeroLength(gpa: range.lowerBound) }
        let (pages, taken) = try collectDirty(range.lowerBound, range.count64, clear: true)
        return DirtyHarvest(gpa: range.lowerBound, length: range.count64, pages: pages, taken: taken)
    }

    /// The guest pages (gpa >> 12, ascending) in `[gpa, gpa + length)` that
    /// are dirty by either source (see ``harvestDirty(_:)``): `get` reports
    /// them, `reset` clears them, `getAndReset` does both at once (a harvest
    /// committed at once). A segment page mapped at two GPAs in the range is
    /// reported at both. Unmapped parts of the range are skipped.
    public func harvestDirty(_ gpa: UInt64, _ length: UInt64,
                             _ operation: DirtyOperation = .getAndReset) throws(GuestMemoryError) -> [UInt64] {
        guard length > 0 else { throw .zeroLength(gpa: gpa) }
        let (_, o) = gpa.addingReportingOverflow(length)
        guard !o else { throw .rangeWraps(gpa: gpa, length: length) }
        let (pages, _) = try collectDirty(gpa, length, clear: operation != .get)
        return operation == .reset ? [] : pages
    }

    /// Both sources over the segment pages under `[gpa, gpa + length)`,
    /// taken (cleared) when `clear`: the guest pages to report, and per
    /// segment the segment pages taken.
    func collectDirty(_ gpa: UInt64, _ length: UInt64, clear: Bool) throws(GuestMemoryError)
        -> ([UInt64], [(segment: MemorySegment, pages: [UInt64])]) {
        let firstPage = gpa / Self.pageSize
        let endPage = (gpa + length - 1) / Self.pageSize + 1
        // External logs first: their pages join the VMM bitmap, so the
        // collection below takes them with the rest and an abort gives them back.
        try drainDirtyLogs(firstPage: firstPage, endPage: endPage)
        return try lock.reading { () throws(GuestMemoryError) -> ([UInt64], [(segment: MemorySegment, pages: [UInt64])]) in
            // The guest page runs in the range, with their entries.
            var runs: [(entry: MappingEntry, first: UInt64, count: UInt64)] = []
            for e in entries {
                let lo = max(firstPage, e.gpa / Self.pageSize)
                let hi = min(endPage, e.end / Self.pageSize)
                if lo < hi { runs.append((e, lo, hi - lo)) }
            }
            // Per segment: the segment-page runs, merged.
            var order: [ObjectIdentifier] = []
            var bySegment: [ObjectIdentifier: (MemorySegment, [(UInt64, UInt64)])] = [:]
            for r in runs {
                let s = r.entry.segmentPage(r.first * Self.pageSize)
                let key = ObjectIdentifier(r.entry.segment)
                if bySegment[key] == nil { order.append(key) }
                bySegment[key, default: (r.entry.segment, [])].1.append((s, s + r.count))
            }
            var taken: [ObjectIdentifier: [UInt64]] = [:]
            var takenList: [(segment: MemorySegment, pages: [UInt64])] = []
            for key in order {
                let (segment, ranges) = bySegment[key]!
                var merged: [(UInt64, UInt64)] = []
                for r in ranges.sorted(by: { $0.0 < $1.0 }) {
                    if let last = merged.last, r.0 <= last.1 { merged[merged.count - 1].1 = max(last.1, r.1) }
                    else { merged.append(r) }
                }
                // The VMM's writes: the bitmap, word by word.
                var pages: [UInt64] = []
                for (lo, hi) in merged {
                    var p = lo
                    while p < hi {
                        let w = Int(p / 64)
                        let n = min(64 - p % 64, hi - p)
                        let mask = n == 64 ? ~UInt64(0) : ((UInt64(1) << n) - 1) << (p % 64)
                        var bits = segment.dirty.take(word: w, mask: mask, clear: clear)
                        while bits != 0 {
                            pages.append(UInt64(w) * 64 + UInt64(bits.trailingZeroBitCount))
                            bits &= bits - 1
                        }
                        p += n
                    }
                }
                // The guest's writes: D bits at every address mapping those
                // segment pages (in the range or not: it is one page).
                var guestPages: [UInt64] = []
                try nested.with { _ throws(NestedPageTableError) in
                    for e in entries where e.segment === segment {
                        let eLo = e.info.offset / Self.pageSize
                        let eHi = eLo + e.info.length / Self.pageSize
                        for (lo, hi) in merged {
                            let a = max(lo, eLo), b = min(hi, eHi)
                            guard a < b else { continue }
                            let g = e.gpa + (a - eLo) * Self.pageSize
                            for addr in try nested.dirtyPages(g, (b - a) * Self.pageSize, clear: clear) {
                                guestPages.append(e.segmentPage(addr))
                            }
                        }
                    }
                }
                if !guestPages.isEmpty {
                    pages += guestPages
                    pages.sort()
                    var unique: [UInt64] = []
                    unique.reserveCapacity(pages.count)
                    for p in pages where unique.last != p { unique.append(p) }
                    pages = unique
                }
                taken[key] = pages
                if clear && !pages.isEmpty { takenList.append((segment, pages)) }
            }
            // Back to guest pages, in guest order (runs are in gpa order).
            var out: [UInt64] = []
            for r in runs {
                guard let pages = taken[ObjectIdentifier(r.entry.segment)] else { continue }
                let s = r.entry.segmentPage(r.first * Self.pageSize)
                var i = lowerBound(pages, s)
                while i < pages.count, pages[i] < s + r.count {
                    out.append(r.first + (pages[i] - s))
                    i += 1
                }
            }
            return (out, takenList)
        }
    }

    private func lowerBound(_ a: [UInt64], _ x: UInt64) -> Int {
        var lo = 0, hi = a.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if a[mid] < x { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}

extension Range where Bound == UInt64 {
    var count64: UInt64 { upperBound - lowerBound }
}
