import AddressSpace
import PhysicalMemory

/// A process address space the kernel made, with the HAT it owns.
struct _ProcessSpace {
    let space: AddressSpace
    let hat: KernelHAT
}

/// A process HAT, held weakly so that ``ModelKernel/verify()`` counts its
/// table pages for exactly as long as they exist.
struct _WeakHAT {
    weak var hat: KernelHAT?
}

// Process address spaces, and what `vm_segmap_obj` does for a hosted guest:
// its memory mapped into a process through segvmm.

extension ModelKernel {
    /// Bytes of the `struct as` the model allocates from `kmem_default`.
    public static let addressSpaceStructSize: UInt64 = 0x100

    /// The lowest address a process mapping is placed at: page zero stays
    /// unmapped, so that a NULL dereference faults.
    public static let lowestUserAddress: UInt64 = PhysicalMemory.pageSize

    /// Each process HAT names its table pages in its own range of the VA hole
    /// above the kernel HAT's (2^28 table pages each: more than any table).
    static let processTableSpan: UInt64 = 1 << 40

    /// A user address space (`as_alloc`): `a_userlimit` is the layout's
    /// `_userlimit`, the amd64 VA hole is refused, its `struct as` is a
    /// `kmem_alloc` (the address renderings show), and its HAT is a page
    /// table of its own whose table pages are Kernel memory, as illumos's
    /// htables are. Give it back with ``destroyProcessAddressSpace(_:)``.
    public func createProcessAddressSpace(name: String = "proc") throws(ModelKernelError) -> AddressSpace {
        let slot = withState { () -> UInt64 in
            defer { nextProcessTableSlot += 1 }
            return nextProcessTableSlot
        }
        let hole = AddressSpace.amd64Hole
        let maxSlots = (hole.upperBound - hole.lowerBound) / Self.processTableSpan
        guard slot < maxSlots else {
            throw .invalidArgument(name: "process address spaces", value: slot,
                                   reason: "every page-table identity range in the VA hole has been used")
        }
        let hat = try KernelHAT(memory: physicalMemory,
                                tableIdentityBase: KernelHAT.tableIdentityBase + slot * Self.processTableSpan)
        let address = try kmemAlloc(Self.addressSpaceStructSize)
        // `struct seg` addresses are synthetic, a range per process.
        let space = AddressSpace(name: name, kind: .user(limit: layout.userlimit), hat: hat, address: address,
                                 virtualHole: model.isAMD64 ? hole : nil,
                                 segmentRecordBase: 0xFFFF_FE0B_0000_0000 &+ slot << 24)
        withState {
            processTable[address] = _ProcessSpace(space: space, hat: hat)
            processHATs.removeAll { $0.hat == nil }
            processHATs.append(_WeakHAT(hat: hat))
        }
        return space
    }

    /// Tears a process address space down (`as_free`): every segment is
    /// unmapped (segvmm releases its holds), then the `struct as` is freed.
    /// Refused while a segment has soft-locked pages, with the segments
    /// before it already gone, as `as_unmap` leaves them.
    public func destroyProcessAddressSpace(_ space: AddressSpace) throws(ModelKernelError) {
        guard withState({ processTable[space.address]?.space === space }) else {
            throw .unknownAllocation(kind: "process address space (struct as)", address: space.address)
        }
        do { try space.unmapAll() } catch { throw .addressSpace(error) }
        _ = withState { processTable.removeValue(forKey: space.address) }
        try kmemFree(space.address, size: Self.addressSpaceStructSize)
    }

    /// The live process address spaces, by address.
    public var processAddressSpaces: [AddressSpace] {
        withState { processTable.keys.sorted().compactMap { processTable[$0]?.space } }
    }

