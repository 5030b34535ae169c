/// Events an address-space callback can ask for (`AS_*_EVENT`).
public struct AddressSpaceEvents: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `AS_FREE_EVENT` (1)
    public static let free = AddressSpaceEvents(rawValue: 1)
    /// `AS_SETPROT_EVENT` (2)
    public static let setProtection = AddressSpaceEvents(rawValue: 2)
    /// `AS_UNMAP_EVENT` (4)
    public static let unmap = AddressSpaceEvents(rawValue: 4)
}

/// A registered `as_add_callback`.
struct UnmapCallback {
    let id: Int
    let events: AddressSpaceEvents
    let base: UInt64
    let last: UInt64
    let handler: @Sendable (AddressSpace, AddressSpaceEvents) -> Void
}

extension AddressSpace {
    /// `as_add_callback`: runs `handler` when an operation on `[base, base + size)`
    /// needs the event — an unmap that found locked pages calls it (without
    /// `a_lock`) so that the owner of the locks can drop them, then retries.
    /// Callbacks run once and are removed. Returns an id for ``removeCallback(_:)``.
    @discardableResult
    public func addCallback(events: AddressSpaceEvents, base: UInt64, size: UInt64,
                            handler: @escaping @Sendable (AddressSpace, AddressSpaceEvents) -> Void)
        throws(AddressSpaceError) -> Int {
        guard size > 0 else { throw .zeroSize(address: base) }
        let (last, o) = base.addingReportingOverflow(size - 1)
        guard !o else { throw .rangeWraps(address: base, size: size) }
        return contents.withLock {
            let id = nextCallbackID
            nextCallbackID += 1
            callbacks.append(UnmapCallback(id: id, events: events, base: base, last: last, handler: handler))
            return id
        }
    }

    /// `as_delete_callback`. Returns whether it was registered.
    @discardableResult
    public func removeCallback(_ id: Int) -> Bool {
        contents.withLock {
            guard let i = callbacks.firstIndex(where: { $0.id == id }) else { return false }
            callbacks.remove(at: i)
            return true
        }
    }

    /// Wakes unmaps waiting for locked pages (`AS_UNMAPWAIT`): drivers call it
    /// when they release soft locks, as segvn's softunlock does; `fault` calls
    /// it after every successful `F_SOFTUNLOCK`.
    public func wakeUnmapWaiters() {
        contents.withLock {
            if _flags.contains(.unmapWait) {
                _flags.remove(.unmapWait)
                contents.broadcast()
            }
        }
    }

    /// The most `IE_RETRY` / `EDEADLK` restarts before giving up (illumos
    /// retries forever; a model must terminate).
    public static let retryLimit = 1000

    /// `as_unmap`: removes every mapping in the page-rounded range, asking
    /// each overlapped segment's driver to unmap its part (which may trim the
    /// segment, split it or remove it). Holes between segments are skipped.
    ///
    /// When a driver answers `EAGAIN` (locked pages): a registered
    /// `AS_UNMAP_EVENT` callback for that segment is run and the unmap
    /// restarts; otherwise, with `mayWait`, it sets `AS_UNMAPWAIT`, drops the
    /// lock, waits until ``wakeUnmapWaiters()`` and restarts; otherwise it
    /// throws ``AddressSpaceError/busy(segmentBase:address:size:)``. `IE_RETRY`
    /// restarts at once. Progress already made stays made, as in illumos.
    public func unmap(address: UInt64, size: UInt64, mayWait: Bool = false) throws(AddressSpaceError) {
        let (base, rsize) = try Self.pageRound(address, size)
        try unmapRange(base, last: base + (rsize - 1), mayWait: mayWait)
    }

