import CGuestMemory

/// Where a guest-physical range lies on the host (bhyve `vm_map_gpa`).
public struct Translation: Hashable, Sendable {
    /// The host address of the guest-physical address asked for.
    public let hostAddress: UInt64
    /// The segment and the offset in it.
    public let segmentID: Int
    public let offset: UInt64
    /// The one mapping the range lies in.
    public let mapping: GuestMapping

    /// `hostAddress` as a pointer.
    public var pointer: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: UInt(hostAddress))! }
}

extension GuestMemory {
    // MARK: Translation

    /// Translates `[gpa, gpa + length)` when it lies inside one mapping whose
    /// protection includes `protection`; otherwise throws, naming why.
    public func translation(_ gpa: UInt64, _ length: UInt64,
                            _ protection: GuestProtection) throws(GuestMemoryError) -> Translation {
        guard protection.isValid else { throw .invalidProtection(rawValue: protection.rawValue) }
        guard length > 0 else { throw .zeroLength(gpa: gpa) }
        let (end, o) = gpa.addingReportingOverflow(length)
        guard !o else { throw .rangeWraps(gpa: gpa, length: length) }
        return try lock.reading { () throws(GuestMemoryError) -> Translation in
            guard let e = entry(containing: gpa) else { throw .unmapped(gpa: gpa) }
            guard end <= e.end else {
                throw .crossesMapping(gpa: gpa, length: length, mappingGPA: e.gpa, mappingLength: e.info.length)
            }
            guard e.info.protection.isSuperset(of: protection) else {
                throw .protectionDenied(gpa: gpa, requested: protection, mapped: e.info.protection)
            }
            return Translation(hostAddress: e.info.hostAddress + (gpa - e.gpa), segmentID: e.info.segmentID,
                               offset: e.info.offset + (gpa - e.gpa), mapping: e.info)
        }
    }

    /// bhyve's `vm_map_gpa`: the host pointer of `gpa`, or nil unless
    /// `[gpa, gpa + length)` lies in one mapping with `protection`.
    /// Instruction emulation relies on nil for MMIO. The hot path: the map
    /// lock shared, one probe of the flat table, no allocation.
    public func translate(_ gpa: UInt64, _ length: UInt64, _ protection: GuestProtection) -> UnsafeMutableRawPointer? {
        let want = protection.rawValue
        guard want != 0, want & ~7 == 0, length > 0 else { return nil }
        let (end, o) = gpa.addingReportingOverflow(length)
        guard !o else { return nil }
        lock.lockShared()
        defer { lock.unlock() }
        guard let i = flatIndex(containing: gpa) else { return nil }
        let r = flat + i
        guard end <= r.pointee.end, r.pointee.protection & UInt64(want) == UInt64(want) else { return nil }
        return UnsafeMutableRawPointer(bitPattern: UInt(r.pointee.hostAddress &+ (gpa &- r.pointee.gpa)))
    }

    // MARK: Copies

    /// Walks `[gpa, gpa + length)` slice by slice across adjacent mappings,
    /// each needing `need`; `body` gets (entry, slice gpa, slice length,
    /// offset in the range). Throws at the first byte that is unmapped or
    /// lacks the rights, before `body` has run for any slice when `check` is
    /// done first. Under the lock.
    private func walk(_ gpa: UInt64, _ length: UInt64, _ need: GuestProtection,
                      _ body: ((MappingEntry, UInt64, UInt64, UInt64) -> Void)?) throws(GuestMemoryError) {
        var at = gpa
        let end = gpa + length
        while at < end {
            guard let e = entry(containing: at) else { throw .unmapped(gpa: at) }
            guard e.info.protection.isSuperset(of: need) else {
                throw .protectionDenied(gpa: at, requested: need, mapped: e.info.protection)
            }
            let n = min(end, e.end) - at
            body?(e, at, n, at - gpa)
            at += n
        }
    }

