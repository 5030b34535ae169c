import HostMemory
import Synchronization
import class Vmem.Arena

/// A guest's physical memory: up to 16 memory segments, up to 32 mappings
/// of segment ranges at guest-physical addresses, all inside one host
/// reservation with guard regions on both sides. See the module article for
/// the design and its invariants.
///
/// Map changes (`allocateSegment`, `map`, `unmap`, `reset`, `destroy`) take
/// the map lock exclusively; VMM accesses share it. Pointers handed out
/// (``translate(_:_:_:)``, ``PageHold``) stay valid until the mapping is
/// unmapped — a mapping with holds cannot be — so, as in bhyve, a VMM does
/// not unmap under its own in-flight translations.
public final class GuestMemory: @unchecked Sendable {
    /// 4 KiB.
    public static let pageSize: UInt64 = 4096
    /// Segment ids are 0..<16.
    public static let maxSegments = 16
    /// At most 32 mappings (2 × `VM_MAX_MEMSEGS`, as in bhyve).
    public static let maxMappings = 32
    /// The largest guest-physical space: 2^47.
    public static let addressLimit: UInt64 = 1 << 47
    /// Each guard region: 4 MiB (FreeBSD `VM_MMAP_GUARD_SIZE`).
    public static let guardSize: UInt64 = 4 << 20

    /// Where guest-physical addresses live on the host.
    public enum HostLayout: Sendable, Hashable {
        /// Guest-physical `gpa` at host `hostBase + gpa`, in a window of the
        /// whole guest space (FreeBSD's layout, and the default).
        case direct
        /// Mappings packed into a host window of `windowBytes`, each placed
        /// first fit (2 MiB aligned from 2 MiB up) with a 4 MiB guard after
        /// it: for a sparse guest-physical space larger than the host can
        /// reserve in one piece (up to 2^47 on a host whose whole user space
        /// is 2^47).
        case packed(windowBytes: UInt64)
    }

    /// The guest-physical space is `[0, limit)`; a mapping must end by it.
    public let limit: UInt64
    /// How mappings are placed in the host window.
    public let hostLayout: HostLayout
    /// The host window: guard, guest space (or the packed window), guard.
    public let reservation: HostReservation
    /// Start of the host window (2 MiB aligned): with ``HostLayout/direct``,
    /// the host address of guest-physical 0.
    public let hostBase: UInt64
    /// Bytes of the host window between the guards.
    let windowBytes: UInt64
    /// ``HostLayout/packed(windowBytes:)``: the window's free ranges, a vmem
    /// arena handing out each mapping's place and its trailing guard.
    private let packer: Arena?

    let lock = RWLock()
    private var segmentTable: [MemorySegment?] = Array(repeating: nil, count: GuestMemory.maxSegments)
    /// Sorted by gpa, never overlapping. Every change (under the exclusive
    /// hold) rebuilds the flat table the hot paths search.
    var entries: [MappingEntry] = [] { didSet { rebuildFlat() } }
    /// `entries` as plain rows in one buffer (``FlatMapping``), `flatCount` of them.
    /// Allocated last in `init`, once nothing can throw: a throwing init
    /// runs no deinit, so a buffer made earlier would leak (LeakSanitizer).
    let flat: UnsafeMutablePointer<FlatMapping>
    private let flatRows = Atomic<Int>(0)
    /// Rows in `flat`.
    var flatCount: Int { flatRows.load(ordering: .relaxed) }
    /// Every mapping's hold counter, kept until the guest goes (8 bytes a
    /// mapping ever made): a hold's lock-free path that raced a removal may
    /// still add to and take from a removed mapping's counter.
    private var holdCounters: [UnsafeMutablePointer<Atomic<Int>>] = []
    /// Harvests run one at a time (they swap dirty-bitmap buffers).
    let harvestLock = RWLock()
    var isDestroyedFlag = false
    /// The nested page table, kept in step with `entries`.
    let nested: GuestNestedTable
    /// Further records of guest writes (KVM's log), drained by every harvest.
    var dirtyLogs: [any GuestDirtyLog] = []
    /// Who backs system-memory segments (``GuestPageProvider``); nil: the guest itself.
    public internal(set) var pageProvider: (any GuestPageProvider)?

