import Synchronization

/// What a `segvmm` segment holds while it maps an object: the cookie of
/// `segvmm_crargs_t` with its hold and release callbacks.
///
/// A segment takes one hold when it is created (and one more for each
/// `dup`) and gives it back exactly once, when it is unmapped or freed; the
/// object's memory must stay where it is while any hold is out.
public protocol SegVMMObject: AnyObject, Sendable {
    /// The value that names the object (`getmemid`'s first word).
    var identity: UInt64 { get }
    /// The hold callback (bhyve: `vm_object_reference`).
    func hold()
    /// The release callback (bhyve: `vm_object_deallocate`).
    func release()
}

/// bhyve's `vm_object` for one of a hosted guest's memory segments (2020
/// design, `OBJT_DEFAULT`): the guest memory that `vmm_alloc_arena` gave the
/// segment, mapped in `kvmmseg` at ``kernelAddress``.
///
/// Its reference count starts at 1, the segment's own reference; every
/// `segvmm` mapping of it into a process adds one. The model's pages go back
/// to the arena with the guest, so ``ModelKernel/destroyGuest(_:)`` refuses
/// while a mapping still holds an object (bhyve instead lets the object
/// outlive the VM until its last mapping goes).
public final class VMMObject: SegVMMObject, @unchecked Sendable {
    /// The `vm_t` of the guest the segment belongs to.
    public let guestAddress: UInt64
    /// The guest memory segment id.
    public let segment: Int
    /// The kernel VA of the segment's first page, in `kvmmseg`.
    public let kernelAddress: UInt64
    /// Bytes in the object.
    public let length: UInt64
    private let references = Atomic<Int>(1)
    /// Set while the guest is being destroyed; see ``retire()``.
    private let retired = Atomic<Bool>(false)

    init(guestAddress: UInt64, segment: Int, kernelAddress: UInt64, length: UInt64) {
        self.guestAddress = guestAddress
        self.segment = segment
        self.kernelAddress = kernelAddress
        self.length = length
    }

    /// The kernel address: unique among live objects, and only the kernel sees memids.
    public var identity: UInt64 { kernelAddress }

    /// `ref_count`: 1 for the segment itself plus one per hold.
    public var referenceCount: Int { references.load(ordering: .acquiring) }

    /// Holds taken by mappings (``referenceCount`` − 1).
    public var mappingHolds: Int { referenceCount - 1 }

    /// Whether the guest is destroying (or has destroyed) the memory: a
    /// mapper that took a hold and then finds this set must give up.
    public var isRetired: Bool { retired.load(ordering: .sequentiallyConsistent) }

    public func hold() { references.add(1, ordering: .sequentiallyConsistent) }

    /// Marks the object retired unless a mapping holds it. With a mapper that
    /// holds and then checks ``isRetired`` (both sequentially consistent),
    /// at least one of the two sees the other, so memory is never freed under
    /// a mapping; at worst both give up.
    func retire() -> Bool {
        retired.store(true, ordering: .sequentiallyConsistent)
        if references.load(ordering: .sequentiallyConsistent) > 1 {
            retired.store(false, ordering: .sequentiallyConsistent)
            return false
        }
        return true
    }

    /// Undoes ``retire()`` (the destruction failed).
    func unretire() { retired.store(false, ordering: .sequentiallyConsistent) }

    /// Never drops the segment's own reference: a release with no mapping
    /// hold out is a driver bug the model absorbs instead of freeing the
    /// guest's memory under it.
    public func release() {
        var current = references.load(ordering: .relaxed)
        while current > 1 {
            let (done, seen) = references.compareExchange(expected: current, desired: current - 1,
                                                          ordering: .sequentiallyConsistent)
            if done { return }
            current = seen
        }
    }
}
