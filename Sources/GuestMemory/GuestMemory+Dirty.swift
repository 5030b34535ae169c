import CGuestMemory
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
        return try collectDirty(range.lowerBound, range.count64, clear: true)
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
        let h = try collectDirty(gpa, length, clear: operation != .get)
        h.commit()
        return operation == .reset ? [] : h.pages
    }

    /// Both sources over the segment pages under `[gpa, gpa + length)`,
    /// taken (cleared) when `clear`, as a harvest.
    ///
    /// Per segment: when clearing and the range covers at least half of the
    /// segment, the bitmap's buffer is swapped out whole and the bits outside
    /// the range given back (a few words at the edges and holes); otherwise
    /// the words are taken one by one. Then the D bits at every address
    /// mapping those segment pages join them, cleared in the nested table —
    /// whose dirty-region log leads the scan to the leaf tables written since
    /// the last harvest.
    func collectDirty(_ gpa: UInt64, _ length: UInt64, clear: Bool) throws(GuestMemoryError) -> DirtyHarvest {
        let firstPage = gpa / Self.pageSize
        let endPage = (gpa + length - 1) / Self.pageSize + 1
        // External logs first: their pages join the VMM bitmap, so the
        // collection below takes them with the rest and an abort gives them back.
        try drainDirtyLogs(firstPage: firstPage, endPage: endPage)
        harvestLock.lockExclusive()
        defer { harvestLock.unlockExclusive() }
        return try lock.reading { () throws(GuestMemoryError) -> DirtyHarvest in
            // The guest page runs in the range, with their entries.
            var runs: [(entry: MappingEntry, first: UInt64, count: UInt64)] = []
            for e in entries {
                let lo = max(firstPage, e.gpa / Self.pageSize)
                let hi = min(endPage, e.end / Self.pageSize)
                if lo < hi { runs.append((e, lo, hi - lo)) }
            }
            // Per segment: the segment-page ranges, merged.
            var segments: [(segment: MemorySegment, ranges: [(UInt64, UInt64)])] = []
            for r in runs {
                let s = r.entry.segmentPage(r.first * Self.pageSize)
                if let k = segments.firstIndex(where: { $0.segment === r.entry.segment }) {
                    segments[k].ranges.append((s, s + r.count))
                } else {
                    segments.append((r.entry.segment, [(s, s + r.count)]))
                }
            }
            var taken: [TakenBits] = []
            for (segment, ranges) in segments {
                var merged: [(UInt64, UInt64)] = []
                for r in ranges.sorted(by: { $0.0 < $1.0 }) {
                    if let last = merged.last, r.0 <= last.1 { merged[merged.count - 1].1 = max(last.1, r.1) }
                    else { merged.append(r) }
                }
                let bitmap = segment.dirty
                let covered = merged.reduce(0) { $0 + ($1.1 - $1.0) }
                let t: TakenBits
                if clear && covered * 2 >= bitmap.pages {
                    let buffer = bitmap.swapBuffers()
                    t = TakenBits(swappedFrom: bitmap, buffer: buffer)
                    // Give back what lies outside the range.
                    var at: UInt64 = 0
                    for (lo, hi) in merged + [(bitmap.pages, bitmap.pages)] {
                        giveBack(bitmap, buffer, from: at, to: lo)
                        at = hi
                    }
                } else {
                    let w0 = Int(merged[0].0 / 64), w1 = Int((merged[merged.count - 1].1 + 63) / 64)
                    t = TakenBits(bitmap: bitmap, firstWord: w0, wordCount: w1 - w0)
                    for (lo, hi) in merged {
                        var p = lo
                        while p < hi {
                            let w = Int(p / 64)
                            let n = min(64 - p % 64, hi - p)
                            let mask = n == 64 ? ~UInt64(0) : ((UInt64(1) << n) - 1) << (p % 64)
                            t.words[w - w0] |= bitmap.take(word: w, mask: mask, clear: clear)
                            p += n
                        }
                    }
                }
                // The guest's writes: D bits at every address mapping those
                // segment pages (in the range or not: it is one page).
                try nested.with { _ throws(NestedPageTableError) in
                    for e in entries where e.segment === segment {
                        let eLo = e.info.offset / Self.pageSize
                        let eHi = eLo + e.info.length / Self.pageSize
                        for (lo, hi) in merged {
                            let a = max(lo, eLo), b = min(hi, eHi)
                            guard a < b else { continue }
                            let g = e.gpa + (a - eLo) * Self.pageSize
                            try nested.table.scanDirty(g, length: (b - a) * Self.pageSize, clear: clear) { addr in
                                t.add(e.segmentPage(addr))
                            }
                        }
                    }
                }
                taken.append(t)
            }
            let dirtyRuns = runs.map { r in
                DirtyRun(firstPage: r.first, count: r.count, segmentPage: r.entry.segmentPage(r.first * Self.pageSize),
                         taken: segments.firstIndex { $0.segment === r.entry.segment }!)
            }
            let harvest = DirtyHarvest(gpa: gpa, length: length, runs: dirtyRuns, taken: taken)
            if !clear { harvest.commit() }   // nothing was taken: nothing to give back
            return harvest
        }
    }

    /// Gives the bits of segment pages `[from, to)` in a swapped-out buffer
    /// back to the bitmap's active buffer.
    private func giveBack(_ bitmap: DirtyBitmap, _ buffer: UnsafeMutablePointer<UInt64>, from: UInt64, to: UInt64) {
        var p = from
        while p < to {
            let n = min(64 - p % 64, to - p)
            bitmap.giveBack(buffer, word: Int(p / 64), mask: n == 64 ? ~UInt64(0) : ((UInt64(1) << n) - 1) << (p % 64))
            p += n
        }
    }
}

extension Range where Bound == UInt64 {
    var count64: UInt64 { upperBound - lowerBound }
}
