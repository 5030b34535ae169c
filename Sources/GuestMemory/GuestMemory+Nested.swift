import PageTables

/// The nested page table a guest is created with: its entry format and how
/// accessed/dirty bits are kept (§7's `vm ad=... format=...` line).
public struct NestedTableMode: Hashable, Sendable, CustomStringConvertible {
    /// EPT (Intel) or RVI/NPT (AMD) entries.
    public enum Format: String, Hashable, Sendable { case ept, rvi }
    /// A/D set by the hardware stand-in, or FreeBSD's emulation.
    public enum AccessedDirty: String, Hashable, Sendable { case hardware, emulated }

    public var format: Format
    public var accessedDirty: AccessedDirty

    public init(format: Format = .ept, accessedDirty: AccessedDirty = .hardware) {
        self.format = format
        self.accessedDirty = accessedDirty
    }

    /// How the table really keeps A/D: FreeBSD emulates A/D for EPT only
    /// (AMD's nested paging always has A/D bits), so `rvi` with `emulated`
    /// runs hardware A/D.
    public var effectiveAccessedDirty: AccessedDirty { format == .rvi ? .hardware : accessedDirty }

    public var description: String { "\(format.rawValue), ad=\(accessedDirty.rawValue)" }
}

/// The table frames of a guest's nested page table: plain host memory
/// (`HostTableAllocator`), one `MAP_NORESERVE` reservation sized for the
/// guest space with 4 KiB leaves, so the host commits a frame only when a
/// table is written.
public final class GuestTableFrames: TableFrameAllocator {
    let host: HostTableAllocator

    /// Frames for a table of 4 KiB leaves over `[0, limit)`: one leaf table
    /// a 2 MiB, one directory a 1 GiB, one PDPT a 512 GiB, the root, slack.
    init(limit: UInt64) throws(PageTableError) {
        func count(_ span: UInt64) -> UInt64 { (limit + span - 1) / span }
        let frames = count(1 << 21) + count(1 << 30) + count(1 << 39) + 8
        host = try HostTableAllocator(frameLimit: Int(min(frames, 1 << 28)))
    }

    /// Table frames in use.
    public var framesInUse: Int { host.framesInUse }

    public func allocateTableFrame() throws(PageTableError) -> UInt64 { try host.allocateTableFrame() }
    public func freeTableFrame(_ physicalAddress: UInt64) { host.freeTableFrame(physicalAddress) }
    public func entries(ofTableAt physicalAddress: UInt64) -> UnsafeMutablePointer<UInt64> {
        host.entries(ofTableAt: physicalAddress)
    }
}

/// What GuestMemory needs of a `NestedPageTable`, whatever its format.
protocol NestedTableBox: AnyObject {
    var generation: UInt64 { get }
    var mappings: [NestedMapping] { get }
    func map(_ gpa: UInt64, length: UInt64, to hostAddress: UInt64, access: PageAttributes.Access,
             cache: PageAttributes.CacheType, populate: Bool) throws(NestedPageTableError)
    func unmap(_ gpa: UInt64, length: UInt64) throws(NestedPageTableError) -> UInt64
    func guestAccess(_ gpa: UInt64, _ access: MemoryAccess) throws(NestedPageTableError) -> NestedAccessOutcome
    func dirtyOperation(_ operation: NestedDirtyOperation, _ gpa: UInt64, length: UInt64) throws(NestedPageTableError) -> [UInt64]
    func lookup(_ gpa: UInt64) throws(NestedPageTableError) -> PageTables.Translation?
    func scanDirty(_ gpa: UInt64, length: UInt64, clear: Bool, _ report: (UInt64) -> Void) throws(NestedPageTableError)
    func concurrentAccess(_ gpa: UInt64, _ access: MemoryAccess) -> NestedAccessOutcome?
}

extension NestedPageTable: NestedTableBox {}

/// The nested table with its lock (the table has a single owner; vCPU
/// stand-ins and harvests share the guest's map lock, so they serialise here).
final class GuestNestedTable: @unchecked Sendable {
    let mode: NestedTableMode
    let frames: GuestTableFrames
    let table: NestedTableBox
    /// Taken alone (a `pthread` lock the thread sanitizer understands).
    let lock = RWLock()

    init(limit: UInt64, mode: NestedTableMode) throws(GuestMemoryError) {
        self.mode = mode
        do {
            frames = try GuestTableFrames(limit: limit)
            switch (mode.format, mode.effectiveAccessedDirty) {
            case (.ept, .hardware): table = try NestedPageTable<EPTFormat, GuestTableFrames>(frames: frames, superpages: false,
                                                                                            addressLimit: limit)
            case (.ept, .emulated): table = try NestedPageTable<EPTEmulatedADFormat, GuestTableFrames>(frames: frames, superpages: false,
                                                                                                    addressLimit: limit)
            case (.rvi, _): table = try NestedPageTable<RVIFormat, GuestTableFrames>(frames: frames, superpages: false,
                                                                                   addressLimit: limit)
            }
        } catch let e as PageTableError {
            throw .nestedTable("\(e)")
        } catch {
            throw .nestedTable("\(error)")
        }
    }

    /// The rights a nested leaf of a mapping with `protection` carries: the
    /// mapping's, plus read — every format here needs read in a present leaf
    /// (EPT: write without read is a misconfiguration; A/D emulation keeps
    /// "valid" = readable; an x86 entry is readable once present).
    static func access(_ protection: GuestProtection) -> PageAttributes.Access {
        PageAttributes.Access(rawValue: protection.rawValue).union(.read)
    }

    /// What a guest access of `access` to a mapping with `protection` may do
    /// (§7): with EPT exactly the mapping's rights; with RVI the page is
    /// always readable.
    func allows(_ protection: GuestProtection, _ access: GuestProtection) -> Bool {
        switch mode.format {
        case .ept: return protection.contains(access)
        case .rvi: return protection.union(.read).contains(access)
        }
    }

