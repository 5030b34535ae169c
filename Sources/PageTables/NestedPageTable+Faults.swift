/// What the processor's nested walk did with one guest access.
public enum NestedAccessOutcome: Hashable, Sendable {
    /// Let through to `hostAddress`; A (and D on a write) are set in hardware
    /// mode. `size` is the leaf's page size.
    case ok(hostAddress: UInt64, size: PageSize)
    /// An EPT violation / NPT fault: no leaf, or the leaf's hardware rights
    /// refuse the access.
    case fault(gpa: UInt64, access: MemoryAccess)
}

/// How the nested-fault handler resolved a fault
/// (``NestedPageTable/handleFault(_:_:)``).
public enum NestedFaultResolution: Hashable, Sendable {
    /// A leaf of `size` was installed from the mapping (lazy population).
    case installed(PageSize)
    /// A/D emulation: A (and D) set and the hardware rights granted.
    case accessedDirtyEmulated
    /// The leaf already allows the access (another walker got there first).
    case spurious
    /// No mapping covers the address: an MMIO exit for the VMM.
    case unmapped
    /// The mapping does not allow the access; `allowed` is what it allows.
    case protection(allowed: PageAttributes.Access)

    /// Whether retrying the access can succeed.
    public var isResolved: Bool {
        switch self {
        case .installed, .accessedDirtyEmulated, .spurious: return true
        case .unmapped, .protection: return false
        }
    }
}

extension MemoryAccess {
    var right: PageAttributes.Access {
        switch self {
        case .read: return .read
        case .write: return .write
        case .execute: return .execute
        }
    }
}

extension NestedPageTable {
    /// The hardware stand-in: walks the table for one guest access to `gpa`.
    /// If the leaf's hardware rights allow it the access goes through and, in
    /// hardware A/D mode, A is set (and D on a write) by compare-and-swap;
    /// otherwise it is a fault and nothing changes. (In A/D emulation mode
    /// the processor sets nothing.)
    public func touch(_ gpa: UInt64, _ access: MemoryAccess) throws(NestedPageTableError) -> NestedAccessOutcome {
        try wrap { () throws(PageTableError) in try Format.checkAddress(gpa) }
        guard let (slot, size) = leafSlot(gpa) else { return .fault(gpa: gpa, access: access) }
        var e = load(slot)
        while true {
            guard Format.permits(e, access) else { return .fault(gpa: gpa, access: access) }
            if Format.emulatesAccessedDirty || setAccessedDirty(slot, &e, gpa, access) { break }
        }
        return .ok(hostAddress: Format.leafAddress(e, size: size) | gpa & size.offsetMask, size: size)
    }

    /// The processor's A/D update of the leaf `e` read from `slot`: sets A
    /// (and D on a write, marking the region in ``dirtyRegions`` first) by
    /// compare-and-swap. False, with `e` reloaded, when the entry changed
    /// under it (the caller checks the rights again and retries).
    @inline(__always)
    func setAccessedDirty(_ slot: UnsafeMutablePointer<UInt64>, _ e: inout UInt64, _ gpa: UInt64,
                          _ access: MemoryAccess) -> Bool {
        let want = e | Format.accessedBit | (access == .write ? Format.dirtyBit : 0)
        if want == e { return true }
        if want & Format.dirtyBit != e & Format.dirtyBit { dirtyRegions.mark(gpa) }
        if compareExchange(slot, expected: e, desired: want) { e = want; return true }
        e = load(slot)
        return false
    }

