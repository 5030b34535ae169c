/// Where a ``QuantumCache`` gets its slabs and gives them back: the arena,
/// through its `xalloc`/`xfree` (so slabs bypass the quantum caches).
///
/// `allocSlab(size, align)` returns the base of `size` fresh bytes aligned to
/// `align`, or nil when the arena has no room; the cache always passes
/// `align == size == slabSize`. `freeSlab(address, size)` takes back a slab
/// that `allocSlab` returned.
///
/// The cache calls both with none of its own locks held, so the backend may
/// take the arena lock and may even call this cache again. It should not
/// block for long: an allocation that must wait for room is better done by
/// the arena after the cache has returned nil.
@usableFromInline
struct QuantumCacheBackend: Sendable {
    @usableFromInline var allocSlab: @Sendable (_ size: UInt64, _ align: UInt64) -> UInt64?
    @usableFromInline var freeSlab: @Sendable (_ address: UInt64, _ size: UInt64) -> Void

    @usableFromInline
    init(allocSlab: @escaping @Sendable (_ size: UInt64, _ align: UInt64) -> UInt64?,
         freeSlab: @escaping @Sendable (_ address: UInt64, _ size: UInt64) -> Void) {
        self.allocSlab = allocSlab
        self.freeSlab = freeSlab
    }
}
