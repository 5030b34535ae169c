import AddressSpace
import PageTables
import PhysicalMemory

/// The model kernel's HAT: `kas`'s translations in a software x86-64
/// 4-level page table whose table frames are pages of the model's own
/// `PhysicalMemory`, named on `kvps[KV_KVP]` (illumos's htables are kernel
/// memory too, so they count in `::memstat`'s Kernel row).
///
/// Table pages are named at offsets in the amd64 VA hole, starting at
/// ``tableIdentityBase``: no kernel virtual address can ever be there, so
/// their identities never collide with segkmem's (vnode, offset = VA) pages.
///
/// One mutex serialises the table; `as_fault` readers and allocating
/// threads all come through here.
///
/// A process address space (``ModelKernel/createProcessAddressSpace(name:)``)
/// has a HAT of this kind too, its table pages named in a range of the hole
/// of their own.
public final class KernelHAT: HAT, @unchecked Sendable {
    /// Where the identities of page-table pages start on `kvps[KV_KVP]`.
    public static let tableIdentityBase: UInt64 = 0x0000_8000_0000_0000

    let table: PageTable<X86PTEFormat, PhysicalMemoryTableAllocator>
    let frames: PhysicalMemoryTableAllocator
    private let mutex = _OwnedMutex()

    /// - Parameter tableIdentityBase: where this table's page identities
    ///   start; a process's HAT takes its own range higher in the VA hole
    ///   (``ModelKernel/createProcessAddressSpace(name:)``).
    init(memory: PhysicalMemory, tableIdentityBase: UInt64 = KernelHAT.tableIdentityBase) throws(ModelKernelError) {
        frames = PhysicalMemoryTableAllocator(memory: memory, vnode: .kvp, offsetBase: tableIdentityBase)
        do {
            table = try PageTable(frames: frames)
        } catch {
            throw .hat(.failed(address: 0, reason: "cannot allocate the top-level table: \(error)"))
        }
    }

    @inline(__always)
    private func locked<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        mutex.lock()
        defer { mutex.unlock() }
        return try body()
    }

    static func attributes(_ p: Protection) -> PageAttributes {
        var access: PageAttributes.Access = []
        if p.contains(.read) { access.insert(.read) }
        if p.contains(.write) { access.insert(.write) }
        if p.contains(.execute) { access.insert(.execute) }
        return PageAttributes(access: access, user: p.contains(.user), global: !p.contains(.user))
    }

    static func protection(_ a: PageAttributes) -> Protection {
        var p: Protection = []
        if a.access.contains(.read) { p.insert(.read) }
        if a.access.contains(.write) { p.insert(.write) }
        if a.access.contains(.execute) { p.insert(.execute) }
        if a.user { p.insert(.user) }
        return p
    }

    static func hatError(_ e: PageTableError, _ address: UInt64) -> HATError {
        if case .alreadyMapped(let a, _) = e { return .alreadyMapped(address: a) }
        return .failed(address: address, reason: e.description)
    }

    // MARK: HAT

    public func load(address: UInt64, pfn: PageFrameNumber, attributes: HATAttributes,
                     flags: HATLoadFlags) throws(HATError) {
        try locked { () throws(HATError) in
            do throws(PageTableError) {
                try table.map(address, to: pfn << PhysicalMemory.pageShift,
                              attributes: Self.attributes(attributes.protection))
            } catch {
                throw Self.hatError(error, address)
            }
        }
    }

    public func unload(address: UInt64, size: UInt64, flags: HATUnloadFlags) throws(HATError) {
        try locked { () throws(HATError) in
            do throws(PageTableError) { try table.unmap(address, length: size) } catch {
                throw Self.hatError(error, address)
            }
        }
    }

    public func changeProtection(address: UInt64, size: UInt64, protection: Protection) throws(HATError) {
        try locked { () throws(HATError) in
            do throws(PageTableError) {
                try table.protect(address, length: size) { old in
                    var a = Self.attributes(protection)
                    a.accessed = old.accessed
                    a.dirty = old.dirty
                    return a
                }
            } catch {
                throw Self.hatError(error, address)
            }
        }
    }

    public func translation(of address: UInt64) -> HATTranslation? {
        locked {
            guard let t = try? table.lookup(address) else { return nil }
            return HATTranslation(pfn: t.physicalAddress >> PhysicalMemory.pageShift,
                                  protection: Self.protection(t.attributes), pageSize: t.size.bytes)
        }
    }

    // MARK: Batches for the kernel's own page layer

    /// `hat_memload` of a run of `count` consecutive frames from `pfn` at
    /// `address`, under one acquisition; all or nothing. With `largePages`
    /// the run is mapped with the largest pages (2 MiB, 1 GiB) that the
    /// alignment of both addresses allows — what segkmem does for guest
    /// memory (`segkmem_lpsize`), so a 64 GiB guest costs 64 leaves, not
    /// 16 Mi — else with 4 KiB pages, one leaf per frame.
    func loadRun(address: UInt64, pfn: PageFrameNumber, count: UInt64, protection: Protection,
                 largePages: Bool) throws(HATError) {
        let attributes = Self.attributes(protection)
        try locked { () throws(HATError) in
            do throws(PageTableError) {
                try table.mapRange(address, to: pfn << PhysicalMemory.pageShift, length: count << PhysicalMemory.pageShift,
                                   attributes: attributes, largestPage: largePages ? .size1G : .size4K)
            } catch {
                throw Self.hatError(error, address)
            }
        }
    }

    /// Maps `[address, + length)` to `[physicalAddress, + length)` with the
    /// largest pages alignment allows (the kpm window: `hat_kpm` uses large
    /// pages, so a 2 TiB machine costs a few thousand 1 GiB leaves).
    func mapLinear(address: UInt64, physicalAddress: UInt64, length: UInt64, protection: Protection) throws(HATError) {
        try locked { () throws(HATError) in
            do throws(PageTableError) {
                try table.mapRange(address, to: physicalAddress, length: length,
                                   attributes: Self.attributes(protection))
            } catch {
                throw Self.hatError(error, address)
            }
        }
    }

    /// `hat_unload` followed by the reaping of tables left empty, so that
    /// freeing memory gives back its page-table pages too.
    func unloadAndReap(address: UInt64, size: UInt64) throws(HATError) {
        try locked { () throws(HATError) in
            do throws(PageTableError) { try table.unmap(address, length: size) } catch {
                throw Self.hatError(error, address)
            }
            table.reclaimEmptyTables()
        }
    }

    /// Every translation whose page starts in `[base, end)`, ascending.
    public func mappings(from base: UInt64, to end: UInt64) -> [Translation] {
        locked {
            var out: [Translation] = []
            table.forEachMapping { t in
                if t.virtualAddress >= base && t.virtualAddress < end { out.append(t) }
            }
            return out
        }
    }

    /// Page-table pages in use (including the top-level table).
    public var tablePages: Int { locked { table.tableCount } }
    /// Bytes mapped by all leaves.
    public var mappedBytes: UInt64 { locked { table.mappedBytes } }
}
