#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import AddressSpace
import CHostMemory
import HostMemory
import PhysicalMemory

/// What the host drivers share: a segment over part of the window, backed by
/// an object (or anonymous memory) from an offset, with per-page protections
/// no greater than the object allows, fault statistics, and — for drivers
/// that fill pages themselves — a userfaultfd registration.
///
/// Ranges are kept relative to the segment's original base (`origin`), so a
/// trim or a split changes nothing here: the halves of a split share the
/// object, the protections and (lazy fill) the claim bitmap, and each has
/// its own statistics. Unmapping any part returns it to the window's
/// `PROT_NONE` reservation, which also ends its userfaultfd registration.
///
/// Subclasses say how a page is filled (`serve(_:in:)` for a userfaultfd
/// event, `resolve(_:address:size:write:)` for an explicit fault) and
/// whether a segment may be split.
public class HostSegmentDriver: SegmentDriver, @unchecked Sendable {
    /// The address space's translation layer (window and fault service).
    public let hat: HostHAT
    /// What the segment maps (nil for anonymous memory).
    public let object: MemoryObject?
    /// `MAP_SHARED` or `MAP_PRIVATE`.
    public let sharing: MappingType
    /// The most any page of the segment may allow.
    public let maxProtection: HostProtection
    /// The userfaultfd modes the segment is registered with (empty: the
    /// kernel serves its faults).
    public let modes: UserFaultModes
    let origin: UInt64
    let originOffset: UInt64
    let protections: _PageProtections
    let counters = _FaultCounters()
    /// Guard registrations to drop when the segment goes.
    var guards: [(registration: GuardReporter.Registration, range: Range<UInt64>)] = []
    private let guardLock = HostLock()

    init(hat: HostHAT, object: MemoryObject?, sharing: MappingType, maxProtection: HostProtection,
         modes: UserFaultModes, origin: UInt64, originOffset: UInt64, protections: _PageProtections) {
        self.hat = hat
        self.object = object
        self.sharing = sharing
        self.maxProtection = maxProtection
        self.modes = modes
        self.origin = origin
        self.originOffset = originOffset
        self.protections = protections
    }

    /// The ops vector's name; every subclass names its own.
    public var opsName: String { "hostseg_ops" }
    /// A short description of the backing (`anon`, `file private`, ...).
    public var backing: String { object == nil ? "anon" : (sharing == .shared ? "shared" : "private") }
    /// Who serves the segment's faults: `userfaultfd` or `kernel`.
    public var servedBy: String { modes.isEmpty ? "kernel" : "userfaultfd" }
    /// The segment's fault statistics.
    public var statistics: HostFaultStatistics { counters.snapshot }
    /// Whether an unmap may cut the segment in two.
    var splittable: Bool { true }
    /// Flags for the segment (`S_HOLE` for holes).
    var segmentFlags: SegmentFlags { [] }

    public var supportedOperations: SegmentOperations {
        [.unmap, .free, .fault, .faulta, .setprot, .checkprot, .kluster, .sync, .incore, .lockop, .getprot,
         .getoffset, .gettype, .advise, .getmemid, .capable]
    }

    // MARK: What subclasses fill in

    /// Answers a userfaultfd event for a page of `segment`; called with the
    /// address space's lock held as reader. The default fills the page with
    /// zeros (anonymous memory and stacks).
    func serve(_ fault: UserFault, in segment: Segment) -> UserFaultAnswer {
        guard let service = hat.service else { return .wake }
        do throws(HostMemoryError) {
            try zeroFill(service, fault.page, HostReservation.pageSize, write: fault.isWrite)
            return .resolved
        } catch {
            return refuse(fault, segment, because: error.description)
        }
    }

