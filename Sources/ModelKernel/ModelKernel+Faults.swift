import AddressSpace
import PhysicalMemory

/// The access a simulated instruction makes (`enum seg_rw`, reduced).
public enum KernelAccess: Hashable, Sendable {
    case read
    case write
    case execute
}

extension ModelKernel {
    /// What a kernel load or store at `address` does: translated by the
    /// HAT, or a page fault handled as illumos's `trap()` → `pagefault()`
    /// would: a touch of a segkp red zone is a stack overflow (what
    /// `segkp_map_red` panics with on amd64); a touch of the red zone below
    /// `kernelbase` is `FC_NOMAP` there; otherwise `as_fault(F_INVAL)`
    /// asks the segment's driver, and an address outside every segment is
    /// `FC_NOMAP`. Returns the frame the access reached.
    ///
    /// With `thread` (the stack the faulting thread runs on and its frame
    /// pointer), a fault first goes through ``segkpMapRed(on:framePointer:)``
    /// as `trap()` does: on amd64 a thread with less than `red_minavail`
    /// bytes of stack left panics; on i386 it is lent its red-zone page for
    /// the fault (so a touch of that page then succeeds), given back before
    /// this returns.
    @discardableResult
    public func touch(_ address: UInt64, access: KernelAccess = .read,
                      thread: (stack: KernelStack, framePointer: UInt64)? = nil) throws(ModelKernelError) -> PageFrameNumber {
        let needed: Protection = access == .write ? .write : access == .execute ? .execute : .read
        if let t = hat.translation(of: address), t.protection.contains(needed) { return t.pfn }
        guard let thread else { return try pageFault(address, access: access) }
        let lent = try segkpMapRed(on: thread.stack, framePointer: thread.framePointer)
        defer { if lent { try? segkpUnmapRed(on: thread.stack) } }
        if let t = hat.translation(of: address), t.protection.contains(needed) { return t.pfn }
        return try pageFault(address, access: access)
    }

    /// The page-fault path of ``touch(_:access:thread:)`` once the HAT has no
    /// translation that allows the access.
    func pageFault(_ address: UInt64, access: KernelAccess) throws(ModelKernelError) -> PageFrameNumber {
        if hat.translation(of: address) != nil {
            try fault(address, type: .protection, access: access)
            throw .fault(code: .protection, address: address, segment: segment(containing: address)?.name ?? "?")
        }
        if let r = segkp.redZoneOwner(of: address) {
            throw stackOverflow(at: address, stackBase: r.mappedBase, stackSize: r.mappedLength)
        }
        // No segment holds the red zone; name it rather than answer a bare FC_NOMAP.
        if redZone.contains(address) { throw .fault(code: .noMapping, address: address, segment: "redzone") }
        try fault(address, type: .invalid, access: access)
        guard let t = hat.translation(of: address) else {
            throw .fault(code: .noMapping, address: address, segment: segment(containing: address)?.name ?? "?")
        }
        return t.pfn
    }

    /// "kernel stack overflow" at `address` on the stack `[stackBase, +stackSize)`,
    /// named after segkp's segment (on i386, the heap segment segkp lives in).
    func stackOverflow(at address: UInt64, stackBase: UInt64, stackSize: UInt64) -> ModelKernelError {
        let seg = segment(named: "kpseg") ?? segment(containing: stackBase)
        return .stackOverflow(segment: seg?.name == "kpseg" ? "segkp" : "segkp (in \(seg?.name ?? "kvseg"))",
                              segmentBase: seg?.base ?? 0, address: address, stackBase: stackBase, stackSize: stackSize)
    }

    /// `as_fault` on the page holding `address`, with the error named after
    /// the segment.
    func fault(_ address: UInt64, type: FaultType, access: KernelAccess) throws(ModelKernelError) {
        let rw: SegmentAccess = access == .write ? .write : access == .execute ? .execute : .read
        do {
            try kas.fault(address: address & ~(PhysicalMemory.pageSize - 1), size: PhysicalMemory.pageSize,
                          type: type, access: rw)
        } catch {
            guard let code = error.faultCode else { throw .addressSpace(error) }
            guard let seg = kas.segat(address) else { throw .noMapping(address: address) }
            let name = segment(containing: address)?.name ?? seg.driver.opsName
            throw .fault(code: code, address: address, segment: name)
        }
    }
}