    /// The nested-fault path (illumos `vmspace_lookup_map`, FreeBSD
    /// `pmap_emulate_accessed_dirty`): find the mapping holding `gpa` and
    /// check its protection; with no leaf, install one (2 MiB when the aligned
    /// 2 MiB run lies in that one mapping and lines up with the host, else
    /// 4 KiB) by compare-and-swap of the empty entry; with an emulated leaf,
    /// set A (D on a write) and grant the rights by compare-and-swap. Never
    /// changes anything for a refused access.
    public func handleFault(_ gpa: UInt64, _ access: MemoryAccess) throws(NestedPageTableError) -> NestedFaultResolution {
        try wrap { () throws(PageTableError) in try Format.checkAddress(gpa) }
        guard let m = mapping(containing: gpa) else { return .unmapped }
        guard m.access.contains(access.right) else { return .protection(allowed: m.access) }
        let base2M = gpa & ~PageSize.size2M.offsetMask
        let fits2M = superpages && base2M >= m.gpa && base2M + PageSize.size2M.offsetMask <= m.last
        if let slot = leafTableSlot(gpa), !(fits2M && !Format.isPresent(load(slot))) {
            // The leaf table exists: the install and the emulation are one CAS each.
            return try wrap { () throws(PageTableError) in
                try resolve(slot, gpa, access, m) ?? .spurious
            }
        }
        guard let (slot, size) = leafSlot(gpa) else {
            // Tables must be made (or a superpage written): the owner's path.
            var a = m.attributes
            if Format.emulatesAccessedDirty {
                a.accessed = true
                a.dirty = access == .write
            }
            if a.dirty { dirtyRegions.mark(gpa) }
            let host2M = m.hostAddress &+ (base2M &- m.gpa)
            if fits2M, host2M & PageSize.size2M.offsetMask == 0 {
                do {
                    try table.map(base2M, to: host2M, size: .size2M, attributes: a)
                    return .installed(.size2M)
                } catch {
                    // 4K leaves already live in that 2M run: fall back.
                }
            }
            let base = gpa & ~0xFFF
            try wrap { () throws(PageTableError) in
                try table.map(base, to: m.hostAddress + (base - m.gpa), size: .size4K, attributes: a)
            }
            return .installed(.size4K)
        }
        // A superpage leaf.
        var e = load(slot)
        while true {
            if Format.permits(e, access) { return .spurious }
            let desired = try wrap { () throws(PageTableError) in try emulated(e, size, access, m) }
            if desired & Format.dirtyBit != 0 { dirtyRegions.mark(gpa) }
            if compareExchange(slot, expected: e, desired: desired) { break }
            e = load(slot)
        }
        return .accessedDirtyEmulated
    }

    /// Leaf `e` of `size` after an emulated access: the mapping's rights, A,
    /// and D on a write.
    @inline(__always)
    func emulated(_ e: UInt64, _ size: PageSize, _ access: MemoryAccess, _ m: NestedMapping) throws(PageTableError) -> UInt64 {
        var a = Format.attributes(e, size: size)
        a.access = m.access
        a.accessed = true
        if access == .write { a.dirty = true }
        return try Format.leafEntry(Format.leafAddress(e, size: size), size: size, attributes: a)
    }

    /// The 4 KiB slot of `gpa` in its leaf table, nil when a table on the
    /// way is missing or a superpage maps it. The walk reads only directory
    /// entries, which change under the owner's exclusive hold alone.
    @inline(__always)
    func leafTableSlot(_ gpa: UInt64) -> UnsafeMutablePointer<UInt64>? {
        var t = table.table(table.root)
        var level = 4
        while level > 1 {
            let e = t[PageTableGeometry.index(gpa, level: level)]
            guard Format.isPresent(e), !(level <= 3 && Format.isLargePage(e)) else { return nil }
            t = table.table(Format.tableAddress(e))
            level -= 1
        }
        return t + PageTableGeometry.index(gpa, level: 1)
    }

