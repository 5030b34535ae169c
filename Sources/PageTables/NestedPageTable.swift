import Synchronization

/// One range of guest-physical addresses backed by host frames with one
/// protection (what bhyve's `vm_mmap_memseg` installs, split where a later
/// ``NestedPageTable/protect(_:length:access:)`` or partial unmap cut it).
public struct NestedMapping: Hashable, Sendable, CustomStringConvertible {
    /// First guest-physical address (4 KiB aligned).
    public let gpa: UInt64
    /// Bytes (a 4 KiB multiple).
    public let length: UInt64
    /// The host (system-physical) address `gpa` translates to.
    public let hostAddress: UInt64
    public let access: PageAttributes.Access
    public let cache: PageAttributes.CacheType

    public init(gpa: UInt64, length: UInt64, hostAddress: UInt64, access: PageAttributes.Access,
                cache: PageAttributes.CacheType = .writeBack) {
        self.gpa = gpa
        self.length = length
        self.hostAddress = hostAddress
        self.access = access
        self.cache = cache
    }

    /// The last guest-physical address.
    public var last: UInt64 { gpa + (length - 1) }

    /// The leaf attributes of a fresh (not yet accessed) page of this mapping.
    public var attributes: PageAttributes { PageAttributes(access: access, cache: cache) }

    public var description: String {
        "0x\(String(gpa, radix: 16)) +0x\(String(length, radix: 16)) -> 0x\(String(hostAddress, radix: 16)) "
            + PageAttributes(access: access, cache: cache).description
    }
}

/// A nested (second-level) page table: guest-physical to host-physical, in
/// EPT or RVI entries, with 4 KiB and 2 MiB leaves, accessed/dirty tracking
/// by the hardware stand-in or by FreeBSD's emulation, a TLB generation, and
/// illumos's dirty-harvest operations.
///
/// It keeps the mappings (``mappings``) beside the ``PageTable`` of leaves:
/// a leaf exists only inside a mapping, with the mapping's protection. A
/// mapping may be populated eagerly (``map(_:length:to:access:cache:populate:)``,
/// bhyve's wired maps) or lazily, leaf by leaf, by the nested-fault path
/// (``handleFault(_:_:)``, illumos's `vmspace_lookup_map`).
///
/// Every change that can make a cached translation wrong — unmap, a
/// protection reduction, a superpage demotion, clearing A or D — bumps
/// ``generation``; clients (``NestedTLBClient``) compare it on entry and flush.
///
/// The owner serialises calls, with one exception: ``concurrentAccess(_:_:)``
/// (the vCPUs' walk, A/D updates and the 4 KiB leaf install) may run on
/// several threads at once while the owner keeps everything else out (a
/// readers-writer lock: accesses shared, the rest exclusive). Every leaf
/// change that can race with it — the install, A/D set by the processor
/// stand-in or by the emulation — is an atomic compare-and-swap of the entry
/// read, so two vCPUs faulting one page install one leaf and lose no A or D.
public final class NestedPageTable<Format: NestedPTEFormat, Frames: TableFrameAllocator> {
    /// The leaves. Read them freely; change them only through this type, or
    /// the mappings and the generation no longer describe them.
    public let table: PageTable<Format, Frames>
    /// Mappings in ascending, non-overlapping order.
    public private(set) var mappings: [NestedMapping] = []
    /// Bumped on every invalidation.
    public internal(set) var generation: UInt64 = 0
    /// 2 MiB leaves split into 4 KiB ones so far.
    public internal(set) var demotions: UInt64 = 0

    /// Whether 2 MiB leaves are used (the default). Without them every leaf
    /// is 4 KiB, so D is kept per 4 KiB page — what a VMM wants while it
    /// logs dirty pages (KVM splits huge pages of a dirty-logged memslot).
    public let superpages: Bool

    /// The 2 MiB regions that may hold a dirty leaf (a PML-like log): a
    /// harvest reads only their leaf tables.
    public let dirtyRegions: NestedDirtyRegionLog

    /// 4 KiB leaves installed by ``concurrentAccess(_:_:)`` not yet counted
    /// in ``PageTable/leafCount(_:)`` (the table's counters belong to the
    /// owner; every exclusive call folds these in first).
    let concurrentInstalls = Atomic<UInt64>(0)

