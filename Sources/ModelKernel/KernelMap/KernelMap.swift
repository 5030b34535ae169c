/// A model of FreeBSD's `kernel_map` with the map-entry reserve of D26851
/// (seed 002, address-space.md §4).
///
/// A map is a sorted set of entries over `[min, max)`, guarded by a mutex
/// (system maps use a mutex, not an sx lock, so a "read lock" is the same
/// mutex). Its entries come from a private slab allocator whose slabs are
/// themselves ranges of this map: making a slab means inserting an entry.
/// Entries needed while the map is locked never build a slab; when the
/// ordinary free items are gone they come from a reserve of
/// `KMAPENT_RESERVE + 1` items and `MAP_REPLENISH` is set, and ``unlock()``
/// refills the zone — a new slab, whose own entry may take the reserve's
/// last item — just before the mutex is released.
///
/// Every operation creates at most one entry (an insert, or the split of
/// one entry around a hole punched in its middle), so one item of reserve
/// covers the operation and the extra one covers the refill.
///
/// Use it as FreeBSD code does: ``lock()``, then ``findSpace(size:)`` /
/// ``insert(start:size:)`` / ``delete(start:size:)``, then ``unlock()``; or
/// the one-call ``allocate(size:)`` and ``free(start:size:)``.
public final class KernelMap: @unchecked Sendable {
    /// FreeBSD `KMAPENT_RESERVE`.
    public static let kmapentReserve = 1
    /// The reserve D26851 sets up: one for the operation, one for the refill.
    public static let defaultReserve = kmapentReserve + 1