    /// `vm_segmap_obj` for a hosted guest: maps `[offset, + length)` of the
    /// guest's memory segment `id` into `space` through `segvmm`, at an
    /// address the kernel chooses (``chooseUserAddress(in:length:kernelAddress:)``),
    /// and returns the new segment. Its pages fault in from the kernel's
    /// own mapping of the segment in `kvmmseg`.
    ///
    /// Refused, naming the value: a guest or address space this kernel does
    /// not hold; no segment `id`, or one without kernel pages (devmem); a
    /// zero or unaligned offset or length, or a range past the segment; a
    /// protection with bits beyond `PROT_ALL`, or without `PROT_USER`
    /// (`segvmm_create`'s check).
    @discardableResult
    public func mapGuestSegment(_ guest: ModelGuest, segment id: Int, offset: UInt64, length: UInt64,
                                protection: Protection, into space: AddressSpace) throws(ModelKernelError) -> Segment {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        guard withState({ hostedGuestTable[guest.address] === guest }) else {
            throw .unknownAllocation(kind: "guest (vm_t)", address: guest.address)
        }
        guard withState({ processTable[space.address]?.space === space }) else {
            throw .unknownAllocation(kind: "process address space (struct as)", address: space.address)
        }
        let idValue = UInt64(bitPattern: Int64(id))
        guard let segment = guest.memory.segment(id) else {
            throw .invalidArgument(name: "guest segment id", value: idValue, reason: "guest \(hex(guest.address)) has no such segment")
        }
        guard segment.pageBacking != nil else {
            throw .invalidArgument(name: "guest segment id", value: idValue,
                                   reason: "\(segment.kind) has no pages in kvmmseg to map")
        }
        guard let object = guest.object(forSegment: id) else {
            throw .unknownAllocation(kind: "guest (vm_t)", address: guest.address)   // being destroyed
        }
        let pageMask = PhysicalMemory.pageSize - 1
        guard length > 0 else { throw .invalidArgument(name: "length", value: length, reason: "must not be zero") }
        guard offset & pageMask == 0 else {
            throw .invalidArgument(name: "offset", value: offset, reason: "not page aligned")
        }
        guard length & pageMask == 0 else {
            throw .invalidArgument(name: "length", value: length, reason: "not page aligned")
        }
        let (end, o) = offset.addingReportingOverflow(length)
        guard !o, end <= object.length else {
            throw .invalidArgument(name: "length", value: length,
                                   reason: "offset \(hex(offset)) + length runs past segment \(id)'s \(hex(object.length)) bytes")
        }
        guard Protection.all.isSuperset(of: protection) else {
            throw .invalidArgument(name: "protection", value: UInt64(protection.rawValue), reason: "bits beyond PROT_ALL")
        }
        let arguments = SegVMM.Arguments(kernelAddress: object.kernelAddress + offset, protection: protection,
                                         object: object)
        // as_rangelock is the address space's write lock here, taken twice:
        // a map that takes the hole in between makes this one look again.
        var attempts = 0
        while true {
            let address = try chooseUserAddress(in: space, length: length, kernelAddress: arguments.kernelAddress)
            do throws(ModelKernelError) {
                let s = try SegVMM.map(into: space, address: address, size: length, arguments: arguments,
                                       userLimit: layout.userlimit, kernelHAT: hat)
                // The guest began to go before the hold was seen: give it back.
                if object.isRetired {
                    try? space.unmap(address: s.base, size: s.size)
                    throw .unknownAllocation(kind: "guest (vm_t)", address: guest.address)
                }
                return s
            } catch {
                if case .addressSpace(.overlap) = error, attempts < 64 {
                    attempts += 1
                    continue
                }
                throw error
            }
        }
    }

    /// `choose_addr(ADDR_VACALIGN)`, first fit: the lowest hole of `space`
    /// between ``lowestUserAddress`` and the user limit that holds `length`
    /// bytes at an address congruent to `kernelAddress` modulo 2 MiB (4 KiB
    /// for mappings under 2 MiB), so that the user and kernel mappings could
    /// share large pages.
    public func chooseUserAddress(in space: AddressSpace, length: UInt64,
                                  kernelAddress: UInt64) throws(ModelKernelError) -> UInt64 {
        let page = PhysicalMemory.pageSize
        guard let limit = space.userLimit, limit > Self.lowestUserAddress else {
            throw .invalidArgument(name: "address space", value: space.address, reason: "not a user address space")
        }
        let alignment: UInt64 = length >= 2 << 20 ? 2 << 20 : page
        let (needed, o) = length.addingReportingOverflow(alignment - page)
        guard length > 0, !o else {
            throw .invalidArgument(name: "length", value: length, reason: "no hole can hold it")
        }
        let hole: (base: UInt64, length: UInt64)
        do {
            hole = try space.gap(minimumLength: needed, base: Self.lowestUserAddress,
                                 length: limit - Self.lowestUserAddress, direction: .low)
        } catch {
            throw .addressSpace(error)
        }
        return hole.base + ((kernelAddress &- hole.base) & (alignment - 1))
    }
}