    /// `addressLimit` bounds the dirty-region log (guest-physical `[0,
    /// addressLimit)`, at most 2^48; a mapping may still go higher, its
    /// region then simply goes unlogged and is read on every harvest).
    public init(frames: Frames, superpages: Bool = true,
                addressLimit: UInt64 = 1 << PageTableGeometry.addressBits) throws(NestedPageTableError) {
        do { table = try PageTable(frames: frames) } catch { throw .table(error) }
        self.superpages = superpages
        dirtyRegions = NestedDirtyRegionLog(limit: addressLimit)
    }

    /// Leaf sizes used: 4 KiB, and 2 MiB where alignment and protection allow.
    public static var largestPage: PageSize { .size2M }

    /// The largest leaf this table writes: ``largestPage``, or 4 KiB without ``superpages``.
    public var largestLeaf: PageSize { superpages ? Self.largestPage : .size4K }

    /// Every exclusive entry point runs through here: concurrent installs
    /// are folded into the table's leaf count first.
    @inline(__always) @discardableResult
    func wrap<R>(_ body: () throws(PageTableError) -> R) throws(NestedPageTableError) -> R {
        settleConcurrentInstalls()
        do { return try body() } catch { throw .table(error) }
    }

    /// Folds the leaves ``concurrentAccess(_:_:)`` installed into the table's count.
    @inline(__always)
    func settleConcurrentInstalls() {
        guard concurrentInstalls.load(ordering: .relaxed) != 0 else { return }
        let n = concurrentInstalls.exchange(0, ordering: .acquiringAndReleasing)
        table.countLeaf(.size4K, Int64(n))
    }

    /// Bumps the generation (an invalidation every client must see).
    func invalidate() { generation &+= 1 }

    // MARK: Mappings

