import PhysicalMemory

/// A segment driver: the operations of `struct seg_ops` (§3.3 of the design)
/// for one segment. The instance is the segment's private data (`s_data`);
/// its type is the ops vector (`s_ops`).
///
/// A driver declares the operations its table fills in through
/// ``supportedOperations``; the address space refuses the others with
/// ``SegmentError/notSupported(_:driver:)`` before calling, and every default
/// implementation throws the same, so an unsupported op can never trap (where
/// illumos's `segkp_badop` panics).
///
/// Operations are called with the address space locked: structural ones
/// (`dup`, `unmap`, `free`, `setprot`, `setpagesize`, `inherit`) as writer,
/// the rest as reader — several readers may call a driver at once, so drivers
/// must be thread safe. A driver never edits the segment tree itself:
/// ``unmap(_:address:size:)`` returns an ``UnmapOutcome`` that the address
/// space applies, so the tree's invariants live in one place.
public protocol SegmentDriver: AnyObject, Sendable {
    /// The ops vector's symbol, shown by `::seg` (`segkmem_ops`, `segkp_ops`).
    var opsName: String { get }
    /// The ops this driver implements.
    var supportedOperations: SegmentOperations { get }
    /// The `s_data` pointer value `::seg` prints (0 when there is none).
    var dataAddress: UInt64 { get }

    /// 1. Copies the segment into a child address space at fork; returns the child's driver.
    func dup(_ segment: Segment, into child: AddressSpace) throws(SegmentError) -> any SegmentDriver
    /// 2. Removes `[address, address + size)`, a page-aligned part of the segment.
    func unmap(_ segment: Segment, address: UInt64, size: UInt64) throws(SegmentError) -> UnmapOutcome
    /// 3. Releases private data; the segment is being destroyed.
    func free(_ segment: Segment) throws(SegmentError)
    /// 4. Resolves (`F_INVAL`, `F_PROT`) or locks/unlocks (`F_SOFTLOCK`, `F_SOFTUNLOCK`) translations.
    func fault(_ hat: any HAT, _ segment: Segment, address: UInt64, size: UInt64,
               type: FaultType, access: SegmentAccess) throws(SegmentError)
    /// 5. Asynchronous fault / read-ahead.
    func faulta(_ segment: Segment, address: UInt64) throws(SegmentError)
    /// 6. Changes protections.
    func setprot(_ segment: Segment, address: UInt64, size: UInt64, protection: Protection) throws(SegmentError)
    /// 7. Checks that a range allows `protection`.
    func checkprot(_ segment: Segment, address: UInt64, size: UInt64, protection: Protection) throws(SegmentError)
    /// 8. Whether the page `delta` bytes away may join the same I/O.
    func kluster(_ segment: Segment, address: UInt64, delta: Int64) throws(SegmentError) -> Bool
    /// 9. Pushes pages out; returns the bytes freed.
    func swapout(_ segment: Segment) throws(SegmentError) -> UInt64
    /// 10. msync.
    func sync(_ segment: Segment, address: UInt64, size: UInt64, attributes: Int32,
              flags: SyncFlags) throws(SegmentError)
    /// 11. mincore: one status per page.
    func incore(_ segment: Segment, address: UInt64, size: UInt64) throws(SegmentError) -> [PageIncoreStatus]
    /// 12. mlock / munlock.
    func lockop(_ segment: Segment, address: UInt64, size: UInt64, attributes: Int32,
                operation: LockOperation) throws(SegmentError)
    /// 13. Protections, one per page.
    func getprot(_ segment: Segment, address: UInt64, size: UInt64) throws(SegmentError) -> [Protection]
    /// 14. Offset of `address` in the backing object.
    func getoffset(_ segment: Segment, address: UInt64) throws(SegmentError) -> UInt64
    /// 15. `MAP_SHARED` or `MAP_PRIVATE`.
    func gettype(_ segment: Segment, address: UInt64) throws(SegmentError) -> MappingType
    /// 16. The backing vnode.
    func getvp(_ segment: Segment, address: UInt64) throws(SegmentError) -> Vnode?
    /// 17. madvise.
    func advise(_ segment: Segment, address: UInt64, size: UInt64, advice: Advice) throws(SegmentError)
    /// 18. Reports the segment's pages for a crash dump, one `(va, pfn)` at a time.
    func dump(_ segment: Segment, into sink: (_ virtualAddress: UInt64, _ pfn: PageFrameNumber) -> Void)
        throws(SegmentError)
    /// 19. Fast lock/unlock of a page list for physio; returns the frames.
    func pagelock(_ segment: Segment, address: UInt64, size: UInt64, type: PageLockType,
                  access: SegmentAccess) throws(SegmentError) -> [PageFrameNumber]
    /// 20. Changes the page size code.
    func setpagesize(_ segment: Segment, address: UInt64, size: UInt64, sizeCode: UInt8) throws(SegmentError)
    /// 21. The identity of the backing object (futexes across processes).
    func getmemid(_ segment: Segment, address: UInt64) throws(SegmentError) -> MemoryID
    /// 22. lgroup memory policy.
    func getpolicy(_ segment: Segment, address: UInt64) throws(SegmentError) -> MemoryPolicy?
    /// 23. Capability query.
    func capable(_ segment: Segment, capability: SegmentCapability) throws(SegmentError) -> Bool
    /// 24. Fork inheritance.
    func inherit(_ segment: Segment, address: UInt64, size: UInt64, behavior: Inheritance) throws(SegmentError)
}

