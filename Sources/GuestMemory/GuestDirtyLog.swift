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
            var marked = 0
            var cached: MappingEntry?
            for (w, word) in words.enumerated() where word != 0 {
                var bits = word
                while bits != 0 {
                    let page = firstGuestPage + UInt64(w) * 64 + UInt64(bits.trailingZeroBitCount)
                    bits &= bits - 1
                    let gpa = page * Self.pageSize
                    if let c = cached, gpa >= c.gpa, gpa < c.end {} else { cached = entry(containing: gpa) }
                    guard let e = cached else { continue }
                    e.segment.dirty.mark(first: e.segmentPage(gpa), count: 1)
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
