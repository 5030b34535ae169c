import AddressSpace
import PhysicalMemory

/// `seg_map` (segkmap), minimal: the kernel's window onto file pages.
///
/// The segment is cut into `MAXBSIZE` (8 KiB) windows. ``getmap(vnode:offset:)``
/// binds a window to (vnode, offset) and returns its address; touching it
/// faults through `as_fault`, which handles segkmap without taking the
/// address-space lock, and the fault finds or creates the file's page (a
/// "Page cache" page in `::memstat`) and maps it. ``release(_:free:)`` drops
/// the window's translations; the pages stay named on their file, in use or,
/// with `free`, on the cache list. On i86pc segmap does not use kpm
/// (`segmap_kpm = 0`), so the window is mapped through the HAT page by page.
public final class SegMap: SegmentDriver, @unchecked Sendable {
    /// `MAXBSIZE`
    public static let windowSize: UInt64 = 8192

    struct Slot {
        var vnode: Vnode?
        var offset: UInt64 = 0
        var references = 0
    }

    struct Key: Hashable {
        var vnode: Vnode
        var offset: UInt64
    }

    public let base: UInt64
    public let size: UInt64
    public let dataAddress: UInt64
    let memory: KernelMemory
    private let mutex = _OwnedMutex()
    private var slots: [Slot]
    private var index: [Key: Int] = [:]
    private var freeSlots: [Int]

    init(base: UInt64, size: UInt64, dataAddress: UInt64, memory: KernelMemory) {
        self.base = base
        self.size = size
        self.dataAddress = dataAddress
        self.memory = memory
        let count = Int(size / Self.windowSize)
        slots = [Slot](repeating: Slot(), count: count)
        freeSlots = Array((0..<count).reversed())
    }

    public var opsName: String { "segmap_ops" }

    public var supportedOperations: SegmentOperations {
        [.free, .fault, .faulta, .checkprot, .kluster, .getprot, .getoffset, .gettype, .getvp, .dump, .pagelock,
         .getmemid, .getpolicy, .capable]
    }

    private func slotIndex(_ address: UInt64) -> Int? {
        guard address >= base, address - base < size else { return nil }
        return Int((address - base) / Self.windowSize)
    }

    // MARK: Windows

    /// `segmap_getmap`: the address of `offset` in a window onto `vnode`.
    public func getmap(vnode: Vnode, offset: UInt64) throws(ModelKernelError) -> UInt64 {
        let windowOffset = offset & ~(Self.windowSize - 1)
        return try mutex.withLock { () throws(ModelKernelError) -> UInt64 in
            let key = Key(vnode: vnode, offset: windowOffset)
            let i: Int
            if let existing = index[key] {
                i = existing
            } else {
                guard let free = freeSlots.popLast() else {
                    throw .invalidArgument(name: "segmap windows", value: UInt64(slots.count), reason: "every window is in use")
                }
                i = free
                slots[i] = Slot(vnode: vnode, offset: windowOffset, references: 0)
                index[key] = i
            }
            slots[i].references += 1
            return base + UInt64(i) * Self.windowSize + (offset - windowOffset)
        }
    }

    /// `segmap_release`: one reference less; the last one unmaps the window.
    /// With `free` the file's pages go to the cache list (`SM_FREE`).
    public func release(_ address: UInt64, free: Bool = false) throws(ModelKernelError) {
        let window: (vnode: Vnode, offset: UInt64, base: UInt64)? = try mutex.withLock { () throws(ModelKernelError) in
            guard let i = slotIndex(address), let vnode = slots[i].vnode, slots[i].references > 0 else {
                throw .unknownAllocation(kind: "segmap window", address: address)
            }
            slots[i].references -= 1
            guard slots[i].references == 0 else { return nil }
            let w = (vnode, slots[i].offset, base + UInt64(i) * Self.windowSize)
            index[Key(vnode: vnode, offset: slots[i].offset)] = nil
            slots[i] = Slot()
            freeSlots.append(i)
            return w
        }
        guard let window else { return }
        do throws(HATError) { try memory.hat.unloadAndReap(address: window.base, size: Self.windowSize) } catch {
            throw .hat(error)
        }
        guard free else { return }
        for k in 0..<(Self.windowSize >> PhysicalMemory.pageShift) {
            let offset = window.offset + k << PhysicalMemory.pageShift
            do {
                if let pfn = try memory.physical.pageLookup(vnode: window.vnode, offset: offset, lock: .exclusive) {
                    try memory.physical.pageFree(pfn)
                }
            } catch {
                throw .physicalMemory(error, context: "freeing the file page at offset 0x\(String(offset, radix: 16))")
            }
        }
    }

