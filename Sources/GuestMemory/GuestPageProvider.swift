import HostMemory

/// Where a guest's system memory comes from, when someone other than the
/// VMM must know: a host kernel that accounts for guest pages (illumos puts
/// them in `vmm_alloc_arena`, named on `kvps[KV_VVP]`, so `::memstat` shows
/// them as VMM Memory and a crash dump leaves them out), a reservoir of
/// memory set aside for guests, a test that counts allocations.
///
/// A ``GuestMemory`` made with ``GuestMemory/init(limit:nested:pageProvider:)``
/// asks its provider for the backing of every *system-memory* segment when
/// the segment is allocated, and tells it when the backing is given back
/// (``GuestMemory/destroy()``, or the segment being deallocated with its
/// guest). Device memory (a boot ROM, a framebuffer) is the VMM's own and
/// never goes through the provider. Without a provider nothing changes:
/// every segment is a `memfd` or anonymous memory of the guest's own.
///
/// The contract, which is all either side knows of the other:
///
/// * ``provideBacking(forSegment:length:)`` is called once per system
///   segment, under the guest's map lock, after every check of the
///   request has passed and before the segment exists. Throwing refuses the
///   allocation and leaves the guest unchanged.
/// * ``releaseBacking(_:ofSegment:length:)`` is called exactly once for
///   each backing provided, also when creating the segment fails after the
///   provider said yes. It must not call back into the guest.
/// * The provider must not call into the guest from `provideBacking`
///   either (the map lock is held), and must be safe to call from any thread.
public protocol GuestPageProvider: AnyObject, Sendable {
    /// The backing of system-memory segment `id` of `length` bytes (a
    /// non-zero multiple of 4 KiB). Throws to refuse, naming why in the
    /// error (``GuestMemoryError/host(_:)`` with the provider's own message
    /// for a provider out of memory).
    func provideBacking(forSegment id: Int, length: UInt64) throws(GuestMemoryError) -> GuestPageBacking

    /// Takes back a backing this provider returned for segment `id`.
    func releaseBacking(_ backing: GuestPageBacking, ofSegment id: Int, length: UInt64)
}

/// What a ``GuestPageProvider`` hands out for one system segment.
public struct GuestPageBacking: Sendable {
    /// The provider's name for the pages: for a model kernel, the kernel
    /// virtual address in `kvmmseg` where they are mapped. Inspectors print it.
    public var address: UInt64
    /// Host memory to map instead of the segment's own `memfd`, or nil to let
    /// the guest create its own as usual (a reservoir hands out its own
    /// memory this way). At least the segment's length, and shareable (a
    /// `memfd` or a file), since a range may be mapped at several GPAs.
    public var object: MemoryObject?

    public init(address: UInt64, object: MemoryObject? = nil) {
        self.address = address
        self.object = object
    }
}

extension GuestMemory {
    /// A guest-physical space like ``init(limit:nested:hostLayout:)`` whose system-memory
    /// segments take their backing from `pageProvider`.
    public convenience init(limit: UInt64, nested mode: NestedTableMode = NestedTableMode(),
                            pageProvider: any GuestPageProvider) throws(GuestMemoryError) {
        try self.init(limit: limit, nested: mode)
        self.pageProvider = pageProvider
    }
}

extension MemorySegment {
    /// Gives the provided backing back to its provider, once: called by
    /// ``GuestMemory/destroy()`` and, for a guest dropped without it, when the
    /// segment is deallocated.
    func releaseProvidedBacking() {
        guard let provider = pageProvider, let backing = pageBacking,
              !backingReleased.exchange(true, ordering: .acquiringAndReleasing) else { return }
        provider.releaseBacking(backing, ofSegment: id, length: length)
    }
}