    /// Makes `[address, address + size)` present (an explicit `as_fault`):
    /// zeros through the fault service for a registered segment, else the
    /// kernel's own fill (`MADV_POPULATE_READ`/`WRITE`: the page cache for a
    /// file, zeros for anonymous memory).
    func resolve(_ segment: Segment, address: UInt64, size: UInt64, write: Bool) throws(SegmentError) {
        if let service = hat.service, !modes.isEmpty {
            do throws(HostMemoryError) {
                try zeroFill(service, address, size, write: write)
            } catch {
                throw .fault(.objectError(errno: Errno.EFAULT), address: address)
            }
            return
        }
        let advice: Int32 = write ? vmk_madv_populate_write() : vmk_madv_populate_read()
        do throws(HostMemoryError) {
            try hat.reservation.advise(at: address, length: size, advice: advice)
        } catch {
            throw .fault(.objectError(errno: error.errnoValue), address: address)
        }
        counters.bytes.add(size, ordering: .relaxed)
    }

    /// A driver for the upper piece of a split (shares the backing, fresh statistics).
    func splitOff() -> HostSegmentDriver {
        HostSegmentDriver(hat: hat, object: object, sharing: sharing, maxProtection: maxProtection, modes: modes,
                          origin: origin, originOffset: originOffset, protections: protections)
    }

    // MARK: The event path

    /// Times and counts one event's service.
    final func handle(_ fault: UserFault, in segment: Segment) -> UserFaultAnswer {
        let start = vmk_now_ns()
        // Counted before the fill, which wakes the faulting thread: whoever
        // reads the statistics once its touch returns sees this fault.
        counters.faults.add(1, ordering: .relaxed)
        let answer = serve(fault, in: segment)
        counters.nanoseconds.add(vmk_now_ns() &- start, ordering: .relaxed)
        return answer
    }

    /// Fills `[address, address + length)` with zeros through the fault
    /// service: the zero page for reads (`UFFDIO_ZEROPAGE`), a copy for
    /// writes so that the write does not fault again. A page already present
    /// is skipped (and its waiter woken).
    final func zeroFill(_ service: UserFaultService, _ address: UInt64, _ length: UInt64, write: Bool) throws(HostMemoryError) {
        var a = address
        let end = address + length
        while a < end {
            // Counted before the fill wakes the faulting thread (see handle),
            // taken back for what was not filled.
            let n = write ? HostReservation.pageSize : end - a
            if write { counters.copies.add(1, ordering: .relaxed) } else { counters.zeroPages.add(1, ordering: .relaxed) }
            counters.bytes.add(n, ordering: .relaxed)
            let result: UserFaultService.FillResult
            do throws(HostMemoryError) {
                result = write ? try service.copy(to: a, from: hat.zeroPage, length: n) : try service.zero(at: a, length: n)
            } catch {
                counters.bytes.subtract(n, ordering: .relaxed)
                throw error
            }
            switch result {
            case .filled:
                a += n
            case .alreadyPresent(let done):
                counters.bytes.subtract(n - done, ordering: .relaxed)
                counters.alreadyPresent.add(1, ordering: .relaxed)
                try? service.wake(at: a + done, length: HostReservation.pageSize)
                a += done + HostReservation.pageSize
            }
        }
    }

    /// Records a guarded range of the segment for the guard reporter.
    final func addGuard(_ base: UInt64, _ length: UInt64, _ kind: GuardReporter.Kind,
                        _ label: String) throws(HostMemoryError) {
        let r = try GuardReporter.add(base: base, length: length, kind: kind, label: label)
        guardLock.withLock { guards.append((r, base ..< base + length)) }
    }

    /// Forgets the guarded ranges that overlap `range` (all of them when nil),
    /// returning them to the table.
    final func dropGuards(in range: Range<UInt64>? = nil) {
        let dropped = guardLock.withLock { () -> [GuardReporter.Registration] in
            let gone = guards.filter { range?.overlaps($0.range) ?? true }
            guards.removeAll { range?.overlaps($0.range) ?? true }
            return gone.map(\.registration)
        }
        for g in dropped { GuardReporter.remove(g) }
    }