    /// The (vnode, offset) a window address shows, if the window is bound.
    public func binding(of address: UInt64) -> (vnode: Vnode, offset: UInt64)? {
        mutex.withLock {
            guard let i = slotIndex(address), let v = slots[i].vnode else { return nil }
            return (v, slots[i].offset + (address - base) % Self.windowSize)
        }
    }

    // MARK: Segment operations

    public func free(_ segment: Segment) throws(SegmentError) {}

    public func fault(_ hat: any HAT, _ segment: Segment, address: UInt64, size: UInt64,
                      type: FaultType, access: SegmentAccess) throws(SegmentError) {
        var va = address & ~(PhysicalMemory.pageSize - 1)
        let (end, o) = address.addingReportingOverflow(size)
        guard !o else { throw .fault(.noMapping, address: address) }
        while va < end {
            guard let (vnode, offset) = binding(of: va) else { throw .fault(.noMapping, address: va) }
            switch type {
            case .softUnlock:
                if let pfn = memory.physical.pageFind(vnode: vnode, offset: offset) { try? memory.physical.pageUnlock(pfn) }
            case .invalid, .protection, .softLock:
                try load(hat, va, vnode, offset, keepLock: type == .softLock)
            }
            va += PhysicalMemory.pageSize
        }
    }

    /// Finds or creates the file page, maps it, and lets go of the page
    /// lock unless the fault soft-locks.
    private func load(_ hat: any HAT, _ va: UInt64, _ vnode: Vnode, _ offset: UInt64, keepLock: Bool) throws(SegmentError) {
        let pfn: PageFrameNumber
        do throws(PhysicalMemoryError) {
            if let found = try memory.physical.pageLookup(vnode: vnode, offset: offset, lock: .shared) {
                pfn = found
            } else {
                pfn = try memory.physical.pageCreate(vnode: vnode, offset: offset)
                try memory.physical.pageDowngrade(pfn)
            }
        } catch {
            throw .fault(.objectError(errno: Errno.ENOMEM), address: va)
        }
        if hat.translation(of: va)?.pfn != pfn {
            do throws(HATError) {
                try hat.load(address: va, pfn: pfn, attributes: HATAttributes([.read, .write]), flags: [])
            } catch {
                try? memory.physical.pageUnlock(pfn)
                throw .fault(.objectError(errno: Errno.EFAULT), address: va)
            }
        }
        if !keepLock { try? memory.physical.pageUnlock(pfn) }
    }

    public func faulta(_ segment: Segment, address: UInt64) throws(SegmentError) {}

    public func checkprot(_ segment: Segment, address: UInt64, size: UInt64, protection: Protection) throws(SegmentError) {
        guard Protection([.read, .write]).isSuperset(of: protection) else { throw .errno(Errno.EACCES, operation: .checkprot) }
    }

    public func kluster(_ segment: Segment, address: UInt64, delta: Int64) throws(SegmentError) -> Bool {
        let target = Int64(bitPattern: address) &+ delta
        return slotIndex(address) != nil && slotIndex(address) == slotIndex(UInt64(bitPattern: target))
    }

    public func getprot(_ segment: Segment, address: UInt64, size: UInt64) throws(SegmentError) -> [Protection] {
        let pages = Int((size + PhysicalMemory.pageSize - 1) >> PhysicalMemory.pageShift)
        return [Protection](repeating: [.read, .write], count: max(pages, 1))
    }

    public func getoffset(_ segment: Segment, address: UInt64) throws(SegmentError) -> UInt64 {
        binding(of: address)?.offset ?? 0
    }

    public func gettype(_ segment: Segment, address: UInt64) throws(SegmentError) -> MappingType { .shared }

    public func getvp(_ segment: Segment, address: UInt64) throws(SegmentError) -> Vnode? { binding(of: address)?.vnode }

    /// `segmap_dump`: the file pages the bound windows show.
    public func dump(_ segment: Segment, into sink: (UInt64, PageFrameNumber) -> Void) throws(SegmentError) {
        for t in memory.hat.mappings(from: base, to: base &+ size) { sink(t.virtualAddress, t.physicalAddress >> PhysicalMemory.pageShift) }
    }

    public func pagelock(_ segment: Segment, address: UInt64, size: UInt64, type: PageLockType,
                         access: SegmentAccess) throws(SegmentError) -> [PageFrameNumber] {
        throw .errno(Errno.ENOTSUP, operation: .pagelock)
    }

    public func getmemid(_ segment: Segment, address: UInt64) throws(SegmentError) -> MemoryID {
        guard let (vnode, offset) = binding(of: address) else { throw .errno(Errno.EINVAL, operation: .getmemid) }
        return MemoryID(object: UInt64(vnode.id), offset: offset)
    }

    public func getpolicy(_ segment: Segment, address: UInt64) throws(SegmentError) -> MemoryPolicy? { nil }

    public func capable(_ segment: Segment, capability: SegmentCapability) throws(SegmentError) -> Bool { false }
}