    /// The body of `unmap` over `[base, last]` (inclusive, so that a segment
    /// ending at 2^64 can be named).
    func unmapRange(_ base: UInt64, last rlast: UInt64, mayWait: Bool) throws(AddressSpaceError) {
        var raddr = base
        var restarts = 0
        restart: while true {
            lock.writeLock()
            var current = _findseg(raddr, tail: false)
            while let seg = current {
                if rlast < seg.base { break }                  // the rest lies in a gap
                if raddr < seg.base { raddr = seg.base }
                let pieceLast = min(rlast, seg.last)
                let psize = pieceLast - raddr + 1
                let next = _next(seg)
                let counted = seg.countsInSize
                do throws(SegmentError) {
                    try Self.check(seg, .unmap)
                    let outcome = try seg.driver.unmap(seg, address: raddr, size: psize)
                    try apply(outcome, to: seg, address: raddr, size: psize)
                } catch {
                    switch error {
                    case .again:
                        lock.writeUnlock()
                        if let cb = takeCallback(.unmap, seg) {
                            cb.handler(self, .unmap)
                        } else if mayWait {
                            contents.lock()
                            if !_flags.contains(.unmapWait) { contents.broadcast() }
                            _flags.insert(.unmapWait)
                            while _flags.contains(.unmapWait) { contents.wait() }
                            contents.unlock()
                        } else {
                            throw .busy(segmentBase: seg.base, address: raddr, size: psize)
                        }
                        restarts += 1
                        guard restarts <= Self.retryLimit else {
                            throw .retryLimitExceeded(operation: "unmap", attempts: restarts)
                        }
                        continue restart
                    case .retry:
                        lock.writeUnlock()
                        restarts += 1
                        guard restarts <= Self.retryLimit else {
                            throw .retryLimitExceeded(operation: "unmap", attempts: restarts)
                        }
                        continue restart
                    default:
                        lock.writeUnlock()
                        throw .segment(error, segmentBase: seg.base)
                    }
                }
                if counted {
                    _size -= min(psize, _size)
                    _reservedSize -= min(psize, _reservedSize)
                }
                if pieceLast == rlast { break }
                raddr = pieceLast + 1
                current = next
            }
            lock.writeUnlock()
            return
        }
    }

    /// Removes and returns the first unmap callback covering the segment.
    private func takeCallback(_ event: AddressSpaceEvents, _ seg: Segment) -> UnmapCallback? {
        contents.withLock {
            guard let i = callbacks.firstIndex(where: {
                $0.events.contains(event) && $0.base <= seg.last && seg.base <= $0.last
            }) else { return nil }
            return callbacks.remove(at: i)
        }
    }

    /// Applies a driver's unmap outcome, checking it describes exactly the
    /// segment minus `[address, address + size)`.
    private func apply(_ outcome: UnmapOutcome, to seg: Segment, address: UInt64,
                       size: UInt64) throws(SegmentError) {
        let last = address + (size - 1)
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        switch outcome {
        case .removed:
            guard address == seg.base, size == seg.size else {
                throw .invalidResult("\(seg.driver.opsName) removed [\(hex(seg.base)), +\(hex(seg.size))) when asked to unmap [\(hex(address)), +\(hex(size)))")
            }
            _removeSegment(seg)
            freeSegment(seg)
        case let .trimmed(newBase, newSize):
            let keepsLow = newBase == seg.base && address > seg.base && last == seg.last
                && newSize == address - seg.base
            let keepsHigh = address == seg.base && last < seg.last && newBase == last + 1
                && newSize == seg.last - last
            guard keepsLow || keepsHigh else {
                throw .invalidResult("\(seg.driver.opsName) trimmed to [\(hex(newBase)), +\(hex(newSize))) after unmapping [\(hex(address)), +\(hex(size)))")
            }
            _setRange(seg, base: newBase, size: newSize)
        case let .split(keepBase, keepSize, newBase, newSize, newDriver):
            guard address > seg.base, last < seg.last, keepBase == seg.base, keepSize == address - seg.base,
                  newBase == last + 1, newSize == seg.last - last else {
                throw .invalidResult("\(seg.driver.opsName) split into [\(hex(keepBase)), +\(hex(keepSize))) and [\(hex(newBase)), +\(hex(newSize))) after unmapping [\(hex(address)), +\(hex(size)))")
            }
            _setRange(seg, base: keepBase, size: keepSize)
            _addSegment(base: newBase, size: newSize, driver: newDriver, flags: seg.flags,
                        sizeCode: seg.sizeCode, address: nil, countsInSize: seg.countsInSize)
        }
    }

    /// `seg_free`'s driver half: `SEGOP_FREE`, where the table has it.
    func freeSegment(_ seg: Segment) {
        guard seg.driver.supportedOperations.contains(.free) else { return }
        try? seg.driver.free(seg)
    }

    /// Unmaps every segment and frees it (`as_free`'s teardown).
    public func unmapAll() throws(AddressSpaceError) {
        for seg in segments where seg.isAttached {
            try unmapRange(seg.base, last: seg.last, mayWait: false)
        }
    }
}
