import AddressSpace
import HostMemory
import Synchronization

/// An address space over real host memory: one reserved window, segments
/// mapped into it by the host drivers, and faults in registered segments
/// served through userfaultfd by the driver of the segment that holds the
/// faulting address.
///
/// It is an `AddressSpace` (the segment tree, `as_map`, `as_unmap`,
/// `as_setprot`, `as_fault`, `as_gap`, `::seg`) whose translation layer is a
/// ``HostHAT``; the methods here create segments with each driver, check
/// what the host would refuse first (alignment, the window, an object's
/// rights and size) so that errors name the values, and tear the whole
/// thing down in order: fault service, segments, window.
///
/// A userfaultfd event is served with the address space's lock held as
/// reader, so an unmap (which takes it as writer) waits for fills in flight
/// and a fill never meets a half-unmapped segment; an event for an address
/// no segment holds any more wakes its thread, which then meets the
/// `PROT_NONE` reservation.
public final class HostAddressSpace: @unchecked Sendable {
    /// The segment tree and its operations.
    public let space: AddressSpace
    /// The window and the fault service.
    public let hat: HostHAT
    /// Why userfaultfd is not used (nil when it is): demand-filled segments
    /// are then populated when mapped.
    public let userfaultfdUnavailableReason: String?
    private let destroyed = Atomic<Bool>(false)

    /// Reserves a window of `windowSize` bytes and, unless `userfaultfd` is
    /// false or the kernel refuses, starts a fault service with
    /// `faultThreads` handler threads. Installs the guard reporter.
    public init(windowSize: UInt64 = HostReservation.defaultSize, faultThreads: Int = 1,
                userfaultfd: Bool = true) throws(HostSegmentError) {
        guard (1...64).contains(faultThreads) else {
            throw .invalidArgument(name: "faultThreads", value: UInt64(max(faultThreads, 0)), reason: "must be 1 to 64")
        }
        let reservation: HostReservation
        do throws(HostMemoryError) {
            reservation = try HostReservation(size: windowSize)
            try GuardReporter.install()
        } catch {
            throw .host(error)
        }
        let box = _SpaceBox()
        var service: UserFaultService? = nil
        var reason: String? = userfaultfd ? nil : "not asked for"
        if userfaultfd {
            do throws(HostMemoryError) {
                service = try UserFaultService(threads: faultThreads) { fault, _ in
                    box.space?.serve(fault) ?? .wake
                }
            } catch {
                reason = error.description
            }
        }
        hat = HostHAT(reservation: reservation, service: service)
        userfaultfdUnavailableReason = reason
        space = AddressSpace(name: "host", kind: .user(limit: reservation.base + reservation.size), hat: hat,
                             address: 0, segmentRecordBase: 0x1000, segmentRecordStride: 0x60)
        box.space = self
    }

    deinit {
        // The last reference may go on a handler thread; the service then
        // stops itself when the HAT lets it go.
        tearDown()
    }

    /// The reserved window.
    public var reservation: HostReservation { hat.reservation }
    /// The fault service, when userfaultfd is in use.
    public var faultService: UserFaultService? { hat.service }
    /// Whether faults are served through userfaultfd.
    public var usesUserfaultfd: Bool { hat.service != nil }
    /// Whether ``destroy()`` has run.
    public var isDestroyed: Bool { destroyed.load(ordering: .acquiring) }
    /// The segments, lowest first.
    public var segments: [Segment] { space.segments }

    /// A pointer to `address` in the window.
    public func pointer(_ address: UInt64) -> UnsafeMutableRawPointer { reservation.pointer(address) }

    /// One userfaultfd event: counted as `as_fault` counts an `F_INVAL`, then
    /// handed to the driver of the segment holding the page.
    func serve(_ fault: UserFault) -> UserFaultAnswer {
        space.countFault(.invalid)
        return space.read { view in
            guard let seg = view.segat(fault.page), let driver = seg.driver as? HostSegmentDriver else {
                return .wake
            }
            return driver.handle(fault, in: seg)
        }
    }

    /// Stops the fault service, unmaps every segment and releases the window.
    /// Refused from a fault-handler thread (the service would wait for
    /// itself). Idempotent.
    public func destroy() throws(HostSegmentError) {
        if let service = hat.service, service.isHandlerThread {
            throw .host(.calledFromHandler(operation: "HostAddressSpace.destroy"))
        }
        tearDown()
    }

    /// Once: the fault service (unless called on one of its own threads),
    /// then every segment, then the window.
    private func tearDown() {
        guard !destroyed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if let service = hat.service, !service.isHandlerThread { try? service.stop() }
        try? space.unmapAll()
        reservation.destroy()
    }

    func checkAlive() throws(HostSegmentError) {
        guard !isDestroyed else { throw .host(.destroyed(what: "the host address space")) }
    }
}

/// Lets the fault handler reach the address space without keeping it alive.
/// The handler threads start before the address space is complete and is
/// put here; the lock makes its initialisation visible to them (a weak
/// reference's own atomics order nothing else).
final class _SpaceBox: @unchecked Sendable {
    private weak var _space: HostAddressSpace?
    private let lock = HostLock()

    var space: HostAddressSpace? {
        get { lock.withLock { _space } }
        set { lock.withLock { _space = newValue } }
    }
}
