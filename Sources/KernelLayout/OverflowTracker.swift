/// Checked arithmetic for layout formulas that records, instead of trapping,
/// whether any step wrapped past 2^64 (or, for i386, past 2^32).
///
/// The kernel panics ("not enough kernel VA to support memory size") where a
/// layout wraps; the model finishes the computation with wrapped values and
/// lets the `no-wrap` check report it.
@usableFromInline
struct OverflowTracker {
    @usableFromInline var wrapped = false
    /// Values must stay at or below this (`UInt64.max`, or `2^32 − 1` on i386).
    @usableFromInline let limit: UInt64

    @inlinable
    init(limit: UInt64 = .max) { self.limit = limit }

    @inlinable
    mutating func note(_ value: UInt64) -> UInt64 {
        if value > limit { wrapped = true }
        return value
    }

    @inlinable
    mutating func add(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (r, o) = a.addingReportingOverflow(b)
        if o { wrapped = true }
        return note(r)
    }

    @inlinable
    mutating func sub(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (r, o) = a.subtractingReportingOverflow(b)
        if o { wrapped = true }
        return r
    }

    @inlinable
    mutating func mul(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (r, o) = a.multipliedReportingOverflow(by: b)
        if o { wrapped = true }
        return note(r)
    }

    /// `P2ROUNDUP(x, align)` for a power-of-two `align`.
    @inlinable
    mutating func roundUp(_ x: UInt64, _ align: UInt64) -> UInt64 {
        let (r, o) = x.addingReportingOverflow(align &- 1)
        if o { wrapped = true }
        return note(r & ~(align &- 1))
    }
}

/// `P2ALIGN(x, align)`: round down to a power-of-two boundary.
@inlinable
func alignDown(_ x: UInt64, _ align: UInt64) -> UInt64 { x & ~(align &- 1) }

/// `highbit(x)`: the 1-based index of the highest set bit, 0 for 0.
@inlinable
func highbit(_ x: UInt64) -> UInt64 { UInt64(64 - x.leadingZeroBitCount) }
