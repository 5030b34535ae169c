import PhysicalMemory

/// What a segment create routine (`crfp`) is asked to cover.
public struct SegmentCreateRequest {
    /// The page-rounded range.
    public let base: UInt64
    public let size: UInt64
    public unowned let addressSpace: AddressSpace
    /// The segments just below and just above the range, for drivers that
    /// concatenate (segvn extends a neighbour instead of making a new segment).
    public let below: Segment?
    public let above: Segment?
}

/// What a create routine made of the request.
public enum SegmentCreateResult {
    /// A new segment run by `driver` (`s_ops`/`s_data`), with its flags and size code.
    case created(any SegmentDriver, flags: SegmentFlags = [], sizeCode: UInt8 = 0)
    /// The range was absorbed by a neighbour, which now covers
    /// `[newBase, newBase + newSize)` = its old range plus the request.
    case extended(Segment, newBase: UInt64, newSize: UInt64)
}

extension AddressSpace {
    /// Page-rounds `[address, address + size)` like as_map: the start down, the
    /// end up. Throws when the rounded end wraps (reaches 2^64, as C sees it).
    static func pageRound(_ address: UInt64, _ size: UInt64) throws(AddressSpaceError) -> (base: UInt64, size: UInt64) {
        guard size > 0 else { throw .zeroSize(address: address) }
        let base = address & ~(PhysicalMemory.pageSize - 1)
        let (end, o1) = address.addingReportingOverflow(size)
        let (roundedEnd, o2) = end.addingReportingOverflow(PhysicalMemory.pageSize - 1)
        guard !o1, !o2, roundedEnd & ~(PhysicalMemory.pageSize - 1) != 0 else {
            throw .rangeWraps(address: address, size: size)
        }
        return (base, (roundedEnd & ~(PhysicalMemory.pageSize - 1)) - base)
    }

    /// `valid_va_range` / `valid_usr_range`: refuses the VA hole and, for a
    /// user address space, anything above `a_userlimit`.
    func checkValidRange(_ base: UInt64, _ size: UInt64) throws(AddressSpaceError) {
        let last = base &+ (size &- 1)
        if let limit = userLimit, last >= limit {
            throw .invalidRange(base: base, size: size, reason: "above a_userlimit 0x\(String(limit, radix: 16))")
        }
        if let hole = virtualHole, base < hole.upperBound, last >= hole.lowerBound {
            throw .invalidRange(base: base, size: size, reason: "overlaps the VA hole")
        }
    }

    /// `as_map`: page-rounds the range, refuses wrap, `a_size` overflow, an
    /// invalid range, `RLIMIT_VMEM` (except for holes) and overlap, then runs
    /// the create routine and accounts the size (unless the segment is a hole).
    /// With `AS_PAGLCK` set the new range is locked (`MC_LOCK`) too.
    ///
    /// - Parameters:
    ///   - address: the start of the new segment's range.
    ///   - size: its length in bytes.
    ///   - isHole: the request comes from the hole driver (exempt from `RLIMIT_VMEM`).
    ///   - segmentAddress: the `struct seg *` to record; synthetic when nil.
    ///   - create: the driver's create routine; it runs with the lock held and
    ///     must not call back into this address space's public methods.
    @discardableResult
    public func map(address: UInt64, size: UInt64, isHole: Bool = false, segmentAddress: UInt64? = nil,
                    create: (SegmentCreateRequest) throws(SegmentError) -> SegmentCreateResult)
        throws(AddressSpaceError) -> Segment {
        let (base, rsize) = try Self.pageRound(address, size)
        lock.writeLock()
        let seg: Segment
        do throws(AddressSpaceError) {
            let (newSize, o) = _size.addingReportingOverflow(rsize)
            guard !o else { throw AddressSpaceError.sizeOverflow(current: _size, adding: rsize) }
            try checkValidRange(base, rsize)
            if !isKernel, !isHole, let limit = vmemLimit, newSize > limit {
                throw AddressSpaceError.resourceLimit(size: newSize, limit: limit)
            }
            let last = base + (rsize - 1)
            if let existing = _overlapping(base, last) {
                throw AddressSpaceError.overlap(base: base, size: rsize, existingBase: existing.base,
                                                existingSize: existing.size)
            }
            let belowNode = tree.pointee.lastBelow(base)
            let aboveNode = tree.pointee.firstAbove(last)
            let request = SegmentCreateRequest(
                base: base, size: rsize, addressSpace: self,
                below: belowNode == 0 ? nil : tree.pointee.segments[Int(belowNode)],
                above: aboveNode == 0 ? nil : tree.pointee.segments[Int(aboveNode)])
            let result: SegmentCreateResult
            do throws(SegmentError) {
                result = try create(request)
            } catch {
                throw AddressSpaceError.segment(error, segmentBase: base)
            }
            switch result {
            case let .created(driver, flags, sizeCode):
                seg = _addSegment(base: base, size: rsize, driver: driver, flags: flags, sizeCode: sizeCode,
                                  address: segmentAddress, countsInSize: true)
            case let .extended(neighbour, newBase, newSize):
                try checkExtension(neighbour, newBase: newBase, newSize: newSize, base: base, size: rsize)
                _setRange(neighbour, base: newBase, size: newSize)
                seg = neighbour
                // illumos attached a temporary segment first (setting the hint)
                // and freed it after the concatenation (clearing the hint).
                hint.store(0, ordering: .relaxed)
            }
            if seg.countsInSize {
                _size = newSize
                _reservedSize &+= rsize
            }
        } catch {
            lock.writeUnlock()
            throw error
        }
        lock.writeUnlock()
        if flags.contains(.pageLock) {
            do {
                try withReadLock { () throws(SegmentError) in
                    try Self.check(seg, .lockop)
                    try seg.driver.lockop(seg, address: base, size: rsize, attributes: 0, operation: .lock)
                }
            } catch {
                try? unmap(address: base, size: rsize)
                throw .segment(error, segmentBase: seg.base)
            }
        }
        return seg
    }

