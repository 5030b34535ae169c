/// How a quantum cache cuts a slab into objects, and the arithmetic that maps
/// an address back to its slab and object number without a division.
///
/// A slab is `slabSize` bytes (a power of two) obtained from the arena aligned
/// to `slabSize`, so the slab of an address is the address with its low bits
/// cleared; it holds `objectsPerSlab = slabSize / objectSize` objects at
/// offsets `0, objectSize, 2·objectSize, ...`. The tail beyond the last whole
/// object (when `objectSize` is not a power of two) is never handed out,
/// as in kmem.
///
/// At most 64 objects per slab, so that a slab's bitmaps are single words.
/// The arena's rule, `slabSize = max(1 << highbit(3 · quantumCacheMax),
/// quantum)` with `objectSize >= quantum` and `quantumCacheMax <= 16` quanta,
/// gives at most 64 (`3 · 16 = 48 < 64`); other inputs are normalised by
/// ``normalised(objectSize:slabSize:)``.
@usableFromInline
struct SlabGeometry: Sendable {
    @usableFromInline let objectSize: UInt64
    @usableFromInline let slabSize: UInt64
    /// `slabSize - 1`: the offset of an address within its slab.
    @usableFromInline let offsetMask: UInt64
    @usableFromInline let slabShift: Int
    @usableFromInline let objectsPerSlab: Int
    /// The low `objectsPerSlab` bits set: the bitmap of a slab whose objects
    /// are all in one state.
    @usableFromInline let allObjects: UInt64
    /// `objectSize = odd << sizeShift`.
    @usableFromInline let sizeShift: Int
    /// The inverse of `odd` modulo 2^64.
    @usableFromInline let oddInverse: UInt64
    /// `(1 << sizeShift) - 1` and `objectsPerSlab`, precomputed for
    /// ``objectIndex(_:)``, which every free runs.
    @usableFromInline let lowBitsMask: UInt64
    @usableFromInline let objectCount: UInt64

    static let maximumObjectsPerSlab = 64

    /// Makes `slabSize` a power of two that holds between 1 and 64 objects of
    /// `objectSize` (itself at least 1 and at most 2^62 bytes), changing the
    /// given size as little as possible: unchanged when it already qualifies.
    static func normalised(objectSize: UInt64, slabSize: UInt64) -> (objectSize: UInt64, slabSize: UInt64) {
        let object = min(max(objectSize, 1), 1 << 62)
        var slab = max(slabSize, 2)
        if slab & (slab &- 1) != 0 {
            slab = slab > 1 << 62 ? 1 << 63 : 1 << UInt64(64 - slab.leadingZeroBitCount)
        }
        while slab < object { slab <<= 1 }
        while slab / object > UInt64(maximumObjectsPerSlab) { slab >>= 1 }
        return (object, slab)
    }

    init(objectSize requestedObject: UInt64, slabSize requestedSlab: UInt64) {
        let (object, slab) = Self.normalised(objectSize: requestedObject, slabSize: requestedSlab)
        objectSize = object
        slabSize = slab
        offsetMask = slab - 1
        slabShift = slab.trailingZeroBitCount
        objectsPerSlab = Int(slab / object)
        allObjects = objectsPerSlab == 64 ? ~0 : (1 << UInt64(objectsPerSlab)) - 1
        sizeShift = object.trailingZeroBitCount
        let odd = object >> UInt64(sizeShift)
        // Newton's iteration doubles the correct low bits each step; an odd
        // number is its own inverse to 3 bits, so 5 steps reach 96 > 64.
        var inverse = odd
        for _ in 0..<5 { inverse = inverse &* (2 &- odd &* inverse) }
        oddInverse = inverse
        lowBitsMask = (1 << UInt64(sizeShift)) - 1
        objectCount = UInt64(objectsPerSlab)
    }

    /// The base of the slab holding `address`.
    @inlinable @inline(__always)
    func slabBase(_ address: UInt64) -> UInt64 { address & ~offsetMask }

    /// The object number of `address` in its slab, or nil when `address` is
    /// not the start of an object.
    ///
    /// Exact division by multiplication with the modular inverse: for `x` a
    /// multiple of `odd`, `x · inverse mod 2^64` is `x / odd`; for any other
    /// `x` the product exceeds `(2^64 - 1) / odd`, which is at least
    /// `objectsPerSlab`, so one comparison rejects it (Granlund & Montgomery,
    /// "Division by invariant integers using multiplication", §9).
    @inlinable @inline(__always)
    func objectIndex(_ address: UInt64) -> Int? {
        // Masking shifts (`&<<`, `&>>`): the amounts are below 64 by
        // construction, and the plain operators would add range checks.
        let offset = address & offsetMask
        guard offset & lowBitsMask == 0 else { return nil }
        let q = (offset &>> UInt64(truncatingIfNeeded: sizeShift)) &* oddInverse
        return q < objectCount ? Int(truncatingIfNeeded: q) : nil
    }

    @inlinable @inline(__always)
    func address(slab base: UInt64, index: Int) -> UInt64 {
        base &+ UInt64(index) &* objectSize
    }
}