    /// Copies guest memory at `gpa` into `buffer`: every byte must be mapped
    /// readable (across adjacent mappings if need be), else nothing is copied.
    public func read(_ gpa: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(GuestMemoryError) {
        let length = UInt64(buffer.count)
        guard length > 0 else { return }
        let (_, o) = gpa.addingReportingOverflow(length)
        guard !o else { throw .rangeWraps(gpa: gpa, length: length) }
        try lock.reading { () throws(GuestMemoryError) in
            try walk(gpa, length, .read, nil)
            try walk(gpa, length, .read) { e, at, n, done in
                buffer.baseAddress!.advanced(by: Int(done))
                    .copyMemory(from: UnsafeRawPointer(bitPattern: UInt(e.info.hostAddress + (at - e.gpa)))!, byteCount: Int(n))
            }
        }
    }

    /// `count` bytes of guest memory at `gpa` (all readable, else nothing).
    public func read(_ gpa: UInt64, count: Int) throws(GuestMemoryError) -> [UInt8] {
        guard count >= 0 else { throw .negativeCount(count) }
        var out = [UInt8](repeating: 0, count: count)
        var failure: GuestMemoryError?
        out.withUnsafeMutableBytes { b in
            do throws(GuestMemoryError) { try read(gpa, into: b) } catch { failure = error }
        }
        if let failure { throw failure }
        return out
    }

    /// Copies `bytes` into guest memory at `gpa`: every byte must be mapped
    /// writable (across adjacent mappings if need be), else nothing is
    /// written. Marks the segment pages written dirty.
    public func write(_ gpa: UInt64, from bytes: UnsafeRawBufferPointer) throws(GuestMemoryError) {
        let length = UInt64(bytes.count)
        guard length > 0 else { return }
        let (_, o) = gpa.addingReportingOverflow(length)
        guard !o else { throw .rangeWraps(gpa: gpa, length: length) }
        try lock.reading { () throws(GuestMemoryError) in
            try walk(gpa, length, .write, nil)
            try walk(gpa, length, .write) { e, at, n, done in
                UnsafeMutableRawPointer(bitPattern: UInt(e.info.hostAddress + (at - e.gpa)))!
                    .copyMemory(from: bytes.baseAddress!.advanced(by: Int(done)), byteCount: Int(n))
                e.markDirty(at, n)
            }
        }
    }

    /// Writes `bytes` at `gpa` (all writable, else nothing).
    public func write(_ gpa: UInt64, _ bytes: [UInt8]) throws(GuestMemoryError) {
        var failure: GuestMemoryError?
        bytes.withUnsafeBytes { b in
            do throws(GuestMemoryError) { try write(gpa, from: b) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    // MARK: Atomics

    /// The host pointer for an atomic access of `size` bytes at `gpa` needing
    /// `need`, with its entry. Under the lock.
    private func atomicTarget(_ gpa: UInt64, _ size: Int, _ need: GuestProtection) throws(GuestMemoryError)
        -> (UnsafeMutableRawPointer, MappingEntry) {
        guard size == 1 || size == 2 || size == 4 || size == 8 else { throw .invalidAccessSize(size) }
        guard gpa % UInt64(size) == 0 else { throw .misaligned(gpa: gpa, size: size) }
        guard let e = entry(containing: gpa) else { throw .unmapped(gpa: gpa) }
        guard gpa + UInt64(size) <= e.end else {
            throw .crossesMapping(gpa: gpa, length: UInt64(size), mappingGPA: e.gpa, mappingLength: e.info.length)
        }
        guard e.info.protection.isSuperset(of: need) else {
            throw .protectionDenied(gpa: gpa, requested: need, mapped: e.info.protection)
        }
        return (UnsafeMutableRawPointer(bitPattern: UInt(e.info.hostAddress + (gpa - e.gpa)))!, e)
    }

    /// A single-copy atomic load of a naturally aligned 1, 2, 4 or 8-byte
    /// integer (never torn: virtio ring indices rely on it).
    public func load<T: FixedWidthInteger & UnsignedInteger>(_ type: T.Type, at gpa: UInt64) throws(GuestMemoryError) -> T {
        try lock.reading { () throws(GuestMemoryError) -> T in
            let (p, _) = try atomicTarget(gpa, MemoryLayout<T>.size, .read)
            switch MemoryLayout<T>.size {
            case 1: return T(truncatingIfNeeded: vgm_load8(p))
            case 2: return T(truncatingIfNeeded: vgm_load16(p))
            case 4: return T(truncatingIfNeeded: vgm_load32(p))
            default: return T(truncatingIfNeeded: vgm_load64(p))
            }
        }
    }

    /// A single-copy atomic store of a naturally aligned 1, 2, 4 or 8-byte
    /// integer; marks the page dirty.
    public func store<T: FixedWidthInteger & UnsignedInteger>(_ value: T, at gpa: UInt64) throws(GuestMemoryError) {
        try lock.reading { () throws(GuestMemoryError) in
            let (p, e) = try atomicTarget(gpa, MemoryLayout<T>.size, .write)
            switch MemoryLayout<T>.size {
            case 1: vgm_store8(p, UInt8(truncatingIfNeeded: value))
            case 2: vgm_store16(p, UInt16(truncatingIfNeeded: value))
            case 4: vgm_store32(p, UInt32(truncatingIfNeeded: value))
            default: vgm_store64(p, UInt64(truncatingIfNeeded: value))
            }
            e.markDirty(gpa, UInt64(MemoryLayout<T>.size))
        }
    }

    /// An atomic compare-exchange of a naturally aligned 1, 2, 4 or 8-byte
    /// integer (needs read and write): replaces `expected` by `desired`;
    /// returns whether it did and the value found. Marks the page dirty when
    /// it exchanged.
    public func compareExchange<T: FixedWidthInteger & UnsignedInteger>(
        at gpa: UInt64, expected: T, desired: T) throws(GuestMemoryError) -> (exchanged: Bool, original: T) {
        try lock.reading { () throws(GuestMemoryError) -> (exchanged: Bool, original: T) in
            let (p, e) = try atomicTarget(gpa, MemoryLayout<T>.size, .readWrite)
            let ok: Bool
            let found: T
            switch MemoryLayout<T>.size {
            case 1:
                var x = UInt8(truncatingIfNeeded: expected)
                ok = vgm_cas8(p, &x, UInt8(truncatingIfNeeded: desired)); found = T(truncatingIfNeeded: x)
            case 2:
                var x = UInt16(truncatingIfNeeded: expected)
                ok = vgm_cas16(p, &x, UInt16(truncatingIfNeeded: desired)); found = T(truncatingIfNeeded: x)
            case 4:
                var x = UInt32(truncatingIfNeeded: expected)
                ok = vgm_cas32(p, &x, UInt32(truncatingIfNeeded: desired)); found = T(truncatingIfNeeded: x)
            default:
                var x = UInt64(truncatingIfNeeded: expected)
                ok = vgm_cas64(p, &x, UInt64(truncatingIfNeeded: desired)); found = T(truncatingIfNeeded: x)
            }
            if ok { e.markDirty(gpa, UInt64(MemoryLayout<T>.size)) }
            return (ok, ok ? expected : found)
        }
    }
}
