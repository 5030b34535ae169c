#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import AddressSpace
import HostMemory

/// Pages filled on first touch from a file at an offset: the building block
/// of lazy snapshot restore.
///
/// The segment is private anonymous memory registered for missing faults;
/// the file is mapped read-only elsewhere (an `ObjectView`), so a fill is
/// one `UFFDIO_COPY` from the page cache. A fault fills a run: the faulting
/// page and the pages after it up to ``readAhead`` bytes, stopping at the
/// segment's end or at a page already claimed. Each page is claimed in a
/// bitmap before it is copied (an atomic fetch-or), so however many threads
/// fault on a page at once, and however many handler threads serve them, it
/// is copied exactly once; a thread that faults on a page another fill has
/// claimed is woken to retry. A page the file cannot supply (it shrank under
/// the mapping) is refused: the touch gets `SIGBUS`, named by the guard
/// reporter. Without userfaultfd the whole range is copied when mapped.
public final class HostLazyFill: HostSegmentDriver, @unchecked Sendable {
    /// Bytes filled per fault at most (the faulting page included).
    public let readAhead: UInt64
    let view: ObjectView
    let claims: _PageBitmap

    init(hat: HostHAT, file: MemoryObject, view: ObjectView, claims: _PageBitmap, readAhead: UInt64,
         modes: UserFaultModes, origin: UInt64, originOffset: UInt64, protections: _PageProtections) {
        self.readAhead = readAhead
        self.view = view
        self.claims = claims
        super.init(hat: hat, object: file, sharing: .private, maxProtection: .all, modes: modes, origin: origin,
                   originOffset: originOffset, protections: protections)
    }

    override public var opsName: String { "seglazy_ops" }
    override public var backing: String { "lazy" }

    /// Pages of `segment` filled so far.
    public func filledPages(_ segment: Segment) -> Int {
        claims.count(from: Int((segment.base - origin) / HostReservation.pageSize),
                      Int(segment.size / HostReservation.pageSize))
    }

    override func serve(_ fault: UserFault, in segment: Segment) -> UserFaultAnswer {
        guard let service = hat.service else { return .wake }
        let end = min(segment.base + segment.size, fault.page + max(readAhead, HostReservation.pageSize))
        if let reason = fill(service, from: fault.page, to: end).failure {
            return refuse(fault, segment, because: reason)
        }
        return .resolved
    }

    override func resolve(_ segment: Segment, address: UInt64, size: UInt64, write: Bool) throws(SegmentError) {
        guard let service = hat.service, !modes.isEmpty else { return }  // filled when mapped
        var a = address
        while a < address + size {
            let step = fill(service, from: a, to: min(address + size, a + max(readAhead, HostReservation.pageSize)))
            if step.failure != nil { throw .fault(.objectError(errno: Errno.EFAULT), address: a) }
            a = step.next
        }
    }

    /// Claims and copies the run from `page` up to `end` (exclusive): the
    /// page itself, then the pages after it until one is already claimed.
    /// When `page` is claimed already, another fill owns it: its waiter is
    /// woken and nothing is copied. Returns where the run ended, and why it
    /// failed if it did (the claims are then given back).
    private func fill(_ service: UserFaultService, from page: UInt64, to end: UInt64) -> (next: UInt64, failure: String?) {
        let pageSize = HostReservation.pageSize
        let first = Int((page - origin) / pageSize)
        guard claims.claim(first) else {
            counters.alreadyPresent.add(1, ordering: .relaxed)
            try? service.wake(at: page, length: pageSize)
            return (page + pageSize, nil)
        }
        var runEnd = page + pageSize
        while runEnd < end && claims.claim(Int((runEnd - origin) / pageSize)) { runEnd += pageSize }
        let length = runEnd - page
        // Counted before the copy wakes the faulting thread, taken back for
        // what was not copied.
        counters.bytes.add(length, ordering: .relaxed)
        counters.copies.add(1, ordering: .relaxed)
        do throws(HostMemoryError) {
            switch try service.copy(to: page, from: view.base + Int(page - origin), length: length) {
            case .filled:
                break
            case .alreadyPresent(let done):
                // Only a fill of ours places pages here, so this is not
                // expected; give back the claims after the present page so
                // that those pages can still be filled.
                counters.bytes.subtract(length - done, ordering: .relaxed)
                counters.copies.subtract(1, ordering: .relaxed)
                counters.alreadyPresent.add(1, ordering: .relaxed)
                let resume = Int((page + done - origin) / pageSize) + 1
                for i in resume ..< Int((runEnd - origin) / pageSize) { claims.release(i) }
                try? service.wake(at: page, length: length)
                return (page + done + pageSize, nil)
            }
            return (runEnd, nil)
        } catch {
            counters.bytes.subtract(length, ordering: .relaxed)
            counters.copies.subtract(1, ordering: .relaxed)
            for i in first ..< Int((runEnd - origin) / pageSize) { claims.release(i) }
            return (runEnd, error.description)
        }
    }

    /// Copies the whole range in at map time (no userfaultfd).
    func fillEagerly(at base: UInt64, size: UInt64) {
        memcpy(hat.reservation.pointer(base), view.base + Int(base - origin), Int(size))
        for i in 0..<Int(size / HostReservation.pageSize) { _ = claims.claim(Int((base - origin) / HostReservation.pageSize) + i) }
        counters.bytes.add(size, ordering: .relaxed)
    }

    override func splitOff() -> HostSegmentDriver {
        HostLazyFill(hat: hat, file: object!, view: view, claims: claims, readAhead: readAhead, modes: modes,
                     origin: origin, originOffset: originOffset, protections: protections)
    }
}
