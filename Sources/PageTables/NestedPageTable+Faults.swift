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
    /// hardware A/D mode, A is set (and D on a write); otherwise it is a fault
    /// and nothing changes. (In A/D emulation mode the processor sets nothing.)
    public func touch(_ gpa: UInt64, _ access: MemoryAccess) throws(NestedPageTableError) -> NestedAccessOutcome {
        try wrap { () throws(PageTableError) in try Format.checkAddress(gpa) }
        guard let (slot, size) = leafSlot(gpa), Format.permits(slot.pointee, access) else {
            return .fault(gpa: gpa, access: access)
        }
        if !Format.emulatesAccessedDirty {
            var e = slot.pointee
            while true {
                let want = e | Format.accessedBit | (access == .write ? Format.dirtyBit : 0)
                if want == e || compareExchange(slot, expected: e, desired: want) { break }
                e = slot.pointee
            }
        }
        return .ok(hostAddress: Format.leafAddress(slot.pointee, size: size) | gpa & size.offsetMask, size: size)
    }

    /// The nested-fault path (illumos `vmspace_lookup_map`, FreeBSD
    /// `pmap_emulate_accessed_dirty`): find the mapping holding `gpa` and
    /// check its protection; with no leaf, install one (2 MiB when the aligned
    /// 2 MiB run lies in that one mapping and lines up with the host, else
    /// 4 KiB) by compare-and-swap; with an emulated leaf, set A (D on a
    /// write) and grant the rights. Never changes anything for a refused access.
    public func handleFault(_ gpa: UInt64, _ access: MemoryAccess) throws(NestedPageTableError) -> NestedFaultResolution {
        try wrap { () throws(PageTableError) in try Format.checkAddress(gpa) }
        guard let m = mapping(containing: gpa) else { return .unmapped }
        guard m.access.contains(access.right) else { return .protection(allowed: m.access) }
        let emulated = Format.emulatesAccessedDirty
        guard let (slot, size) = leafSlot(gpa) else {
            // The install is this access in emulation mode: A (and D) now.
            var a = m.attributes
            if emulated {
                a.accessed = true
                a.dirty = access == .write
            }
            let base2M = gpa & ~PageSize.size2M.offsetMask
            let host2M = m.hostAddress &+ (base2M &- m.gpa)
            if superpages, base2M >= m.gpa, base2M + PageSize.size2M.offsetMask <= m.last,
               host2M & PageSize.size2M.offsetMask == 0 {
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
        var e = slot.pointee
        while true {
            if Format.permits(e, access) { return .spurious }
            var a = Format.attributes(e, size: size)
            a.access = m.access
            a.accessed = true
            if access == .write { a.dirty = true }
            let desired = try wrap { () throws(PageTableError) in
                try Format.leafEntry(Format.leafAddress(e, size: size), size: size, attributes: a)
            }
            if compareExchange(slot, expected: e, desired: desired) { break }
            e = slot.pointee
        }
        return .accessedDirtyEmulated
    }

    /// A guest access as the VMM sees it: touch, and on a fault run the
    /// nested-fault handler and retry; `.fault` is left only for an access
    /// no mapping allows (an exit to the VMM).
    public func guestAccess(_ gpa: UInt64, _ access: MemoryAccess) throws(NestedPageTableError) -> NestedAccessOutcome {
        for _ in 0..<3 {
            let outcome = try touch(gpa, access)
            if case .ok = outcome { return outcome }
            guard try handleFault(gpa, access).isResolved else { return outcome }
        }
        return try touch(gpa, access)
    }
}
