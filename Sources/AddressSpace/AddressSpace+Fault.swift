/// Fault counts by type, as `as_fault` keeps them in `cpu_vminfo`.
public struct FaultStatistics: Hashable, Sendable {
    /// `F_SOFTLOCK` faults.
    public var softLock: UInt64
    /// `F_PROT` faults (`prot_fault`).
    public var protection: UInt64
    /// `F_INVAL` faults (`as_fault`).
    public var invalid: UInt64
    /// `F_INVAL` faults on the kernel address space (`kernel_asflt`).
    public var kernelInvalid: UInt64
}

extension AddressSpace {
    /// The fault counters.
    public var faultStatistics: FaultStatistics {
        FaultStatistics(softLock: softLockFaults.load(ordering: .relaxed),
                        protection: protectionFaults.load(ordering: .relaxed),
                        invalid: invalidFaults.load(ordering: .relaxed),
                        kernelInvalid: kernelInvalidFaults.load(ordering: .relaxed))
    }

    /// `as_fault`: resolves (`F_INVAL`, `F_PROT`) or soft-locks/unlocks the
    /// page-rounded range, segment by segment.
    ///
    /// The segment at the start must exist, and each following piece must
    /// begin exactly where the previous segment ends (a hole between
    /// segments is `FC_NOMAP`). The first driver error stops the loop; if an
    /// `F_SOFTLOCK` stops part-way, the pieces already locked are unlocked
    /// again with `F_SOFTUNLOCK` / `S_OTHER`, segment by segment. An
    /// `FC_OBJERR(EDEADLK)` restarts the whole fault (up to ``retryLimit``).
    /// In `kas`, a range inside the lock-free fault segment (segkmap) is
    /// handed to its driver without taking `a_lock`.
    ///
    /// - Parameters:
    ///   - address: the start of the range.
    ///   - size: its length in bytes.
    ///   - type: the fault kind (`F_INVAL`, `F_PROT`, `F_SOFTLOCK`, `F_SOFTUNLOCK`).
    ///   - access: the access that faulted (read, write, exec, other).
    ///   - hat: the HAT to load into; the address space's own by default.
    public func fault(address: UInt64, size: UInt64, type: FaultType, access: SegmentAccess,
                      hat: (any HAT)? = nil) throws(AddressSpaceError) {
        countFault(type)
        let hat = hat ?? self.hat
        let raddr = address & ~(UInt64(0xFFF))
        let (end, o1) = address.addingReportingOverflow(size)
        let (roundedEnd, o2) = end.addingReportingOverflow(0xFFF)
        guard !o1, !o2 else { throw .fault(.noMapping, address: raddr) }
        let rsize = (roundedEnd & ~UInt64(0xFFF)) &- raddr
        var attempts = 0
        while true {
            do throws(AddressSpaceError) {
                try faultOnce(hat, raddr, rsize, type, access)
                if type == .softUnlock { wakeUnmapWaiters() }
                return
            } catch {
                if case .segment(.fault(.objectError(Errno.EDEADLK), _), _) = error {
                    attempts += 1
                    guard attempts < Self.retryLimit else {
                        throw .retryLimitExceeded(operation: "fault", attempts: attempts)
                    }
                    continue
                }
                throw error
            }
        }
    }

    /// Counts a fault of `type` as `as_fault` does, for a translation layer
    /// that resolves faults without calling ``fault(address:size:type:access:hat:)``
    /// (a host address space serving userfaultfd events looks the segment up
    /// itself, because the event carries more than `as_fault` can pass on).
    public func countFault(_ type: FaultType) {
        switch type {
        case .softLock: softLockFaults.add(1, ordering: .relaxed)
        case .protection: protectionFaults.add(1, ordering: .relaxed)
        case .invalid:
            invalidFaults.add(1, ordering: .relaxed)
            if isKernel { kernelInvalidFaults.add(1, ordering: .relaxed) }
        case .softUnlock: break
        }
    }

    private func faultOnce(_ hat: any HAT, _ start: UInt64, _ rsize: UInt64, _ type: FaultType,
                           _ access: SegmentAccess) throws(AddressSpaceError) {
        let rlast = start &+ (rsize &- 1)
        // The segkmap shortcut: no a_lock for the map window.
        if isKernel, rsize > 0 {
            let window: Segment? = withReadLock { _lockFreeFaultSegment }
            if let kmap = window, kmap.contains(start), kmap.contains(rlast) {
                do throws(SegmentError) {
                    try Self.check(kmap, .fault)
                    try kmap.driver.fault(hat, kmap, address: start, size: rsize, type: type, access: access)
                } catch {
                    throw .segment(error, segmentBase: kmap.base)
                }
                return
            }
        }
        lock.readLock()
        defer { lock.readUnlock() }
        guard var seg = _segat(start) else { throw .fault(.noMapping, address: start) }
        let firstSeg = seg
        var raddr = start
        var remaining = rsize
        var failure: AddressSpaceError? = nil
        while remaining != 0 {
            if raddr > seg.last {
                guard let next = _next(seg), next.base == raddr else {
                    failure = .fault(.noMapping, address: raddr)
                    break
                }
                seg = next
            }
            let piece = min(remaining, seg.last - raddr + 1)
            do throws(SegmentError) {
                try Self.check(seg, .fault)
                try seg.driver.fault(hat, seg, address: raddr, size: piece, type: type, access: access)
            } catch {
                failure = .segment(error, segmentBase: seg.base)
                break
            }
            remaining -= piece
            if remaining == 0 { break }
            raddr += piece
        }
        guard let failure else { return }
        if type == .softLock {
            // Undo [start, raddr): every piece before the one that failed.
            var undo = firstSeg
            var a = start
            while a < raddr {
                if a > undo.last, let next = _next(undo) { undo = next }
                let piece = raddr - 1 > undo.last ? undo.last - a + 1 : raddr - a
                try? undo.driver.fault(hat, undo, address: a, size: piece, type: .softUnlock, access: .other)
                a += piece
            }
        }
        throw failure
    }
}
