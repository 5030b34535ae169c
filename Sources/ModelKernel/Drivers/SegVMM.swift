import AddressSpace
import PhysicalMemory

/// `seg_vmm` (2020 design, illumos 12608 era): guest memory that the kernel
/// already maps in `kvmmseg`, mapped again into a user process (bhyve's
/// devmem/segmap ioctls).
///
/// The segment owns no pages. Each user page `va` stands for the kernel page
/// at `kaddr + (va − s_base)`; a fault reads that page's frame from the
/// **kernel** page table and loads the same frame into the process's HAT
/// (`hat_devload`), a 4 KiB page at a time, without locking any `page_t` —
/// the pages are wired for the guest's whole life, and the hold on the object
/// keeps them there while the segment exists.
///
/// Invariants:
/// * the create checks hold for the segment's life: `kaddr` is above
///   `_userlimit`, page aligned, `kaddr + s_size` does not wrap, and the
///   protection includes `PROT_USER`;
/// * the segment holds its object exactly once from create (or `dup`) to
///   unmap (or free);
/// * it is unmapped only whole, and never while soft-locked (`EAGAIN`);
/// * protections are fixed (`setprot` is `EACCES`), the mapping is shared,
///   and `getoffset` is 0 so that no kernel address leaks to the process.
///
/// The table leaves kluster, swapout and getpolicy empty and inherit is
/// `seg_inherit_notsup`: those four are refused as not supported.
public final class SegVMM: SegmentDriver, @unchecked Sendable {
    /// `segvmm_crargs_t`: what `as_map` hands `segvmm_create`.
    public struct Arguments: Sendable {
        /// The kernel VA of the first page to map.
        public var kernelAddress: UInt64
        /// The protections the user mapping gets; must include `PROT_USER`.
        public var protection: Protection
        /// The object to hold while mapped.
        public var object: any SegVMMObject

        public init(kernelAddress: UInt64, protection: Protection, object: any SegVMMObject) {
            self.kernelAddress = kernelAddress
            self.protection = protection
            self.object = object
        }
    }

    /// `svmd_kaddr`
    public let kernelAddress: UInt64
    /// `svmd_prot`
    public let protection: Protection
    /// `svmd_obj`
    public let object: any SegVMMObject
    /// `kas.a_hat`: where the frames behind `kaddr` are read.
    let kernelHAT: any HAT
    private let mutex = _OwnedMutex()
    // Guarded by `mutex`.
    private var softLocks: UInt64 = 0
    private var holding = true

    private init(kernelAddress: UInt64, protection: Protection, object: any SegVMMObject, kernelHAT: any HAT) {
        self.kernelAddress = kernelAddress
        self.protection = protection
        self.object = object
        self.kernelHAT = kernelHAT
        object.hold()
    }

    public var opsName: String { "segvmm_ops" }

    public var supportedOperations: SegmentOperations {
        SegmentOperations.all.subtracting([.kluster, .swapout, .getpolicy, .inherit])
    }

    /// Pages soft-locked now (`svmd_softlockcnt`).
    public var softLockCount: UInt64 { mutex.withLock { softLocks } }

    /// Whether the segment still holds its object.
    public var holdsObject: Bool { mutex.withLock { holding } }

    // MARK: Create

    /// `segvmm_create`: checks the arguments against a segment of `size`
    /// bytes and takes a hold on the object. Refusals name the value.
    ///
    /// - Parameter userLimit: the kernel's `_userlimit`; `kaddr` must lie above it.
    static func create(size: UInt64, arguments a: Arguments, userLimit: UInt64,
                       kernelHAT: any HAT) throws(ModelKernelError) -> SegVMM {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        let kaddr = a.kernelAddress
        guard kaddr > userLimit else {
            throw .invalidArgument(name: "segvmm kaddr", value: kaddr, reason: "not above _userlimit \(hex(userLimit))")
        }
        // kaddr + size may not reach 2^64 either: C's sum would wrap to 0.
        guard !kaddr.addingReportingOverflow(size).overflow else {
            throw .invalidArgument(name: "segvmm kaddr", value: kaddr, reason: "kaddr + size \(hex(size)) wraps")
        }
        guard a.protection.contains(.user) else {
            throw .invalidArgument(name: "segvmm protection", value: UInt64(a.protection.rawValue),
                                   reason: "\(a.protection) lacks PROT_USER")
        }
        guard kaddr & (PhysicalMemory.pageSize - 1) == 0 else {
            throw .invalidArgument(name: "segvmm kaddr", value: kaddr, reason: "not page aligned")
        }
        return SegVMM(kernelAddress: kaddr, protection: a.protection, object: a.object, kernelHAT: kernelHAT)
    }

