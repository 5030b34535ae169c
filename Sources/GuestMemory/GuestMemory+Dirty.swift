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
    /// The guest pages (gpa >> 12, ascending) in `[gpa, gpa + length)` whose
    /// segment page the VMM has written (copies, atomic stores, writable
    /// holds) through any mapping, since the last harvest that cleared it.
    /// A segment page mapped at two GPAs in the range is reported at both.
    /// Unmapped parts of the range are skipped.
    public func harvestDirty(_ gpa: UInt64, _ length: UInt64,
                             _ operation: DirtyOperation = .getAndReset) throws(GuestMemoryError) -> [UInt64] {
        guard length > 0 else { throw .zeroLength(gpa: gpa) }
        let (_, o) = gpa.addingReportingOverflow(length)
        guard !o else { throw .rangeWraps(gpa: gpa, length: length) }
        let firstPage = gpa / Self.pageSize
        let endPage = (gpa + length - 1) / Self.pageSize + 1
        return lock.reading {
            // The guest page runs in the range, with their entries.
            var runs: [(entry: MappingEntry, first: UInt64, count: UInt64)] = []
            for e in entries {
                let lo = max(firstPage, e.gpa / Self.pageSize)
                let hi = min(endPage, e.end / Self.pageSize)
                if lo < hi { runs.append((e, lo, hi - lo)) }
            }
            // Per segment: the segment-page runs, merged, then taken word by word.
            var taken: [ObjectIdentifier: [UInt64]] = [:]
            var bySegment: [ObjectIdentifier: (MemorySegment, [(UInt64, UInt64)])] = [:]
            for r in runs {
                let s = r.entry.segmentPage(r.first * Self.pageSize)
                bySegment[ObjectIdentifier(r.entry.segment), default: (r.entry.segment, [])].1.append((s, s + r.count))
            }
            for (key, (segment, ranges)) in bySegment {
                var merged: [(UInt64, UInt64)] = []
                for r in ranges.sorted(by: { $0.0 < $1.0 }) {
                    if let last = merged.last, r.0 <= last.1 { merged[merged.count - 1].1 = max(last.1, r.1) }
                    else { merged.append(r) }
                }
                var pages: [UInt64] = []
                for (lo, hi) in merged {
                    var p = lo
                    while p < hi {
                        let w = Int(p / 64)
                        let n = min(64 - p % 64, hi - p)
                        let mask = n == 64 ? ~UInt64(0) : ((UInt64(1) << n) - 1) << (p % 64)
                        var bits = segment.dirty.take(word: w, mask: mask, clear: operation != .get)
                        while bits != 0 {
                            pages.append(UInt64(w) * 64 + UInt64(bits.trailingZeroBitCount))
                            bits &= bits - 1
                        }
                        p += n
                    }
                }
                taken[key] = pages
            }
            guard operation != .reset else { return [] }
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
            return out
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
