/// A record of guest writes kept outside VMKit — KVM's dirty log, in any of
/// its modes — that every harvest drains before it collects. Draining moves
/// the log's pages into the VMM's dirty bitmap (``GuestMemory/markDirty(firstGuestPage:words:)``)
/// and re-arms the log for them; from then on they are ordinary dirty pages,
/// so a harvest returns the union of every source, and an aborted harvest
/// puts them back where the next one finds them. No source is ever cleared
/// of a page that has not reached the bitmap first.
public protocol GuestDirtyLog: AnyObject, Sendable {
    /// A short name for errors and reports (`kvm-bitmap`, `kvm-ring`, ...).
    var dirtyLogName: String { get }
    /// Hands every page the log holds among guest pages `[firstPage,
    /// endPage)` (gpa >> 12) to `memory.markDirty(firstGuestPage:words:)`,
    /// then re-arms the log for those pages. Called with no lock of
    /// `memory` held; a page the guest writes meanwhile is either handed
    /// over or left in the log. On failure, throw
    /// ``GuestMemoryError/dirtyLogFailed(log:reason:)`` and keep what was not
    /// handed over.
    func drain(into memory: GuestMemory, firstPage: UInt64, endPage: UInt64) throws(GuestMemoryError)
}

extension GuestMemory {
    /// Adds `log` to the sources every harvest drains. Attaching the same
    /// log twice is a no-op.
    public func attachDirtyLog(_ log: any GuestDirtyLog) {
        lock.writing {
            if !dirtyLogs.contains(where: { $0 === log }) { dirtyLogs.append(log) }
        }
    }

    /// Removes `log` from the harvest's sources (after a last drain of its
    /// whole range, so that nothing it held is lost).
    public func detachDirtyLog(_ log: any GuestDirtyLog) throws(GuestMemoryError) {
        try log.drain(into: self, firstPage: 0, endPage: limit / Self.pageSize)
        lock.writing { dirtyLogs.removeAll { $0 === log } }
    }

    /// Marks dirty, in the VMM bitmap of the segment behind each, the guest
    /// pages whose bits are set in `words`: bit `i` of word `w` is guest page
    /// `firstGuestPage + 64 * w + i` (KVM's dirty-bitmap layout). Pages in
    /// no mapping are ignored. Returns how many set bits fell on mapped pages.
    @discardableResult
    public func markDirty(firstGuestPage: UInt64, words: UnsafeBufferPointer<UInt64>) -> Int {
        lock.reading {
            // The mapping in use, as plain values and an unretained bitmap:
            // the read lock keeps the mapping table, and so its segments and
            // their bitmaps, alive, and a retain and a release per page (of
            // the entry, its segment and the bitmap) cost more than the marking
            // itself (43 ns a page with 1 % of a 4 GiB slot dirty).
            var lo: UInt64 = 1, hi: UInt64 = 0, delta: UInt64 = 0
            var bitmap: Unmanaged<DirtyBitmap>?
            /// Makes the mapping holding `gpa` the one in use; false if none does.
            func use(_ gpa: UInt64) -> Bool {
                if gpa >= lo && gpa < hi { return true }
                guard let e = entry(containing: gpa) else { return false }
                lo = e.gpa; hi = e.end
                delta = e.segmentPage(e.gpa) &- e.gpa / Self.pageSize
                bitmap = Unmanaged.passUnretained(e.segment.dirty)
                return true
            }
            var marked = 0
            for (w, word) in words.enumerated() where word != 0 {
                let firstPage = firstGuestPage + UInt64(w) * 64
                let firstGPA = firstPage * Self.pageSize
                // A word whose 64 pages one mapping covers is one or two
                // word operations on the segment's bitmap, not one per page.
                if use(firstGPA), firstGPA + 64 * Self.pageSize <= hi, let b = bitmap {
                    let s0 = firstPage &+ delta
                    let shift = s0 % 64
                    b._withUnsafeGuaranteedRef { d in
                        d.markWord(Int(s0 / 64), word << shift)
                        if shift != 0 { d.markWord(Int(s0 / 64) + 1, word >> (64 - shift)) }
                    }
                    marked += word.nonzeroBitCount
                    continue
                }
                var bits = word
                while bits != 0 {
                    let page = firstPage + UInt64(bits.trailingZeroBitCount)
                    bits &= bits - 1
                    guard use(page * Self.pageSize), let b = bitmap else { continue }
                    b._withUnsafeGuaranteedRef { $0.markPage(page &+ delta) }
                    marked += 1
                }
            }
            return marked
        }
    }

    /// Drains every attached log over guest pages `[firstPage, endPage)`.
    func drainDirtyLogs(firstPage: UInt64, endPage: UInt64) throws(GuestMemoryError) {
        let logs = lock.reading { dirtyLogs }
        for log in logs { try log.drain(into: self, firstPage: firstPage, endPage: endPage) }
    }
}