    /// `as_map(as, address, size, segvmm_create, &arguments)`: a segvmm
    /// segment at exactly `[address, + size)` of `space`. The create checks
    /// (``ModelKernelError/invalidArgument(name:value:reason:)``) run under
    /// the address space's lock, after its own (overlap, user limit).
    ///
    /// - Parameters:
    ///   - space: the (user) address space to map into.
    ///   - address: the segment's base; page-rounded with `size` as `as_map` does.
    ///   - size: its length in bytes.
    ///   - arguments: `kaddr`, the protections and the object to hold.
    ///   - userLimit: the kernel's `_userlimit`, for the create checks.
    ///   - kernelHAT: the kernel's HAT (`kas.a_hat`), read on faults.
    @discardableResult
    public static func map(into space: AddressSpace, address: UInt64, size: UInt64, arguments: Arguments,
                           userLimit: UInt64, kernelHAT: any HAT) throws(ModelKernelError) -> Segment {
        // The create routine may throw only SegmentError; its own refusal is
        // kept here and thrown as itself.
        var refusal: ModelKernelError?
        do {
            return try space.map(address: address, size: size) { request throws(SegmentError) in
                do throws(ModelKernelError) {
                    return .created(try create(size: request.size, arguments: arguments, userLimit: userLimit,
                                               kernelHAT: kernelHAT))
                } catch {
                    refusal = error
                    throw .invalidResult("segvmm_create: \(error)")
                }
            }
        } catch {
            if let refusal { throw refusal }
            throw .addressSpace(error)
        }
    }

    // MARK: Operations

    /// The page-aligned start and page count of `[address, + size)`, which
    /// must lie in the segment.
    private static func pages(_ segment: Segment, _ address: UInt64, _ size: UInt64,
                              _ op: SegmentOperation) throws(SegmentError) -> (base: UInt64, count: UInt64) {
        let base = address & ~(PhysicalMemory.pageSize - 1)
        let (end, o) = address.addingReportingOverflow(size)
        guard size > 0, !o, base >= segment.base, end &- 1 <= segment.last else {
            throw .errno(Errno.EINVAL, operation: op)
        }
        return (base, (end &- base &+ PhysicalMemory.pageSize &- 1) >> PhysicalMemory.pageShift)
    }

    /// `segvmm_fault_in`: each page's frame from the kernel page table,
    /// loaded into `hat` with the segment's protections.
    private func faultIn(_ hat: any HAT, _ segment: Segment, base: UInt64, count: UInt64) throws(SegmentError) {
        let offset = kernelAddress &- segment.base
        let attributes = HATAttributes(protection)
        for i in 0..<count {
            let va = base &+ i << PhysicalMemory.pageShift
            // The exact 4 KiB frame, even inside the kernel's large page.
            guard let kernel = kernelHAT.translation(of: va &+ offset) else {
                throw .fault(.noMapping, address: va)
            }
            if let user = hat.translation(of: va) {
                if user.pfn == kernel.pfn && user.protection == protection { continue }
                // hat_devload replaces what was there.
                try? hat.unload(address: va, size: PhysicalMemory.pageSize, flags: [])
            }
            do throws(HATError) {
                try hat.load(address: va, pfn: kernel.pfn, attributes: attributes, flags: [])
            } catch {
                throw .fault(.objectError(errno: Errno.EFAULT), address: va)
            }
        }
    }

    /// `F_PROT` is `FC_PROT` (protections are fixed); `F_INVAL` and
    /// `F_SOFTLOCK` fault the pages in, a soft lock also counting them;
    /// `F_SOFTUNLOCK` uncounts them (more than are locked is `EINVAL`,
    /// changing nothing, where illumos would panic).
    public func fault(_ hat: any HAT, _ segment: Segment, address: UInt64, size: UInt64,
                      type: FaultType, access: SegmentAccess) throws(SegmentError) {
        let (base, count) = try Self.pages(segment, address, size, .fault)
        switch type {
        case .protection:
            throw .fault(.protection, address: address)
        case .softUnlock:
            try mutex.withLock { () throws(SegmentError) in
                guard softLocks >= count else { throw .errno(Errno.EINVAL, operation: .fault) }
                softLocks -= count
            }
        case .invalid, .softLock:
            try faultIn(hat, segment, base: base, count: count)
            if type == .softLock { mutex.withLock { softLocks += count } }
        }
    }

    /// Nothing to read ahead: every page is resident.
    public func faulta(_ segment: Segment, address: UInt64) throws(SegmentError) {}