    /// Reserves a guest-physical space of `limit` bytes (page aligned) with
    /// a nested page table in `nested`'s format and A/D mode. The host
    /// window, rounded up to 2 MiB, lies between two 4 MiB guard regions:
    /// `limit` bytes with the direct layout, `windowBytes` packed.
    ///
    /// - Complexity: O(1); a packed map or unmap is O(log n) in the window's free ranges.
    public init(limit: UInt64, nested mode: NestedTableMode = NestedTableMode(),
                hostLayout: HostLayout = .direct) throws(GuestMemoryError) {
        guard limit > 0, limit <= Self.addressLimit else {
            throw .beyondGuestSpace(gpa: 0, length: limit, limit: Self.addressLimit)
        }
        guard limit % Self.pageSize == 0 else { throw .notPageAligned(what: "guest space limit", value: limit) }
        let window: UInt64
        switch hostLayout {
        case .direct: window = limit
        case .packed(let bytes):
            guard bytes > 0, bytes < Self.addressLimit else { throw .invalidHostWindow(bytes: bytes) }
            guard bytes % Self.pageSize == 0 else { throw .notPageAligned(what: "host window size", value: bytes) }
            window = bytes
        }
        let rounded = (window + HostReservation.alignment - 1) & ~(HostReservation.alignment - 1)
        nested = try GuestNestedTable(limit: limit, mode: mode)
        do {
            reservation = try HostReservation(size: rounded + 2 * Self.guardSize)
        } catch {
            throw .host(error)
        }
        self.limit = limit
        self.hostLayout = hostLayout
        hostBase = reservation.base + Self.guardSize
        windowBytes = rounded
        if case .packed = hostLayout {
            // Cannot fail: a valid name, a power-of-two quantum, a span in range.
            packer = try? Arena(name: "guest host window", base: hostBase, size: rounded, quantum: Self.pageSize)
        } else {
            packer = nil
        }
        flat = .allocate(capacity: Self.maxMappings)
    }

    /// A guest dropped while a ``PageHold`` is outstanding keeps the held
    /// mappings' bookkeeping and its host window (leaked), so the hold's
    /// pointer and release stay valid; otherwise everything goes.
    deinit {
        let held = entries.filter { $0.holds.load(ordering: .acquiring) > 0 }
        if held.isEmpty {
            reservation.destroy()
        } else {
            for e in held { _ = Unmanaged.passRetained(e) }
            return   // the held rows' counters and the table stay too
        }
        flat.deallocate()
        for c in holdCounters { c.deinitialize(count: 1); c.deallocate() }
    }