    private func checkExtension(_ neighbour: Segment, newBase: UInt64, newSize: UInt64, base: UInt64,
                                size: UInt64) throws(AddressSpaceError) {
        guard neighbour.addressSpace === self, neighbour.slot != 0 else {
            throw .segment(.invalidResult("extended a segment of another address space"), segmentBase: base)
        }
        let lowExtension = newBase == base && neighbour.base == base &+ size
            && newSize == size &+ neighbour.size
        let highExtension = newBase == neighbour.base && neighbour.base &+ neighbour.size == base
            && newSize == neighbour.size &+ size
        guard lowExtension || highExtension else {
            throw .segment(.invalidResult("extension [0x\(String(newBase, radix: 16)), +0x\(String(newSize, radix: 16))) is not the neighbour plus the request"),
                           segmentBase: base)
        }
    }

    /// `seg_attach` for boot-time segments: links a prepared segment exactly
    /// at `[base, base + size)` (page aligned; may end at 2^64) without the
    /// user-range, rlimit and wrap checks of `map`, and without touching
    /// `a_size` unless `accountSize` (illumos's `segkmem_create` adds it itself).
    @discardableResult
    public func attach(base: UInt64, size: UInt64, driver: any SegmentDriver, flags: SegmentFlags = [],
                       sizeCode: UInt8 = 0, segmentAddress: UInt64? = nil,
                       accountSize: Bool = false) throws(AddressSpaceError) -> Segment {
        guard size > 0 else { throw .zeroSize(address: base) }
        guard base & (PhysicalMemory.pageSize - 1) == 0 else { throw .notPageAligned(base) }
        guard size & (PhysicalMemory.pageSize - 1) == 0 else { throw .notPageAligned(size) }
        let (_, wraps) = base.addingReportingOverflow(size - 1)
        guard !wraps else { throw .rangeWraps(address: base, size: size) }
        return try withWriteLock { () throws(AddressSpaceError) -> Segment in
            if let hole = virtualHole, base < hole.upperBound, base + (size - 1) >= hole.lowerBound {
                throw .invalidRange(base: base, size: size, reason: "overlaps the VA hole")
            }
            if let existing = _overlapping(base, base + (size - 1)) {
                throw .overlap(base: base, size: size, existingBase: existing.base, existingSize: existing.size)
            }
            if accountSize && !flags.contains(.hole) {
                let (s, o) = _size.addingReportingOverflow(size)
                guard !o else { throw .sizeOverflow(current: _size, adding: size) }
                _size = s
            }
            return _addSegment(base: base, size: size, driver: driver, flags: flags, sizeCode: sizeCode,
                               address: segmentAddress, countsInSize: accountSize)
        }
    }

    /// Maps a hole (`seghole_create`) named `name`.
    @discardableResult
    public func mapHole(address: UInt64, size: UInt64, name: String) throws(AddressSpaceError) -> Segment {
        try map(address: address, size: size, isHole: true) { (_) throws(SegmentError) in
            .created(SegHole(name: name), flags: .hole)
        }
    }

    /// Marks `segment` as the one `fault` may enter without taking `a_lock`
    /// (illumos's `segkmap` shortcut, kernel address space only).
    public func setLockFreeFaultSegment(_ segment: Segment?) throws(AddressSpaceError) {
        try withWriteLock { () throws(AddressSpaceError) in
            if let segment {
                guard isKernel else {
                    throw .invalidRange(base: segment.base, size: segment.size, reason: "only kas has a segkmap")
                }
                guard segment.addressSpace === self, segment.slot != 0 else { throw .noSegment(address: segment.base) }
            }
            _lockFreeFaultSegment = segment
        }
    }

    /// Refuses an op the driver's table does not fill in.
    @inline(__always)
    static func check(_ seg: Segment, _ op: SegmentOperation) throws(SegmentError) {
        guard seg.driver.supportedOperations.contains(op) else {
            throw .notSupported(op, driver: seg.driver.opsName)
        }
    }
}