    /// Hands the guarded ranges inside `range` to `other` (the upper piece of a split).
    final func moveGuards(in range: Range<UInt64>, to other: HostSegmentDriver) {
        let moved = guardLock.withLock { () -> [(registration: GuardReporter.Registration, range: Range<UInt64>)] in
            let inside = guards.filter { range.overlaps($0.range) }
            guards.removeAll { range.overlaps($0.range) }
            return inside
        }
        other.guardLock.withLock { other.guards.append(contentsOf: moved) }
    }

    /// Refuses the page of `fault`: the touch will raise `SIGBUS`, reported
    /// as refused by this segment.
    final func refuse(_ fault: UserFault, _ segment: Segment, because reason: String) -> UserFaultAnswer {
        counters.refused.add(1, ordering: .relaxed)
        try? addGuard(fault.page, HostReservation.pageSize, .refused, "\(opsName) segment [0x\(String(segment.base, radix: 16)), +0x\(String(segment.size, radix: 16))): \(reason)")
        return .refuse
    }

    deinit { dropGuards() }

    // MARK: Operations

    public func unmap(_ segment: Segment, address: UInt64, size: UInt64) throws(SegmentError) -> UnmapOutcome {
        let whole = address == segment.base && size == segment.size
        let low = address == segment.base
        let high = address &+ size == segment.base &+ segment.size
        if !whole && !low && !high && !splittable { throw .errno(Errno.EINVAL, operation: .unmap) }
        do throws(HostMemoryError) {
            try hat.reservation.release(at: address, length: size)
        } catch {
            if case .system(_, let e, _) = error { throw .errno(e, operation: .unmap) }
            throw .errno(Errno.EINVAL, operation: .unmap)
        }
        if whole { return .removed }
        // Reports of refused pages go with the pages: dropped where unmapped,
        // handed to the upper piece of a split.
        dropGuards(in: address ..< address + size)
        if low { return .trimmed(base: address + size, size: segment.size - size) }
        if high { return .trimmed(base: segment.base, size: segment.size - size) }
        let upper = splitOff()
        moveGuards(in: address + size ..< segment.base + segment.size, to: upper)
        return .split(keepBase: segment.base, keepSize: address - segment.base, newBase: address + size,
                      newSize: segment.base + segment.size - (address + size), newDriver: upper)
    }

    public func free(_ segment: Segment) throws(SegmentError) { dropGuards() }

    public func fault(_ hat: any HAT, _ segment: Segment, address: UInt64, size: UInt64,
                      type: FaultType, access: SegmentAccess) throws(SegmentError) {
        let lockRange = { () throws(SegmentError) in
            let p = self.hat.reservation.pointer(address)
            let r = type == .softLock ? mlock(p, Int(size)) : munlock(p, Int(size))
            guard r == 0 else { throw .errno(errno, operation: .fault) }
        }
        if type == .softUnlock { return try lockRange() }
        let wanted: HostProtection = access == .write ? .write : access == .execute ? .execute : .read
        if let refusing = protections.firstRefusing(address, size, wanted) {
            throw .fault(.protection, address: refusing)
        }
        let start = vmk_now_ns()
        try resolve(segment, address: address, size: size, write: access == .write)
        counters.faults.add(1, ordering: .relaxed)
        counters.nanoseconds.add(vmk_now_ns() &- start, ordering: .relaxed)
        if type == .softLock { try lockRange() }
    }

    public func faulta(_ segment: Segment, address: UInt64) throws(SegmentError) {
        try resolve(segment, address: address & ~(HostReservation.pageSize - 1), size: HostReservation.pageSize,
                    write: false)
    }

    public func setprot(_ segment: Segment, address: UInt64, size: UInt64,
                        protection: Protection) throws(SegmentError) {
        let p = HostProtection(protection)
        guard p.isSubset(of: maxProtection) else { throw .errno(Errno.EACCES, operation: .setprot) }
        do throws(HostMemoryError) {
            try hat.reservation.protect(at: address, length: size, protection: p)
        } catch {
            if case .system(_, let e, _) = error { throw .errno(e, operation: .setprot) }
            throw .errno(Errno.EINVAL, operation: .setprot)
        }
        protections.set(address, size, p, wholeSegment: address == segment.base && size == segment.size)
    }