    /// Resolves a fault on the 4 KiB `slot` of `gpa` inside mapping `m`
    /// (whose rights allow `access`) by compare-and-swap: installs the leaf
    /// if the entry is empty (with A, and D on a write, in emulation mode),
    /// or emulates A/D on a present leaf. Nil when the leaf already allows
    /// the access (another vCPU resolved it).
    @inline(__always)
    func resolve(_ slot: UnsafeMutablePointer<UInt64>, _ gpa: UInt64, _ access: MemoryAccess,
                 _ m: NestedMapping) throws(PageTableError) -> NestedFaultResolution? {
        var e = load(slot)
        while true {
            if Format.permits(e, access) { return nil }
            let desired: UInt64
            let installing = !Format.isPresent(e)
            if installing {
                var a = m.attributes
                if Format.emulatesAccessedDirty {
                    a.accessed = true
                    a.dirty = access == .write
                }
                let base = gpa & ~0xFFF
                desired = try Format.leafEntry(m.hostAddress &+ (base &- m.gpa), size: .size4K, attributes: a)
            } else if let quick = Format.emulatedAccess(e, access) {
                desired = quick
            } else {
                desired = try emulated(e, .size4K, access, m)
            }
            if desired & Format.dirtyBit != 0 && e & Format.dirtyBit == 0 { dirtyRegions.mark(gpa) }
            if compareExchange(slot, expected: e, desired: desired) {
                if installing { concurrentInstalls.wrappingAdd(1, ordering: .relaxed) }
                return installing ? .installed(.size4K) : .accessedDirtyEmulated
            }
            e = load(slot)
        }
    }

    /// A guest access as the VMM sees it: touch, and on a fault run the
    /// nested-fault handler and retry; `.fault` is left only for an access
    /// no mapping allows (an exit to the VMM).
    public func guestAccess(_ gpa: UInt64, _ access: MemoryAccess) throws(NestedPageTableError) -> NestedAccessOutcome {
        // The concurrent path is one walk for the common cases (it is
        // valid under the exclusive hold too); the loop below handles the rest.
        settleConcurrentInstalls()
        if let outcome = concurrentAccess(gpa, access) { return outcome }
        for _ in 0..<3 {
            let outcome = try touch(gpa, access)
            if case .ok = outcome { return outcome }
            guard try handleFault(gpa, access).isResolved else { return outcome }
        }
        return try touch(gpa, access)
    }

    /// ``guestAccess(_:_:)`` for several vCPUs at once: safe to call from
    /// any number of threads together, provided the owner runs nothing else
    /// meanwhile (it holds its lock shared for these and exclusively for the
    /// rest). The walk, A/D set by the processor stand-in, the 4 KiB leaf
    /// install and the A/D emulation are each a compare-and-swap of the
    /// entry read, retried when another vCPU changed it first: two vCPUs
    /// faulting one page install one leaf and lose no A or D bit.
    ///
    /// Nil when the access needs the owner's exclusive path
    /// (``guestAccess(_:_:)``): a table on the way is missing (one must be
    /// allocated), a superpage maps the address or could, or the address is
    /// beyond the guest-physical space.
    public func concurrentAccess(_ gpa: UInt64, _ access: MemoryAccess) -> NestedAccessOutcome? {
        guard gpa >> PageTableGeometry.addressBits == 0, let slot = leafTableSlot(gpa) else { return nil }
        var e = load(slot)
        var rounds = 0
        while rounds < 8 {
            rounds += 1
            if Format.permits(e, access) {
                if Format.emulatesAccessedDirty || setAccessedDirty(slot, &e, gpa, access) {
                    return .ok(hostAddress: Format.leafAddress(e, size: .size4K) | gpa & 0xFFF, size: .size4K)
                }
                continue
            }
            // A fault: the VMM's handler, without the exclusive hold.
            guard let m = mapping(containing: gpa), m.access.contains(access.right) else {
                return .fault(gpa: gpa, access: access)
            }
            if superpages && !Format.isPresent(e) {
                let base2M = gpa & ~PageSize.size2M.offsetMask
                if base2M >= m.gpa, base2M + PageSize.size2M.offsetMask <= m.last { return nil }
            }
            do { _ = try resolve(slot, gpa, access, m) } catch { return nil }
            e = load(slot)
        }
        return nil
    }
}
