import AddressSpace
import HostMemory

extension HostAddressSpace {
    /// Where a new segment of `size` bytes goes: `address` when given, else
    /// the lowest gap of the window that fits (2 MiB aligned for segments of
    /// 2 MiB or more, so the kernel may back them with huge pages).
    func place(_ size: UInt64, at address: UInt64?) throws(HostSegmentError) -> UInt64 {
        try checkAlive()
        guard size > 0 else { throw .host(.zeroLength(address: address ?? 0)) }
        guard size % HostReservation.pageSize == 0 else {
            throw .host(.notAligned(what: "size", value: size, alignment: HostReservation.pageSize))
        }
        if let address {
            do throws(HostMemoryError) { try reservation.check(address, size) } catch { throw .host(error) }
            return address
        }
        let align: UInt64 = size >= HostReservation.alignment ? HostReservation.alignment : HostReservation.pageSize
        guard size <= reservation.size - (align - HostReservation.pageSize) else {
            throw .host(.outsideWindow(address: reservation.base, length: size, windowBase: reservation.base,
                                       windowSize: reservation.size))
        }
        do throws(AddressSpaceError) {
            let hole = try space.gap(minimumLength: size + align - HostReservation.pageSize, base: reservation.base,
                                     length: reservation.size, direction: .low)
            return (hole.base + align - 1) & ~(align - 1)
        } catch {
            throw .addressSpace(error)
        }
    }

    /// `as_map` with a host driver's create routine: the routine maps the
    /// memory and registers it while the address space's write lock is held
    /// (after the overlap check, so `MAP_FIXED` never lands on a neighbour).
    /// Without an address the segment goes in the lowest gap that fits; a
    /// concurrent map that took the same gap first makes it look again.
    func mapSegment(_ size: UInt64, at address: UInt64?, isHole: Bool = false,
                    _ make: (UInt64) throws(HostMemoryError) -> HostSegmentDriver) throws(HostSegmentError) -> Segment {
        var attempts = 0
        while true {
            let base = try place(size, at: address)
            var hostError: HostMemoryError? = nil
            do throws(AddressSpaceError) {
                return try space.map(address: base, size: size, isHole: isHole) { request throws(SegmentError) in
                    do throws(HostMemoryError) {
                        let driver = try make(request.base)
                        return .created(driver, flags: driver.segmentFlags)
                    } catch {
                        hostError = error
                        throw .invalidResult(error.description)
                    }
                }
            } catch {
                if let hostError { throw .host(hostError) }
                if case .overlap = error, address == nil, attempts < 64 {
                    attempts += 1
                    continue
                }
                throw .addressSpace(error)
            }
        }
    }

    /// Registers a new segment's range with the fault service, or fills it
    /// now where there is none. Returns the modes registered.
    func register(_ base: UInt64, _ size: UInt64, _ modes: UserFaultModes) throws(HostMemoryError) -> UserFaultModes {
        guard let service = hat.service else { return [] }
        do throws(HostMemoryError) {
            try service.register(at: base, length: size, modes: modes)
        } catch {
            try? reservation.release(at: base, length: size)
            throw error
        }
        return modes
    }

    // MARK: The drivers

    /// segvn, anonymous: private zero-fill memory, filled by the driver on
    /// first touch through userfaultfd (populated at once without it).
    @discardableResult
    public func mapAnonymous(size: UInt64, at address: UInt64? = nil,
                             protection: HostProtection = .readWrite) throws(HostSegmentError) -> Segment {
        return try mapSegment(size, at: address) { (b) throws(HostMemoryError) -> HostSegmentDriver in
            try reservation.mapAnonymous(at: b, length: size, protection: protection, populate: !usesUserfaultfd)
            let modes = try register(b, size, .missing)
            return HostSegVn(hat: hat, object: nil, sharing: .private, maxProtection: .all, modes: modes, origin: b,
                             originOffset: 0,
                             protections: _PageProtections(origin: b, size: size, protection: protection))
        }
    }

    /// segvn, file: `object` from `offset`, private (copy-on-write: writes
    /// stay in this mapping) or shared (writes reach the file). Its faults
    /// are served by the kernel from the page cache.
    @discardableResult
    public func mapFile(_ object: MemoryObject, offset: UInt64 = 0, size: UInt64, at address: UInt64? = nil,
                        protection: HostProtection = [.read], shared: Bool = false) throws(HostSegmentError) -> Segment {
        do throws(HostMemoryError) {
            try object.checkMappable(offset: offset, length: size, protection: protection, shared: shared)
        } catch {
            throw .host(error)
        }
        return try mapSegment(size, at: address) { (b) throws(HostMemoryError) -> HostSegmentDriver in
            try reservation.map(object, offset: offset, at: b, length: size, protection: protection, shared: shared)
            return HostSegVn(hat: hat, object: object, sharing: shared ? .shared : .private,
                             maxProtection: object.allowedProtection(shared: shared), modes: [], origin: b,
                             originOffset: offset,
                             protections: _PageProtections(origin: b, size: size, protection: protection))
        }
    }