    /// The mapping containing `gpa`, if any.
    public func mapping(containing gpa: UInt64) -> NestedMapping? {
        var lo = 0, hi = mappings.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if mappings[mid].last < gpa { lo = mid + 1 } else { hi = mid }
        }
        guard lo < mappings.count, mappings[lo].gpa <= gpa else { return nil }
        return mappings[lo]
    }

    /// Maps `[gpa, gpa + length)` to `[hostAddress, + length)` with `access`.
    /// With `populate` the leaves are written now (2 MiB wherever a
    /// 2 MiB-aligned run of the guest range lines up with a 2 MiB-aligned host
    /// run), otherwise the nested-fault path fills them on first touch.
    ///
    /// Refuses misalignment, a zero or non-4K length, wrap-around, addresses
    /// at or above 2^48 (guest) or 2^52 (host), rights or a cache type the
    /// format cannot encode, and overlap with a mapping.
    public func map(_ gpa: UInt64, length: UInt64, to hostAddress: UInt64, access: PageAttributes.Access,
                    cache: PageAttributes.CacheType = .writeBack, populate: Bool = true) throws(NestedPageTableError) {
        let last = try wrap { () throws(PageTableError) in try table.checkRange(gpa, length) }
        let record = NestedMapping(gpa: gpa, length: length, hostAddress: hostAddress, access: access, cache: cache)
        try wrap { () throws(PageTableError) in
            guard hostAddress & 0xFFF == 0 else { throw .misalignedPhysicalAddress(hostAddress, size: .size4K) }
            let (hostLast, o) = hostAddress.addingReportingOverflow(length - 1)
            guard !o else { throw .rangeOverflow(address: hostAddress, length: length) }
            _ = try Format.leafEntry(hostAddress, size: .size4K, attributes: record.attributes)
            _ = try Format.leafEntry(hostLast & ~0xFFF, size: .size4K, attributes: record.attributes)
        }
        if let other = mappings.first(where: { $0.gpa <= last && gpa <= $0.last }) {
            throw .overlapsMapping(gpa: gpa, length: length, existing: other.gpa)
        }
        if populate {
            _ = try wrap { () throws(PageTableError) in
                try table.mapRange(gpa, to: hostAddress, length: length, attributes: record.attributes,
                                   largestPage: largestLeaf)
            }
        }
        let i = mappings.firstIndex(where: { $0.gpa > gpa }) ?? mappings.count
        mappings.insert(record, at: i)
    }

    /// Applies `change` to the part of every mapping inside `[gpa, last]`
    /// (nil removes it), splitting mappings at the range's edges.
    func carve(_ gpa: UInt64, _ last: UInt64, _ change: (NestedMapping) -> NestedMapping?) {
        var out: [NestedMapping] = []
        out.reserveCapacity(mappings.count + 2)
        for m in mappings {
            guard m.gpa <= last && gpa <= m.last else { out.append(m); continue }
            if m.gpa < gpa {
                out.append(NestedMapping(gpa: m.gpa, length: gpa - m.gpa, hostAddress: m.hostAddress,
                                         access: m.access, cache: m.cache))
            }
            let lo = max(m.gpa, gpa), hi = min(m.last, last)
            let middle = NestedMapping(gpa: lo, length: hi - lo + 1, hostAddress: m.hostAddress + (lo - m.gpa),
                                       access: m.access, cache: m.cache)
            if let changed = change(middle) { out.append(changed) }
            if m.last > last {
                out.append(NestedMapping(gpa: last + 1, length: m.last - last, hostAddress: m.hostAddress + (last + 1 - m.gpa),
                                         access: m.access, cache: m.cache))
            }
        }
        mappings = out
    }

    /// Removes every translation and mapping in `[gpa, gpa + length)`; a
    /// superpage partly inside is demoted first (the rest keeps its
    /// translations). Bumps the generation if anything was mapped there.
    /// Returns the bytes of leaves removed.
    @discardableResult
    public func unmap(_ gpa: UInt64, length: UInt64) throws(NestedPageTableError) -> UInt64 {
        let last = try wrap { () throws(PageTableError) in try table.checkRange(gpa, length) }
        var demoted: UInt64 = 0
        let removed = try wrap { () throws(PageTableError) in
            try table.forEachLeafCountingDemotions(from: gpa, through: last, demotions: &demoted) {
                (entry, _, size) throws(PageTableError) -> UInt64 in
                entry = 0
                table.countLeaf(size, -1)
                return size.bytes
            }
        }
        demotions &+= demoted
        let hadMapping = mappings.contains { $0.gpa <= last && gpa <= $0.last }
        carve(gpa, last) { _ in nil }
        if removed != 0 || demoted != 0 || hadMapping { invalidate() }
        return removed
    }

    /// Sets the rights of every mapping and leaf in `[gpa, gpa + length)`,
    /// keeping A, D and the cache type; a superpage partly inside is demoted
    /// first. Bumps the generation when a leaf loses a right or is demoted
    /// (adding rights needs no flush: a stale entry only faults). Returns the
    /// bytes of leaves visited.
    @discardableResult
    public func protect(_ gpa: UInt64, length: UInt64, access: PageAttributes.Access) throws(NestedPageTableError) -> UInt64 {
        let last = try wrap { () throws(PageTableError) in try table.checkRange(gpa, length) }
        // Refuse rights the format cannot express before changing anything.
        for m in mappings where m.gpa <= last && gpa <= m.last {
            var a = m.attributes
            a.access = access
            _ = try wrap { () throws(PageTableError) in try Format.leafEntry(0, size: .size4K, attributes: a) }
        }
        var demoted: UInt64 = 0
        var reduced = false
        let visited = try wrap { () throws(PageTableError) in
            try table.forEachLeafCountingDemotions(from: gpa, through: last, demotions: &demoted) {
                (entry, _, size) throws(PageTableError) -> UInt64 in
                var a = Format.attributes(entry, size: size)
                if !access.isSuperset(of: a.access) { reduced = true }
                if a.access != access {
                    a.access = access
                    entry = try Format.leafEntry(Format.leafAddress(entry, size: size), size: size, attributes: a)
                }
                return size.bytes
            }
        }
        demotions &+= demoted
        carve(gpa, last) { m in
            NestedMapping(gpa: m.gpa, length: m.length, hostAddress: m.hostAddress, access: access, cache: m.cache)
        }
        if reduced || demoted != 0 { invalidate() }
        return visited
    }

    // MARK: Lookup

    /// The translation of `gpa` (nil when no leaf maps it yet).
    public func lookup(_ gpa: UInt64) throws(NestedPageTableError) -> Translation? {
        try wrap { () throws(PageTableError) in try table.lookup(gpa) }
    }

    /// The A and D bits of the leaf mapping `gpa`, nil when no leaf maps it.
    public func accessedDirty(_ gpa: UInt64) throws(NestedPageTableError) -> (accessed: Bool, dirty: Bool)? {
        guard let t = try lookup(gpa) else { return nil }
        return (t.attributes.accessed, t.attributes.dirty)
    }

    /// The slot of the leaf mapping `gpa` and its size (no checks: `gpa` is
    /// below 2^48).
    func leafSlot(_ gpa: UInt64) -> (slot: UnsafeMutablePointer<UInt64>, size: PageSize)? {
        var t = table.table(table.root)
        var level = 4
        while true {
            let p = t + PageTableGeometry.index(gpa, level: level)
            let e = p.pointee
            guard Format.isPresent(e) else { return nil }
            if level == 1 || (level <= 3 && Format.isLargePage(e)) {
                return (p, PageSize(rawValue: level) ?? .size4K)
            }
            t = table.table(Format.tableAddress(e))
            level -= 1
        }
    }

    /// The bytes covered by the first absent entry on the walk to `gpa`
    /// (4 KiB when a leaf maps it).
    func absentSpan(_ gpa: UInt64) -> UInt64 {
        var t = table.table(table.root)
        var level = 4
        while true {
            let e = (t + PageTableGeometry.index(gpa, level: level)).pointee
            let span = UInt64(1) << (12 + 9 * UInt64(level - 1))
            guard Format.isPresent(e) else { return span }
            if level == 1 || (level <= 3 && Format.isLargePage(e)) { return 0x1000 }
            t = table.table(Format.tableAddress(e))
            level -= 1
        }
    }

    /// Installs `desired` if the slot still holds `expected`, as one atomic
    /// compare-and-swap (the nested-fault install and every A/D update: a
    /// concurrent vCPU may be changing the same entry).
    @inline(__always)
    func compareExchange(_ slot: UnsafeMutablePointer<UInt64>, expected: UInt64, desired: UInt64) -> Bool {
        Self.atomic(slot).pointee.compareExchange(expected: expected, desired: desired,
                                                  ordering: .acquiringAndReleasing).exchanged
    }

    /// The entry in `slot`, read atomically (it may be changing under a CAS).
    @inline(__always)
    func load(_ slot: UnsafeMutablePointer<UInt64>) -> UInt64 {
        Self.atomic(slot).pointee.load(ordering: .acquiring)
    }

    /// A table entry seen as an atomic word (a table is plain memory; the
    /// entry is naturally aligned).
    @inline(__always)
    static func atomic(_ slot: UnsafeMutablePointer<UInt64>) -> UnsafeMutablePointer<Atomic<UInt64>> {
        UnsafeMutableRawPointer(slot).assumingMemoryBound(to: Atomic<UInt64>.self)
    }
}

extension PageTable {
    /// ``forEachLeaf(from:through:_:)`` summing what `body` returns and
    /// counting the 2 MiB leaves demoted on the way (those that left the
    /// table without `body` clearing them).
    func forEachLeafCountingDemotions(from address: UInt64, through last: UInt64, demotions: inout UInt64,
                                      _ body: (_ entry: inout UInt64, _ base: UInt64, _ size: PageSize) throws(PageTableError) -> UInt64)
        throws(PageTableError) -> UInt64 {
        var total: UInt64 = 0
        var removed2M: UInt64 = 0
        let before2M = leafCount(.size2M)
        defer { demotions &+= before2M &- leafCount(.size2M) &- removed2M }
        try forEachLeaf(from: address, through: last) { (entry, base, size) throws(PageTableError) in
            total += try body(&entry, base, size)
            if size == .size2M && entry == 0 { removed2M += 1 }
        }
        return total
    }
}