    public func setprot(_ segment: Segment, address: UInt64, size: UInt64,
                        protection: Protection) throws(SegmentError) {
        throw .errno(Errno.EACCES, operation: .setprot)
    }

    public func checkprot(_ segment: Segment, address: UInt64, size: UInt64,
                          protection: Protection) throws(SegmentError) {
        guard self.protection.isSuperset(of: protection) else { throw .errno(Errno.EACCES, operation: .checkprot) }
    }

    /// Only the whole segment: `EINVAL` for a part, `EAGAIN` while soft-locked;
    /// otherwise the translations go and the hold is released.
    public func unmap(_ segment: Segment, address: UInt64, size: UInt64) throws(SegmentError) -> UnmapOutcome {
        guard address == segment.base, size == segment.size else { throw .errno(Errno.EINVAL, operation: .unmap) }
        try mutex.withLock { () throws(SegmentError) in
            if softLocks > 0 { throw .again(address: address, size: size) }
        }
        if let space = segment.addressSpace {
            // A model HAT also gives back the table pages left empty.
            if let model = space.hat as? KernelHAT {
                try? model.unloadAndReap(address: segment.base, size: segment.size)
            } else {
                try? space.hat.unload(address: segment.base, size: segment.size, flags: [.unmap])
            }
        }
        releaseObject()
        return .removed
    }

    /// Releases the hold if unmap has not (a segment torn down another way).
    public func free(_ segment: Segment) throws(SegmentError) { releaseObject() }

    private func releaseObject() {
        let release = mutex.withLock { () -> Bool in
            defer { holding = false }
            return holding
        }
        if release { object.release() }
    }

    /// A second hold on the same object for the child; its soft locks start at 0.
    public func dup(_ segment: Segment, into child: AddressSpace) throws(SegmentError) -> any SegmentDriver {
        SegVMM(kernelAddress: kernelAddress, protection: protection, object: object, kernelHAT: kernelHAT)
    }

    /// Nothing to write back.
    public func sync(_ segment: Segment, address: UInt64, size: UInt64, attributes: Int32,
                     flags: SyncFlags) throws(SegmentError) {}

    /// Every page is resident (wired in the kernel).
    public func incore(_ segment: Segment, address: UInt64, size: UInt64) throws(SegmentError) -> [PageIncoreStatus] {
        let (_, count) = try Self.pages(segment, address, size, .incore)
        return [PageIncoreStatus](repeating: .inCore, count: Int(count))
    }

    /// The pages are wired already: locking changes nothing.
    public func lockop(_ segment: Segment, address: UInt64, size: UInt64, attributes: Int32,
                       operation: LockOperation) throws(SegmentError) {}

    public func getprot(_ segment: Segment, address: UInt64, size: UInt64) throws(SegmentError) -> [Protection] {
        let (_, count) = try Self.pages(segment, address, size, .getprot)
        return [Protection](repeating: protection, count: Int(count))
    }

    /// 0: the offset would tell the process where the kernel keeps the memory.
    public func getoffset(_ segment: Segment, address: UInt64) throws(SegmentError) -> UInt64 { 0 }

    public func gettype(_ segment: Segment, address: UInt64) throws(SegmentError) -> MappingType { .shared }

    /// No vnode backs guest memory.
    public func getvp(_ segment: Segment, address: UInt64) throws(SegmentError) -> Vnode? { nil }

    public func advise(_ segment: Segment, address: UInt64, size: UInt64, advice: Advice) throws(SegmentError) {}

    /// Guest memory is not the host's to dump (and kvmmseg skips it too).
    public func dump(_ segment: Segment,
                     into sink: (_ virtualAddress: UInt64, _ pfn: PageFrameNumber) -> Void) throws(SegmentError) {}

    public func pagelock(_ segment: Segment, address: UInt64, size: UInt64, type: PageLockType,
                         access: SegmentAccess) throws(SegmentError) -> [PageFrameNumber] {
        throw .errno(Errno.ENOTSUP, operation: .pagelock)
    }

    public func setpagesize(_ segment: Segment, address: UInt64, size: UInt64,
                            sizeCode: UInt8) throws(SegmentError) {
        throw .errno(Errno.ENOTSUP, operation: .setpagesize)
    }

    /// The object and the offset in the segment (kernel-internal, so the object's identity may be an address).
    public func getmemid(_ segment: Segment, address: UInt64) throws(SegmentError) -> MemoryID {
        MemoryID(object: object.identity, offset: address &- segment.base)
    }

    public func capable(_ segment: Segment, capability: SegmentCapability) throws(SegmentError) -> Bool { false }
}