/// Every op defaults to "not in my table".
extension SegmentDriver {
    @inline(__always)
    func unsupported(_ op: SegmentOperation) -> SegmentError { .notSupported(op, driver: opsName) }

    public var dataAddress: UInt64 { 0 }

    public func dup(_ segment: Segment, into child: AddressSpace) throws(SegmentError) -> any SegmentDriver {
        throw unsupported(.dup)
    }
    public func unmap(_ segment: Segment, address: UInt64, size: UInt64) throws(SegmentError) -> UnmapOutcome {
        throw unsupported(.unmap)
    }
    public func free(_ segment: Segment) throws(SegmentError) { throw unsupported(.free) }
    public func fault(_ hat: any HAT, _ segment: Segment, address: UInt64, size: UInt64,
                      type: FaultType, access: SegmentAccess) throws(SegmentError) {
        throw unsupported(.fault)
    }
    public func faulta(_ segment: Segment, address: UInt64) throws(SegmentError) { throw unsupported(.faulta) }
    public func setprot(_ segment: Segment, address: UInt64, size: UInt64,
                        protection: Protection) throws(SegmentError) {
        throw unsupported(.setprot)
    }
    public func checkprot(_ segment: Segment, address: UInt64, size: UInt64,
                          protection: Protection) throws(SegmentError) {
        throw unsupported(.checkprot)
    }
    public func kluster(_ segment: Segment, address: UInt64, delta: Int64) throws(SegmentError) -> Bool {
        throw unsupported(.kluster)
    }
    public func swapout(_ segment: Segment) throws(SegmentError) -> UInt64 { throw unsupported(.swapout) }
    public func sync(_ segment: Segment, address: UInt64, size: UInt64, attributes: Int32,
                     flags: SyncFlags) throws(SegmentError) {
        throw unsupported(.sync)
    }
    public func incore(_ segment: Segment, address: UInt64, size: UInt64) throws(SegmentError) -> [PageIncoreStatus] {
        throw unsupported(.incore)
    }
    public func lockop(_ segment: Segment, address: UInt64, size: UInt64, attributes: Int32,
                       operation: LockOperation) throws(SegmentError) {
        throw unsupported(.lockop)
    }
    public func getprot(_ segment: Segment, address: UInt64, size: UInt64) throws(SegmentError) -> [Protection] {
        throw unsupported(.getprot)
    }
    public func getoffset(_ segment: Segment, address: UInt64) throws(SegmentError) -> UInt64 {
        throw unsupported(.getoffset)
    }
    public func gettype(_ segment: Segment, address: UInt64) throws(SegmentError) -> MappingType {
        throw unsupported(.gettype)
    }
    public func getvp(_ segment: Segment, address: UInt64) throws(SegmentError) -> Vnode? {
        throw unsupported(.getvp)
    }
    public func advise(_ segment: Segment, address: UInt64, size: UInt64, advice: Advice) throws(SegmentError) {
        throw unsupported(.advise)
    }
    public func dump(_ segment: Segment, into sink: (_ virtualAddress: UInt64, _ pfn: PageFrameNumber) -> Void)
        throws(SegmentError) {
        throw unsupported(.dump)
    }
    public func pagelock(_ segment: Segment, address: UInt64, size: UInt64, type: PageLockType,
                         access: SegmentAccess) throws(SegmentError) -> [PageFrameNumber] {
        throw unsupported(.pagelock)
    }
    public func setpagesize(_ segment: Segment, address: UInt64, size: UInt64,
                            sizeCode: UInt8) throws(SegmentError) {
        throw unsupported(.setpagesize)
    }
    public func getmemid(_ segment: Segment, address: UInt64) throws(SegmentError) -> MemoryID {
        throw unsupported(.getmemid)
    }
    public func getpolicy(_ segment: Segment, address: UInt64) throws(SegmentError) -> MemoryPolicy? {
        throw unsupported(.getpolicy)
    }
    public func capable(_ segment: Segment, capability: SegmentCapability) throws(SegmentError) -> Bool {
        throw unsupported(.capable)
    }
    public func inherit(_ segment: Segment, address: UInt64, size: UInt64,
                        behavior: Inheritance) throws(SegmentError) {
        throw unsupported(.inherit)
    }
}