    /// `vm_map` flags.
    public struct Flags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// `MAP_REPLENISH` (0x20): the entry zone must be refilled before the
        /// map mutex is released.
        public static let replenish = Flags(rawValue: 0x20)
    }

    /// How the caller holds the map lock.
    public enum LockMode: Hashable, Sendable {
        /// `vm_map_lock`
        case exclusive
        /// `vm_map_lock_read` (on a system map: the same mutex)
        case shared
    }

    /// What a map is built from.
    public struct Configuration: Hashable, Sendable {
        /// `vm_map_min` and the map's size: `[base, base + size)`.
        public var base: UInt64
        public var size: UInt64
        public var pageSize: UInt64
        /// Pages per entry slab (`kmapent_alloc` is asked for whole slabs).
        public var slabPages: UInt64
        /// Entries per slab; the item size is the slab's bytes divided by it.
        /// Real entries are about 128 bytes, 32 to a page; tests make slabs
        /// tiny to reach the reserve often.
        public var entriesPerSlab: Int
        /// Items kept back for `M_USE_RESERVE`.
        public var reserve: Int

        public init(base: UInt64, size: UInt64, pageSize: UInt64 = 4096, slabPages: UInt64 = 1,
                    entriesPerSlab: Int = 32, reserve: Int = KernelMap.defaultReserve) {
            self.base = base
            self.size = size
            self.pageSize = pageSize
            self.slabPages = slabPages
            self.entriesPerSlab = entriesPerSlab
            self.reserve = reserve
        }
    }

    public let configuration: Configuration
    /// `vm_map_min` / `vm_map_max`.
    public let min: UInt64
    public let max: UInt64
    public let pageSize: UInt64
    /// Bytes of one entry slab.
    public let slabBytes: UInt64

    let mutex = _OwnedMutex()
    // Guarded by `mutex`.
    var entryList: [KernelMapEntry] = []
    var zone: _MapEntryZone
    var mapFlags: Flags = []
    var mode: LockMode?
    var stats = KernelMapStatistics()
    var takesThisHold = 0
    var replenishing = false

    /// Builds the map and its boot slab at `base`, mapped by an entry drawn
    /// from that very slab.
    public init(_ configuration: Configuration) throws(KernelMapError) {
        let c = configuration
        guard c.pageSize >= 16, c.pageSize & (c.pageSize - 1) == 0 else {
            throw .invalidConfiguration(reason: "page size \(c.pageSize) is not a power of two of at least 16")
        }
        guard c.reserve >= 0, c.reserve <= 1024 else {
            throw .invalidConfiguration(reason: "reserve \(c.reserve) is outside [0, 1024]")
        }
        guard c.slabPages >= 1, c.slabPages <= 1024 else {
            throw .invalidConfiguration(reason: "slab pages \(c.slabPages) is outside [1, 1024]")
        }
        let slabBytes = c.slabPages * c.pageSize
        // A slab must hold its own entry and a whole reserve, and leave one
        // item for ordinary use, or every refill would only feed itself.
        guard c.entriesPerSlab >= c.reserve + 2, UInt64(c.entriesPerSlab) <= slabBytes,
              slabBytes % UInt64(c.entriesPerSlab) == 0 else {
            throw .invalidConfiguration(reason: "entries per slab \(c.entriesPerSlab) must divide \(slabBytes) "
                                        + "and be at least reserve + 2 = \(c.reserve + 2)")
        }
        guard c.base & (c.pageSize - 1) == 0 else { throw .unaligned(parameter: "base", value: c.base, pageSize: c.pageSize) }
        guard c.size & (c.pageSize - 1) == 0 else { throw .unaligned(parameter: "size", value: c.size, pageSize: c.pageSize) }
        let (end, o) = c.base.addingReportingOverflow(c.size)
        guard !o else { throw .overflow(start: c.base, size: c.size) }
        guard c.size >= 2 * slabBytes else {
            throw .invalidConfiguration(reason: "map size \(c.size) holds fewer than two slabs of \(slabBytes) bytes")
        }
        self.configuration = c
        self.min = c.base
        self.max = end
        self.pageSize = c.pageSize
        self.slabBytes = slabBytes
        zone = _MapEntryZone(itemsPerSlab: c.entriesPerSlab, itemSize: slabBytes / UInt64(c.entriesPerSlab),
                             reserve: c.reserve)
        zone.addSlab(base: c.base, isBoot: true)
        // The boot slab's entry is its own first item; it is neither a reserve
        // take nor a replenish.
        let record = zone.allocate(useReserve: true) ?? c.base
        entryList.append(KernelMapEntry(start: c.base, end: c.base + slabBytes, kind: .bootSlab,
                                        noFault: true, record: record))
        stats.slabsAllocated = 1
        stats.entriesCreated = 1
    }

    // MARK: The lock

    /// Whether the calling thread holds the map lock (`vm_map_locked`).
    public var isLockedByCurrentThread: Bool { mutex.isHeldByCurrentThread }

    /// `vm_map_lock`: takes the mutex for modification.
    public func lock() throws(KernelMapError) {
        try acquire(.exclusive)
    }

    /// `vm_map_lock_read`: on a system map, the same mutex.
    public func lockRead() throws(KernelMapError) {
        try acquire(.shared)
    }

    func acquire(_ m: LockMode) throws(KernelMapError) {
        if mutex.isHeldByCurrentThread { throw .recursiveLock }
        mutex.lock()
        mode = m
        takesThisHold = 0
        stats.lowestLevelAtLock = Swift.min(stats.lowestLevelAtLock, zone.reserveLevel)
    }

    /// `_vm_map_unlock`: if `MAP_REPLENISH` is set, refills the entry zone
    /// with one slab (`uma_prealloc(kmapentzone, 1)`) and clears the flag,
    /// then releases the mutex. If the refill fails (the map is full, or the
    /// zone is empty: FreeBSD panics) the mutex is released anyway, the flag
    /// stays set for the next unlock, and the error is thrown.
    public func unlock() throws(KernelMapError) {
        guard mutex.isHeldByCurrentThread else { throw .notLocked(operation: "unlock") }
        var failure: KernelMapError?
        if mapFlags.contains(.replenish) {
            do throws(KernelMapError) {
                try replenish()
            } catch {
                failure = error
            }
        }
        release()
        if let failure { throw failure }
    }

    /// `_vm_map_unlock_read`: must never find `MAP_REPLENISH` set (only an
    /// entry taken under a read lock sets it there, which is a bug). On that
    /// bug it throws ``KernelMapError/replenishLeaked(operation:)`` and keeps
    /// the lock; ``unlock()`` then refills and releases.
    public func unlockRead() throws(KernelMapError) {
        guard mutex.isHeldByCurrentThread else { throw .notLocked(operation: "unlock_read") }
        if mapFlags.contains(.replenish) { throw .replenishLeaked(operation: "vm_map_unlock_read") }
        release()
    }

    /// `_vm_map_lock_downgrade`: exclusive becomes shared. Refused, with the
    /// lock unchanged, if `MAP_REPLENISH` is set.
    public func downgrade() throws(KernelMapError) {
        guard mutex.isHeldByCurrentThread, let m = mode else { throw .notLocked(operation: "lock_downgrade") }
        guard m == .exclusive else { throw .wrongLockMode(operation: "lock_downgrade", held: m) }
        if mapFlags.contains(.replenish) { throw .replenishLeaked(operation: "vm_map_lock_downgrade") }
        mode = .shared
    }

    func release() {
        mode = nil
        mutex.unlock()
    }

    /// Runs `body` with the lock held, taking it only if the caller does not
    /// hold it already (for inspection, not for changes).
    func inspecting<R>(_ body: () -> R) -> R {
        if mutex.isHeldByCurrentThread { return body() }
        mutex.lock()
        defer { mutex.unlock() }
        return body()
    }

    // MARK: Inspection

    /// The entries in address order.
    public var entries: [KernelMapEntry] { inspecting { entryList } }
    /// `map->flags`
    public var flags: Flags { inspecting { mapFlags } }
    /// The counters, with the current zone levels filled in.
    public var statistics: KernelMapStatistics {
        inspecting {
            var s = stats
            s.entries = entryList.count
            s.slabs = zone.slabs.count
            s.freeItems = zone.freeCount
            s.itemsInUse = zone.inUse
            s.reserve = zone.reserve
            s.reserveLevel = zone.reserveLevel
            return s
        }
    }
}
