import GuestMemory
import PhysicalMemory

/// A guest the model kernel hosts, as bhyve's `struct vm` is hosted by
/// illumos: a `GuestMemory` whose system memory comes from
/// `vmm_alloc_arena` through the kernel's ``VmmArenaPageProvider``.
///
/// Layout (libvmmapi's `vm_setup_memory`, with the hole left out of the
/// segment so that every page of it is guest RAM): one sysmem segment (id 0)
/// of `size` bytes; its first `min(size, 3 GiB)` mapped `rwx` at GPA 0
/// (lowmem), the rest at 4 GiB (highmem), above the 32-bit PCI hole. The
/// segment is sparse host memory and the nested table is empty until a
/// page is touched, so a 64 GiB guest costs the model a few page records and
/// the host almost nothing.
public final class ModelGuest: @unchecked Sendable {
    /// The guest's `vm_t`, a `kmem_alloc` in the kernel heap: what `::vm`
    /// lists and `::memseg`, `::memmap` and `::npt` take.
    public let address: UInt64
    /// Guest RAM in bytes (a multiple of `vmm_alloc_arena`'s quantum).
    public let size: UInt64
    /// The guest-physical memory.
    public let memory: GuestMemory

    init(address: UInt64, size: UInt64, memory: GuestMemory) {
        self.address = address
        self.size = size
        self.memory = memory
    }

    /// Bytes of the `struct vm` the model allocates.
    public static let vmStructSize: UInt64 = 4096

    /// The kernel VAs of the system segments' pages in `kvmmseg`, by segment id.
    public var backings: [(segment: Int, address: UInt64, length: UInt64)] {
        memory.segments.compactMap { s in s.pageBacking.map { (s.id, $0.address, s.length) } }
    }

    private let objectLock = _OwnedMutex()
    // Guarded by `objectLock`.
    private var objectTable: [Int: VMMObject] = [:]
    private var objectsClosed = false

    /// The `vm_object` of segment `id`, made on first use: what `segvmm`
    /// mappings of the segment hold. Nil when the segment does not exist,
    /// has no pages in `kvmmseg` (device memory is the guest's own), or the
    /// guest is being destroyed.
    public func object(forSegment id: Int) -> VMMObject? {
        guard let s = memory.segment(id), let b = s.pageBacking else { return nil }
        return objectLock.withLock {
            guard !objectsClosed else { return nil }
            // A segment made again at another address is another object.
            if let o = objectTable[id], o.kernelAddress == b.address, o.length == s.length { return o }
            let o = VMMObject(guestAddress: address, segment: id, kernelAddress: b.address, length: s.length)
            objectTable[id] = o
            return o
        }
    }

    /// The objects made so far, by segment id.
    public var objects: [VMMObject] {
        objectLock.withLock { objectTable.keys.sorted().compactMap { objectTable[$0] } }
    }

    /// Retires every object and makes no new ones, for ``ModelKernel/destroyGuest(_:)``:
    /// all or nothing. Returns the first object a mapping still holds (and
    /// changes nothing) or nil.
    func closeObjects() -> VMMObject? {
        objectLock.withLock {
            var retired: [VMMObject] = []
            for id in objectTable.keys.sorted() {
                guard let o = objectTable[id] else { continue }
                guard o.retire() else {
                    for r in retired { r.unretire() }
                    return o
                }
                retired.append(o)
            }
            objectsClosed = true
            return nil
        }
    }

    /// Undoes ``closeObjects()`` (the guest could not be destroyed after all).
    func reopenObjects() {
        objectLock.withLock {
            objectsClosed = false
            for o in objectTable.values { o.unretire() }
        }
    }
}

extension ModelKernel {
    /// Hosts a guest of `size` bytes of RAM (rounded up to
    /// `vmm_alloc_arena`'s quantum): a `GuestMemory` laid out as
    /// ``ModelGuest`` says, its sysmem pages from `vmm_alloc_arena` on
    /// `kvps[KV_VVP]`, and a `vm_t` from `kmem_default`. All or nothing.
    public func createGuest(size: UInt64, nested: NestedTableMode = NestedTableMode()) throws(ModelKernelError) -> ModelGuest {
        let vmm = try arena("vmm_alloc_arena")
        let bytes = try rounded(size, for: vmm, name: "guest size")
        let lowmem = min(bytes, GuestMemory.defaultLowmemLimit)
        let highmem = bytes - lowmem
        let limit = highmem > 0 ? GuestMemory.highmemBase + highmem : lowmem
        guard limit <= GuestMemory.addressLimit else {
            throw .invalidArgument(name: "guest size", value: size, reason: "beyond the 2^47-byte guest-physical space")
        }
        let vm = try kmemAlloc(ModelGuest.vmStructSize)
        _ = guestFailures.take()   // nothing stale from another user of the provider on this thread
        let memory: GuestMemory
        do {
            memory = try GuestMemory(limit: limit, nested: nested, pageProvider: vmmPageProvider)
        } catch {
            try? kmemFree(vm, size: ModelGuest.vmStructSize)
            throw .guestMemory(error, context: "reserving a guest of 0x\(String(bytes, radix: 16)) bytes")
        }
        do throws(GuestMemoryError) {
            try memory.allocateSegment(id: 0, length: bytes)
            try memory.map(gpa: 0, segment: 0, offset: 0, length: lowmem, protection: .all)
            if highmem > 0 {
                try memory.map(gpa: GuestMemory.highmemBase, segment: 0, offset: lowmem, length: highmem, protection: .all)
            }
        } catch {
            // The page provider's refusal carries the kernel's own error.
            let cause = guestFailures.take()
            try? memory.destroy()
            _ = guestFailures.take()
            try? kmemFree(vm, size: ModelGuest.vmStructSize)
            if let cause { throw cause }
            throw .guestMemory(error, context: "laying out a guest of 0x\(String(bytes, radix: 16)) bytes")
        }
        let guest = ModelGuest(address: vm, size: bytes, memory: memory)
        withState { hostedGuestTable[vm] = guest }
        return guest
    }

    /// Destroys a hosted guest: its GuestMemory (which gives its pages back
    /// to `vmm_alloc_arena`) and its `vm_t`. Refused, changing nothing, while
    /// the guest has page holds or a process maps its memory (`segvmm`).
    public func destroyGuest(_ guest: ModelGuest) throws(ModelKernelError) {
        guard withState({ hostedGuestTable[guest.address] === guest }) else {
            throw .unknownAllocation(kind: "guest (vm_t)", address: guest.address)
        }
        // A process still maps the pages (segvmm holds the object): freeing
        // them would leave its translations on frames given to others.
        if let held = guest.closeObjects() {
            throw .guestMemoryMapped(guest: guest.address, segment: held.segment, holds: max(held.mappingHolds, 1))
        }
        _ = guestFailures.take()
        do { try guest.memory.destroy() } catch {
            guest.reopenObjects()
            throw .guestMemory(error, context: "destroying the guest at 0x\(String(guest.address, radix: 16))")
        }
        _ = withState { hostedGuestTable.removeValue(forKey: guest.address) }
        let releaseFailure = guestFailures.take()
        try kmemFree(guest.address, size: ModelGuest.vmStructSize)
        if let releaseFailure { throw releaseFailure }
    }

    /// The hosted guests, by address.
    public var hostedGuests: [ModelGuest] {
        withState { hostedGuestTable.values.sorted { $0.address < $1.address } }
    }

    /// The hosted guest whose `vm_t` is at `address`.
    public func guest(at address: UInt64) -> ModelGuest? {
        withState { hostedGuestTable[address] }
    }
}