    /// A fresh hold counter for a new mapping. Under the exclusive hold.
    func newHoldCounter() -> UnsafeMutablePointer<Atomic<Int>> {
        let c = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: 1)
        c.initialize(to: Atomic<Int>(0))
        holdCounters.append(c)
        return c
    }

    /// Rebuilds the flat table from `entries`, word by word atomically (the
    /// hold fast path may be reading). Under the exclusive hold.
    private func rebuildFlat() {
        for (i, e) in entries.enumerated() { FlatMapping.store(e.flat, into: flat + i) }
        flatRows.store(entries.count, ordering: .relaxed)
    }

    /// The two guard regions, as host address ranges: never mapped, so a
    /// stray access just past guest memory faults.
    public var guardRegions: [Range<UInt64>] {
        [reservation.base ..< hostBase, reservation.base + reservation.size - Self.guardSize ..< reservation.base + reservation.size]
    }

    /// The host range guest memory is mapped into: guest-physical
    /// `[0, limit)` with the direct layout, the packed window otherwise.
    public var hostWindow: Range<UInt64> {
        hostBase ..< hostBase + (packer == nil ? limit : windowBytes)
    }

    // MARK: Segments

    /// Creates segment `id` (bhyve `vm_alloc_memseg`): system memory without
    /// a `name`, device memory with one. Re-creating an id that exists is
    /// refused: ``GuestMemoryError/segmentExists(id:)`` when identical,
    /// ``GuestMemoryError/segmentConflict(id:existing:requested:)`` otherwise.
    @discardableResult
    public func allocateSegment(id: Int, length: UInt64, name: String? = nil,
                                backing: MemorySegment.Backing = .memfd) throws(GuestMemoryError) -> MemorySegment {
        guard id >= 0, id < Self.maxSegments else { throw .invalidSegmentID(id) }
        guard length > 0, length % Self.pageSize == 0, length <= Self.addressLimit else {
            throw .invalidSegmentLength(id: id, length: length)
        }
        if let name { try MemorySegment.checkName(name) }
        let kind: MemorySegment.Kind = name.map { .device(name: $0) } ?? .system
        return try lock.writing { () throws(GuestMemoryError) -> MemorySegment in
            guard !isDestroyedFlag else { throw .destroyed }
            if let existing = segmentTable[id] {
                if existing.kind == kind && existing.length == length { throw .segmentExists(id: id) }
                throw .segmentConflict(id: id, existing: "\(existing.kind) of 0x\(String(existing.length, radix: 16)) bytes",
                                       requested: "\(kind) of 0x\(String(length, radix: 16)) bytes")
            }
            if let name, let other = segmentTable.compactMap({ $0 }).first(where: { $0.name == name }) {
                throw .segmentNameInUse(name: name, id: other.id)
            }
            // A page provider backs system memory; a refusal changes nothing,
            // and a segment that then fails gives its backing straight back.
            let provider = kind == .system ? pageProvider : nil
            let provided = try provider?.provideBacking(forSegment: id, length: length)
            let segment: MemorySegment
            do throws(GuestMemoryError) {
                segment = try MemorySegment(id: id, kind: kind, length: length, backing: backing,
                                            provider: provider, provided: provided)
            } catch {
                if let provider, let provided { provider.releaseBacking(provided, ofSegment: id, length: length) }
                throw error
            }
            segmentTable[id] = segment
            return segment
        }
    }

    /// Segment `id`, if allocated.
    public func segment(_ id: Int) -> MemorySegment? {
        guard id >= 0, id < Self.maxSegments else { return nil }
        return lock.reading { segmentTable[id] }
    }

    /// The allocated segments, by id.
    public var segments: [MemorySegment] { lock.reading { segmentTable.compactMap { $0 } } }

    // MARK: Mappings

    /// The mappings, in guest-physical order.
    public var mappings: [GuestMapping] { lock.reading { entries.map(\.info) } }

    /// Maps `[offset, offset + length)` of segment `segmentID` at `gpa` (bhyve
    /// `vm_mmap_memseg`), checking in bhyve's order: alignment, length,
    /// protection, the segment and the range in it (`invalid`); a free slot
    /// (`nospace`); the guest space and overlap (`fault`). `wired` populates
    /// the pages up front. The segment's object is mapped shared over the
    /// host window at `hostBase + gpa` with the read/write rights of
    /// `protection`.
    public func map(gpa: UInt64, segment segmentID: Int, offset: UInt64, length: UInt64,
                    protection: GuestProtection, wired: Bool = false) throws(GuestMemoryError) {
        guard gpa % Self.pageSize == 0 else { throw .notPageAligned(what: "gpa", value: gpa) }
        guard offset % Self.pageSize == 0 else { throw .notPageAligned(what: "segment offset", value: offset) }
        guard length % Self.pageSize == 0 else { throw .notPageAligned(what: "length", value: length) }
        guard length > 0 else { throw .zeroLength(gpa: gpa) }
        guard protection.isValid else { throw .invalidProtection(rawValue: protection.rawValue) }
        try lock.writing { () throws(GuestMemoryError) in
            guard !isDestroyedFlag else { throw .destroyed }
            guard segmentID >= 0, segmentID < Self.maxSegments, let segment = segmentTable[segmentID] else {
                throw .noSuchSegment(id: segmentID)
            }
            let (segEnd, o1) = offset.addingReportingOverflow(length)
            guard !o1, segEnd <= segment.length else {
                throw .rangeBeyondSegment(id: segmentID, offset: offset, length: length, segmentLength: segment.length)
            }
            guard entries.count < Self.maxMappings else { throw .tooManyMappings(limit: Self.maxMappings) }
            let (end, o2) = gpa.addingReportingOverflow(length)
            guard !o2, end <= Self.addressLimit, end <= limit else {
                throw .beyondGuestSpace(gpa: gpa, length: length, limit: min(limit, Self.addressLimit))
            }
            if let other = entries.first(where: { $0.gpa < end && gpa < $0.end }) {
                throw .overlap(gpa: gpa, length: length, mappedGPA: other.gpa, mappedLength: other.info.length)
            }
            if segment.backing == .anonymous,
               let other = entries.first(where: { $0.segment === segment && $0.info.offset < segEnd
                                                  && offset < $0.info.offset + $0.info.length }) {
                throw .anonymousAlias(id: segmentID, offset: offset, length: length, mappedGPA: other.gpa)
            }
            let host = try hostPlace(gpa: gpa, length: length)
            do throws(HostMemoryError) {
                try reservation.map(segment.object, offset: offset, at: host, length: length,
                                    protection: protection.hostProtection, shared: true, populate: wired)
            } catch {
                try? reservation.release(at: host, length: length)
                hostUnplace(host, length: length)
                throw .host(error)
            }
            let info = GuestMapping(gpa: gpa, length: length, segmentID: segmentID, offset: offset,
                                    protection: protection, wired: wired, hostAddress: host)
            do throws(GuestMemoryError) { try nestedAdd(info) } catch {
                try? reservation.release(at: host, length: length)
                hostUnplace(host, length: length)
                throw error
            }
            let index = entries.firstIndex { $0.gpa > gpa } ?? entries.count
            entries.insert(MappingEntry(info: info, segment: segment, holdCounter: newHoldCounter()), at: index)
        }
    }

    /// Removes the mapping that is exactly `[gpa, gpa + length)` (bhyve
    /// `vm_munmap_memseg`); anything else is `invalid`, as is a mapping with
    /// page holds outstanding. The segment keeps its bytes (a memfd
    /// segment; an anonymous one loses the range).
    public func unmap(gpa: UInt64, length: UInt64) throws(GuestMemoryError) {
        try lock.writing { () throws(GuestMemoryError) in
            guard !isDestroyedFlag else { throw .destroyed }
            guard let i = entries.firstIndex(where: { $0.gpa == gpa && $0.info.length == length }) else {
                throw .noSuchMapping(gpa: gpa, length: length)
            }
            try remove([i])
        }
    }

    /// A VM reset (bhyve `vm_mem_cleanup`): drops every devmem mapping (the
    /// guest may have moved its BARs) and keeps sysmem mappings and every
    /// segment with its bytes. Refused, changing nothing, while a devmem
    /// mapping has holds.
    public func reset() throws(GuestMemoryError) {
        try lock.writing { () throws(GuestMemoryError) in
            guard !isDestroyedFlag else { throw .destroyed }
            try remove(entries.indices.filter { !entries[$0].segment.isSystem })
        }
    }

    /// Where a new mapping of `[gpa, gpa + length)` goes on the host. Under the write lock.
    private func hostPlace(gpa: UInt64, length: UInt64) throws(GuestMemoryError) -> UInt64 {
        guard case .packed = hostLayout else { return hostBase + gpa }
        // The guard after each mapping keeps a stray access past it from
        // reaching the next; 2 MiB alignment lets the host use huge pages.
        let align: UInt64 = length >= HostReservation.alignment ? HostReservation.alignment : Self.pageSize
        let (span, o) = length.addingReportingOverflow(Self.guardSize)
        guard !o, let packer, let host = try? packer.xalloc(span, align: align) else {
            throw .hostWindowFull(gpa: gpa, length: length, windowBytes: windowBytes)
        }
        return host
    }

    /// Gives a mapping's place in a packed window back. Under the write lock.
    private func hostUnplace(_ host: UInt64, length: UInt64) {
        try? packer?.xfree(host, size: length + Self.guardSize)
    }

    /// Removes the entries at `indices` (ascending): all or none. Under the write lock.
    private func remove(_ indices: [Int]) throws(GuestMemoryError) {
        for i in indices {
            let held = entries[i].holds.load(ordering: .acquiring)
            if held > 0 { throw .mappingHeld(gpa: entries[i].gpa, length: entries[i].info.length, holds: held) }
        }
        for i in indices.reversed() {
            let e = entries[i]
            try nestedRemove(e)
            do {
                try reservation.release(at: e.info.hostAddress, length: e.info.length)
            } catch {
                throw .host(error)
            }
            hostUnplace(e.info.hostAddress, length: e.info.length)
            entries.remove(at: i)
        }
    }

    /// Releases the host window: every mapping and the guards go. Later calls
    /// are refused with ``GuestMemoryError/destroyed``. Idempotent; refused
    /// while any hold is outstanding.
    public func destroy() throws(GuestMemoryError) {
        try lock.writing { () throws(GuestMemoryError) in
            guard !isDestroyedFlag else { return }
            for e in entries {
                let held = e.holds.load(ordering: .acquiring)
                if held > 0 { throw .mappingHeld(gpa: e.gpa, length: e.info.length, holds: held) }
            }
            isDestroyedFlag = true
            entries.removeAll()
            reservation.destroy()
            for case let segment? in segmentTable { segment.releaseProvidedBacking() }
        }
    }

    // MARK: Lookup

    /// The row of the flat table holding `gpa`: a linear scan for a few
    /// mappings, a binary search (unsigned midpoint) for many. Under the lock.
    @inline(__always)
    func flatIndex(containing gpa: UInt64) -> Int? {
        let n = flatCount
        if n <= 8 {
            var i = 0
            while i < n {
                let r = flat + i
                if gpa >= r.pointee.gpa && gpa < r.pointee.end { return i }
                i &+= 1
            }
            return nil
        }
        var lo = 0, hi = n
        while lo < hi {
            let mid = Int(bitPattern: UInt(bitPattern: lo &+ hi) >> 1)
            if flat[mid].gpa <= gpa { lo = mid &+ 1 } else { hi = mid }
        }
        guard lo > 0, gpa < flat[lo &- 1].end else { return nil }
        return lo &- 1
    }

    /// The entry holding `gpa`. Under the lock.
    @inline(__always)
    func entry(containing gpa: UInt64) -> MappingEntry? {
        guard let i = flatIndex(containing: gpa) else { return nil }
        return entries[i]
    }
}
