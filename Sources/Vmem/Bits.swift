// Power-of-two arithmetic in the vocabulary of illumos <sys/sysmacros.h>.
// All are total on UInt64: wrapping where the kernel macros wrap, so the
// callers decide what an overflow means.

/// 1-based index of the highest set bit; 0 for 0 (`highbit(1) == 1`).
@inlinable @inline(__always)
func highbit(_ x: UInt64) -> Int { 64 - x.leadingZeroBitCount }

/// 1-based index of the lowest set bit; 0 for 0.
@inlinable @inline(__always)
func lowbit(_ x: UInt64) -> Int { x == 0 ? 0 : x.trailingZeroBitCount + 1 }

@inlinable @inline(__always)
func isPowerOfTwo(_ x: UInt64) -> Bool { x & (x &- 1) == 0 }

/// `x` rounded down to a multiple of the power of two `align` (P2ALIGN).
@inlinable @inline(__always)
func p2align(_ x: UInt64, _ align: UInt64) -> UInt64 { x & ~(align &- 1) }

/// `x` rounded up to a multiple of the power of two `align` (P2ROUNDUP), wrapping.
@inlinable @inline(__always)
func p2roundup(_ x: UInt64, _ align: UInt64) -> UInt64 { (x &+ align &- 1) & ~(align &- 1) }

/// The lowest `a >= x` with `a mod align == phase` (P2PHASEUP), wrapping.
@inlinable @inline(__always)
func p2phaseup(_ x: UInt64, _ align: UInt64, _ phase: UInt64) -> UInt64 {
    phase &- ((phase &- x) & (0 &- align))
}

/// Distance from `x` up to the next multiple of `align` (P2NPHASE).
@inlinable @inline(__always)
func p2nphase(_ x: UInt64, _ align: UInt64) -> UInt64 { (0 &- x) & (align &- 1) }

/// Whether `[off, off+len)` crosses a multiple of `align` (P2BOUNDARY);
/// `align == 0` means "no boundary".
@inlinable @inline(__always)
func p2boundary(_ off: UInt64, _ len: UInt64, _ align: UInt64) -> Bool {
    (off ^ (off &+ len &- 1)) > (align &- 1)
}

/// Whether `x` and `y` have the same highest set bit (P2SAMEHIGHBIT): the
/// carving fast path keeps a free segment on its list when this holds.
@inlinable @inline(__always)
func p2samehighbit(_ x: UInt64, _ y: UInt64) -> Bool { (x ^ y) < (x & y) }

/// The free list a free segment of `size` bytes lives on: floor(log2(size)).
@inlinable @inline(__always)
func freeListIndex(_ size: UInt64) -> Int { highbit(size) - 1 }