    /// segdev: a `memfd` mapped shared, so another process can map the same
    /// pages through its descriptor. Missing pages are zero-filled by the
    /// driver; pages another process wrote are mapped by it on a minor fault
    /// where the kernel offers minor faults.
    @discardableResult
    public func mapDevice(_ object: MemoryObject, offset: UInt64 = 0, size: UInt64, at address: UInt64? = nil,
                          protection: HostProtection = .readWrite) throws(HostSegmentError) -> Segment {
        guard object.kind == .memfd else {
            throw .invalidArgument(name: "object \(object.name)", value: 0, reason: "segdev maps a memfd")
        }
        do throws(HostMemoryError) {
            try object.checkMappable(offset: offset, length: size, protection: protection, shared: true)
        } catch {
            throw .host(error)
        }
        return try mapSegment(size, at: address) { (b) throws(HostMemoryError) -> HostSegmentDriver in
            try reservation.map(object, offset: offset, at: b, length: size, protection: protection, shared: true)
            // A shared mapping the object does not let us write (sealed, or a
            // read-only descriptor) cannot be registered (EPERM): nothing
            // could fill it but the kernel, which does.
            var wanted: UserFaultModes = []
            if object.allowedProtection(shared: true).contains(.write) {
                wanted.insert(.missing)
                if hat.service?.features.contains(.minorShmem) == true { wanted.insert(.minor) }
            }
            let modes = wanted.isEmpty ? [] : try register(b, size, wanted)
            return HostSegDev(hat: hat, object: object, sharing: .shared,
                              maxProtection: object.allowedProtection(shared: true), modes: modes, origin: b,
                              originOffset: offset,
                              protections: _PageProtections(origin: b, size: size, protection: protection))
        }
    }

    /// seghole: reserved and never accessible; a touch is reported naming
    /// the hole. Not counted in `a_size`.
    @discardableResult
    public func mapHole(size: UInt64, at address: UInt64? = nil, name: String) throws(HostSegmentError) -> Segment {
        return try mapSegment(size, at: address, isHole: true) { (b) throws(HostMemoryError) -> HostSegmentDriver in
            let driver = HostSegHole(hat: hat, name: name, origin: b, size: size)
            try driver.addGuard(b, size, .hole, "seghole \"\(name)\"")
            return driver
        }
    }

    /// A stack of `size` usable bytes with `redZone` bytes of inaccessible
    /// pages below it (segkp's layout); the segment is `redZone + size`
    /// bytes and the stack grows down from its end.
    @discardableResult
    public func mapStack(size: UInt64, redZone: UInt64 = HostReservation.pageSize, at address: UInt64? = nil,
                         name: String) throws(HostSegmentError) -> Segment {
        guard redZone > 0, redZone % HostReservation.pageSize == 0 else {
            throw .host(.notAligned(what: "red zone", value: redZone, alignment: HostReservation.pageSize))
        }
        let (total, o) = size.addingReportingOverflow(redZone)
        guard !o else { throw .host(.rangeWraps(address: redZone, length: size)) }
        return try mapSegment(total, at: address) { (b) throws(HostMemoryError) -> HostSegmentDriver in
            let usable = b + redZone
            try reservation.mapAnonymous(at: usable, length: size, protection: .readWrite, populate: !usesUserfaultfd)
            let modes = try register(usable, size, .missing)
            let protections = _PageProtections(origin: b, size: total, protection: .readWrite)
            protections.set(b, redZone, .none, wholeSegment: false)
            let driver = HostStack(hat: hat, name: name, redZone: redZone, modes: modes, origin: b, size: total,
                                   protections: protections)
            do throws(HostMemoryError) {
                try driver.addGuard(b, redZone, .redZone, "stack \"\(name)\"")
            } catch {
                try? reservation.release(at: b, length: total)
                throw error
            }
            return driver
        }
    }

    /// Lazy fill: `size` bytes filled on first touch from `file` at `offset`,
    /// `readAhead` bytes per fault (64 KiB by default). Private: writes stay
    /// in memory.
    @discardableResult
    public func mapLazyFill(_ file: MemoryObject, offset: UInt64 = 0, size: UInt64, at address: UInt64? = nil,
                            readAhead: UInt64 = 64 << 10,
                            protection: HostProtection = .readWrite) throws(HostSegmentError) -> Segment {
        guard readAhead >= HostReservation.pageSize, readAhead % HostReservation.pageSize == 0,
              readAhead <= 1 << 30 else {
            throw .invalidArgument(name: "readAhead", value: readAhead,
                                   reason: "must be a multiple of 4096 from 4096 to 1 GiB")
        }
        let view: ObjectView
        do throws(HostMemoryError) {
            view = try ObjectView(file, offset: offset, length: size)
        } catch {
            throw .host(error)
        }
        return try mapSegment(size, at: address) { (b) throws(HostMemoryError) -> HostSegmentDriver in
            let eager = !usesUserfaultfd
            try reservation.mapAnonymous(at: b, length: size, protection: eager ? .readWrite : protection)
            let modes = try register(b, size, .missing)
            let driver = HostLazyFill(hat: hat, file: file, view: view,
                                      claims: _PageBitmap(pages: Int(size / HostReservation.pageSize)),
                                      readAhead: readAhead, modes: modes, origin: b, originOffset: offset,
                                      protections: _PageProtections(origin: b, size: size, protection: protection))
            if eager {
                driver.fillEagerly(at: b, size: size)
                if protection != .readWrite { try reservation.protect(at: b, length: size, protection: protection) }
            }
            return driver
        }
    }
}