    /// A vCPU's access on the table's concurrent path (several at once,
    /// under the lock shared; nil when it needs the exclusive path).
    @inline(__always)
    func concurrentAccess(_ gpa: UInt64, _ access: MemoryAccess) -> NestedAccessOutcome? {
        lock.lockShared()
        defer { lock.unlock() }
        return table.concurrentAccess(gpa, access)
    }

    /// Runs `body` with the table, under its lock, turning its errors into ours.
    func with<R>(_ body: (NestedTableBox) throws(NestedPageTableError) -> R) throws(GuestMemoryError) -> R {
        try lock.writing { () throws(GuestMemoryError) -> R in
            do { return try body(table) } catch { throw .nestedTable("\(error)") }
        }
    }

    /// The guest pages (addresses) of `[gpa, gpa + length)` whose D bit is
    /// set; clears them too when `clear`. Under `lock`.
    func dirtyPages(_ gpa: UInt64, _ length: UInt64, clear: Bool) throws(NestedPageTableError) -> [UInt64] {
        var out: [UInt64] = []
        try table.scanDirty(gpa, length: length, clear: clear) { out.append($0) }
        return out
    }
}

extension GuestMemory {
    /// The nested table's format and A/D mode.
    public var nestedMode: NestedTableMode { nested.mode }

    /// The nested table's generation (bumped on every invalidation).
    public var nestedGeneration: UInt64 { (try? nested.with { $0.generation }) ?? 0 }

    /// The nested table's mappings (kept in step with ``GuestMemory/mappings``).
    public var nestedMappings: [NestedMapping] { (try? nested.with { $0.mappings }) ?? [] }

    /// The nested table's translation of `gpa` to a host address, nil when
    /// no leaf maps it yet (leaves are installed on a guest's first touch).
    public func nestedTranslation(_ gpa: UInt64) throws(GuestMemoryError) -> UInt64? {
        try lock.reading { () throws(GuestMemoryError) -> UInt64? in
            guard !isDestroyedFlag else { throw .destroyed }
            guard gpa < limit else { return nil }
            return try nested.with { t throws(NestedPageTableError) -> UInt64? in
                guard let tr = try t.lookup(gpa) else { return nil }
                return tr.physicalAddress
            }
        }
    }

    /// A guest access of one byte at `gpa` through the nested table — the
    /// hardware stand-in for a vCPU: the walk, and on a nested fault the
    /// VMM's fault path (`NestedPageTable.handleFault(_:_:)`: lazy leaf
    /// install, and in A/D emulation mode A/D set and the right granted),
    /// then the walk again. A write sets D. `access` is `.read`, `.write`
    /// or `.execute` alone. Returns the host address reached; an access no
    /// mapping allows (an EPT violation / NPT fault the VMM would turn into
    /// an MMIO exit) is ``GuestMemoryError/unmapped(gpa:)`` or
    /// ``GuestMemoryError/protectionDenied(gpa:requested:mapped:)``.
    @discardableResult
    public func touch(_ gpa: UInt64, _ access: GuestProtection) throws(GuestMemoryError) -> UInt64 {
        let memoryAccess: MemoryAccess
        switch access {
        case .read: memoryAccess = .read
        case .write: memoryAccess = .write
        case .execute: memoryAccess = .execute
        default: throw .invalidProtection(rawValue: access.rawValue)
        }
        return try lock.reading { () throws(GuestMemoryError) -> UInt64 in
            guard !isDestroyedFlag else { throw .destroyed }
            guard let e = entry(containing: gpa) else { throw .unmapped(gpa: gpa) }
            // EPT cannot encode write-only: the leaf carries R too, so the
            // mapping's exact rights are checked here, as the VMM's fault
            // path would on the violation.
            guard nested.allows(e.info.protection, access) else {
                throw .protectionDenied(gpa: gpa, requested: access, mapped: e.info.protection)
            }
            // vCPUs touch concurrently (the table's CAS path, its lock
            // shared); only a missing table takes it alone.
            var outcome = nested.concurrentAccess(gpa, memoryAccess)
            if outcome == nil {
                outcome = try nested.with { t throws(NestedPageTableError) in try t.guestAccess(gpa, memoryAccess) }
            }
            guard case let .ok(host, _)? = outcome else {
                throw .protectionDenied(gpa: gpa, requested: access, mapped: e.info.protection)
            }
            return host
        }
    }

    /// ``touch(_:_:)`` for a read or a write.
    @discardableResult
    public func touch(_ gpa: UInt64, write: Bool) throws(GuestMemoryError) -> UInt64 {
        try touch(gpa, write ? .write : .read)
    }

    /// Puts the nested table's D bits of `entry` into its segment's bitmap
    /// and removes the entry's range from the table, so no guest write is
    /// lost when its mapping goes. Under the write lock.
    func nestedRemove(_ entry: MappingEntry) throws(GuestMemoryError) {
        try nested.with { t throws(NestedPageTableError) in
            for a in try nested.dirtyPages(entry.gpa, entry.info.length, clear: true) {
                entry.markDirty(a, 1)
            }
            _ = try t.unmap(entry.gpa, length: entry.info.length)
        }
    }

    /// Adds a mapping to the nested table (leaves come on first touch).
    /// Under the write lock.
    func nestedAdd(_ info: GuestMapping) throws(GuestMemoryError) {
        try nested.with { t throws(NestedPageTableError) in
            try t.map(info.gpa, length: info.length, to: info.hostAddress, access: GuestNestedTable.access(info.protection),
                      cache: .writeBack, populate: false)
        }
    }
}