    public func checkprot(_ segment: Segment, address: UInt64, size: UInt64,
                          protection: Protection) throws(SegmentError) {
        if protections.firstRefusing(address, size, HostProtection(protection)) != nil {
            throw .errno(Errno.EACCES, operation: .checkprot)
        }
    }

    public func kluster(_ segment: Segment, address: UInt64, delta: Int64) throws(SegmentError) -> Bool {
        let (target, o) = delta < 0 ? address.subtractingReportingOverflow(UInt64(-delta))
                                    : address.addingReportingOverflow(UInt64(delta))
        return !o && segment.contains(target)
    }

    public func sync(_ segment: Segment, address: UInt64, size: UInt64, attributes: Int32,
                     flags: SyncFlags) throws(SegmentError) {
        guard object != nil else { return }
        var f: Int32 = 0
        if flags.contains(.async) { f |= MS_ASYNC }
        if flags.contains(.sync) || f == 0 { f |= MS_SYNC }
        if flags.contains(.invalidate) { f |= MS_INVALIDATE }
        guard msync(hat.reservation.pointer(address), Int(size), f) == 0 else {
            throw .errno(errno, operation: .sync)
        }
    }

    public func incore(_ segment: Segment, address: UInt64, size: UInt64) throws(SegmentError) -> [PageIncoreStatus] {
        let pages = Int(size / HostReservation.pageSize)
        var vec = [UInt8](repeating: 0, count: pages)
        let r = vec.withUnsafeMutableBufferPointer { mincore(hat.reservation.pointer(address), Int(size), $0.baseAddress) }
        guard r == 0 else { throw .errno(errno, operation: .incore) }
        let kind: PageIncoreStatus = object == nil ? .anon : .vnode
        return vec.map { $0 & 1 != 0 ? [.inCore, kind] : kind }
    }

    public func lockop(_ segment: Segment, address: UInt64, size: UInt64, attributes: Int32,
                       operation: LockOperation) throws(SegmentError) {
        let p = hat.reservation.pointer(address)
        let r = operation == .lock ? mlock(p, Int(size)) : munlock(p, Int(size))
        guard r == 0 else { throw .errno(errno, operation: .lockop) }
    }

    public func getprot(_ segment: Segment, address: UInt64, size: UInt64) throws(SegmentError) -> [Protection] {
        stride(from: address, to: address + size, by: Int(HostReservation.pageSize)).map {
            Protection(protections.protection(at: $0))
        }
    }

    public func getoffset(_ segment: Segment, address: UInt64) throws(SegmentError) -> UInt64 {
        originOffset + (address - origin)
    }

    public func gettype(_ segment: Segment, address: UInt64) throws(SegmentError) -> MappingType { sharing }

    public func advise(_ segment: Segment, address: UInt64, size: UInt64, advice: Advice) throws(SegmentError) {
        do throws(HostMemoryError) {
            try hat.reservation.advise(at: address, length: size, advice: advice.rawValue)
        } catch {
            throw .errno(error.errnoValue, operation: .advise)
        }
    }

    public func getmemid(_ segment: Segment, address: UInt64) throws(SegmentError) -> MemoryID {
        // Private memory is named by its address (it is this process's alone);
        // shared memory by the object and offset, the same in every process.
        guard let object, sharing == .shared else { return MemoryID(object: 0, offset: address) }
        var st = stat()
        guard fstat(object.fd, &st) == 0 else { throw .errno(errno, operation: .getmemid) }
        return MemoryID(object: UInt64(st.st_ino), offset: originOffset + (address - origin))
    }

    public func capable(_ segment: Segment, capability: SegmentCapability) throws(SegmentError) -> Bool { false }
}
