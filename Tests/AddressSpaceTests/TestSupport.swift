import AddressSpace
import PageTables
import PhysicalMemory
#if canImport(Glibc)
import Glibc
#endif

/// A HAT over a software x86-64 page table: what the model kernel will do,
/// reduced to the protocol.
final class PageTableHAT: HAT, @unchecked Sendable {
    let table: PageTable<X86PTEFormat, HostTableAllocator>
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init() throws {
        table = try PageTable(frames: HostTableAllocator())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    private func locked<R>(_ body: () throws(HATError) -> R) throws(HATError) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    static func attributes(_ p: Protection) -> PageAttributes {
        var access: PageAttributes.Access = .read
        if p.contains(.write) { access.insert(.write) }
        if p.contains(.execute) { access.insert(.execute) }
        return PageAttributes(access: access, user: p.contains(.user))
    }

    func load(address: UInt64, pfn: PageFrameNumber, attributes: HATAttributes,
              flags: HATLoadFlags) throws(HATError) {
        try locked { () throws(HATError) in
            do throws(PageTableError) {
                try table.map(address, to: pfn << 12, attributes: Self.attributes(attributes.protection))
            } catch {
                if case .alreadyMapped = error { throw .alreadyMapped(address: address) }
                throw .failed(address: address, reason: error.description)
            }
        }
    }

    func unload(address: UInt64, size: UInt64, flags: HATUnloadFlags) throws(HATError) {
        try locked { () throws(HATError) in
            do throws(PageTableError) { try table.unmap(address, length: size) } catch {
                throw .failed(address: address, reason: error.description)
            }
        }
    }

    func changeProtection(address: UInt64, size: UInt64, protection: Protection) throws(HATError) {
        try locked { () throws(HATError) in
            do throws(PageTableError) {
                try table.protect(address, length: size) { old in
                    var a = Self.attributes(protection)
                    a.accessed = old.accessed
                    a.dirty = old.dirty
                    return a
                }
            } catch {
                throw .failed(address: address, reason: error.description)
            }
        }
    }

    func translation(of address: UInt64) -> HATTranslation? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard let t = try? table.lookup(address) else { return nil }
        var p: Protection = .read
        if t.attributes.access.contains(.write) { p.insert(.write) }
        if t.attributes.access.contains(.execute) { p.insert(.execute) }
        if t.attributes.user { p.insert(.user) }
        return HATTranslation(pfn: t.physicalAddress >> 12, protection: p, pageSize: t.size.bytes)
    }
}

/// A call a driver saw.
struct DriverCall: Equatable, CustomStringConvertible {
    var op: SegmentOperation
    var base: UInt64
    var address: UInt64
    var size: UInt64
    var type: FaultType?
    var access: SegmentAccess?
    var description: String {
        "\(op) seg 0x\(String(base, radix: 16)) [0x\(String(address, radix: 16)), +0x\(String(size, radix: 16))) \(type.map { "\($0)" } ?? "") \(access.map { "\($0)" } ?? "")"
    }
}

/// A log shared by drivers.
final class CallLog: @unchecked Sendable {
    private var calls: [DriverCall] = []
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    init() { pthread_mutex_init(mutex, nil) }
    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }
    func append(_ c: DriverCall) {
        pthread_mutex_lock(mutex); calls.append(c); pthread_mutex_unlock(mutex)
    }
    var all: [DriverCall] {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }; return calls
    }
    func clear() { pthread_mutex_lock(mutex); calls.removeAll(); pthread_mutex_unlock(mutex) }
}

/// A scriptable driver: loads identity translations on faults, records every
/// call, splits on a middle unmap, and fails where it is told to.
final class ScriptedDriver: SegmentDriver, @unchecked Sendable {
    let opsName: String
    let supportedOperations: SegmentOperations
    let dataAddress: UInt64
    let log: CallLog
    /// Fault fails (with this error) for any piece containing this address.
    var failFaultAt: (UInt64, SegmentError)?
    /// Unmap answers with these errors first, in order.
    var unmapErrors: [SegmentError] = []
    /// Soft-locked page count (unmap answers EAGAIN while non-zero).
    var softLocked = 0
    var freed = false
    var onFault: (@Sendable (Segment) -> Void)?

    init(_ name: String = "segtest_ops", log: CallLog = CallLog(), data: UInt64 = 0,
         operations: SegmentOperations = .all) {
        opsName = name
        self.log = log
        dataAddress = data
        supportedOperations = operations
    }

    func fault(_ hat: any HAT, _ segment: Segment, address: UInt64, size: UInt64,
               type: FaultType, access: SegmentAccess) throws(SegmentError) {
        log.append(DriverCall(op: .fault, base: segment.base, address: address, size: size, type: type, access: access))
        onFault?(segment)
        if let (at, error) = failFaultAt, at >= address, at - address < size { throw error }
        switch type {
        case .softLock: softLocked += Int(size >> 12)
        case .softUnlock: softLocked -= Int(size >> 12)
        case .invalid, .protection:
            var a = address
            while a < address + size {
                if hat.translation(of: a) == nil {
                    do { try hat.load(address: a, pfn: (a >> 12) & 0xFFFFF, attributes: HATAttributes(.zfod), flags: []) }
                    catch { throw .fault(.objectError(errno: Errno.EFAULT), address: a) }
                }
                a += 4096
            }
        }
    }

    func unmap(_ segment: Segment, address: UInt64, size: UInt64) throws(SegmentError) -> UnmapOutcome {
        log.append(DriverCall(op: .unmap, base: segment.base, address: address, size: size))
        if !unmapErrors.isEmpty { throw unmapErrors.removeFirst() }
        if softLocked > 0 { throw .again(address: address, size: size) }
        let last = address + (size - 1)
        if address == segment.base && size == segment.size { return .removed }
        if address == segment.base { return .trimmed(base: last + 1, size: segment.last - last) }
        if last == segment.last { return .trimmed(base: segment.base, size: address - segment.base) }
        return .split(keepBase: segment.base, keepSize: address - segment.base, newBase: last + 1,
                      newSize: segment.last - last,
                      newDriver: ScriptedDriver(opsName, log: log, data: dataAddress, operations: supportedOperations))
    }

    func free(_ segment: Segment) throws(SegmentError) {
        log.append(DriverCall(op: .free, base: segment.base, address: segment.base, size: segment.size))
        freed = true
    }

    func lockop(_ segment: Segment, address: UInt64, size: UInt64, attributes: Int32,
                operation: LockOperation) throws(SegmentError) {
        log.append(DriverCall(op: .lockop, base: segment.base, address: address, size: size))
    }
}

/// A driver that implements nothing at all.
final class EmptyDriver: SegmentDriver {
    var opsName: String { "segempty_ops" }
    var supportedOperations: SegmentOperations { [] }
}

func makeKAS(hat: (any HAT)? = nil) throws -> AddressSpace {
    AddressSpace(name: "kas", kind: .kernel, hat: try hat ?? PageTableHAT(), virtualHole: AddressSpace.amd64Hole)
}

enum Bench {
    static var enabled: Bool { getenv("VMKIT_BENCH").map { String(cString: $0) == "1" } ?? false }
    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
