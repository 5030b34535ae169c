/// The invariants a layout is checked against (`kernel-layout.md` §3). The
/// raw values are the stable names used in JSON and by `vmkit layout sweep`.
///
/// A check is *ok* when the layout is sound in that respect; a name that
/// describes a fault (`segkpm-base-above-default`) is ok when the fault is
/// absent.
public enum LayoutCheck: String, CaseIterable, Sendable, Hashable {
    /// Regions are in the documented order and none overlaps the next.
    case regionsOrderedNoOverlap = "regions-ordered-no-overlap"
    /// Every base and size the kernel rounds to `ROUND_UP_LPAGE` is 2 MiB aligned.
    case aligned2M = "aligned-2m"
    /// `kpm_vbase + kpm_size <= valloc_base` (else "not enough room for kpm!").
    case kpmBelowValloc = "kpm-below-valloc"
    /// `kernelheap` lies below the end of the heap.
    case heapNonempty = "heap-nonempty"
    /// The heap is at least 1.5 × physmem (the sizing rule of illumos 6914).
    case heapAtLeast1_5xPhysmem = "heap-at-least-1.5x-physmem"
    /// The adjustment computed a `segkpm_base` above `SEGKPM_BASE` and the
    /// clamp pulled it back: the pre-12608 miscalculation.
    case segkpmBaseAboveDefault = "segkpm-base-above-default"
    /// kernelbase is at or above `AMD64_VA_HOLE_END + 1 TiB` (kernel-layout.md
    /// §3). It fails whenever the adjustment floors `segkpm_base` there
    /// (kernelbase is then 512 GiB lower), and when `segkpm_base` lands less
    /// than 512 GiB above the floor.
    case kernelbaseAboveHole = "kernelbase-above-hole"
    /// No address computation wrapped past 2^64 (2^32 on i386).
    case noWrap = "no-wrap"

    /// The stable name.
    public var name: String { rawValue }

    /// The checks that apply to `model`, in report order.
    public static func applicable(to model: LayoutModel) -> [LayoutCheck] {
        switch model {
        case .post12608, .pre12608:
            return [.regionsOrderedNoOverlap, .aligned2M, .kpmBelowValloc, .heapNonempty,
                    .heapAtLeast1_5xPhysmem, .segkpmBaseAboveDefault, .kernelbaseAboveHole, .noWrap]
        case .i386:
            // KERNELBASE_ABI_MIN is a logged note on i386 (LayoutNotes), not an invariant.
            return [.regionsOrderedNoOverlap, .aligned2M, .heapNonempty, .noWrap]
        }
    }

    @usableFromInline
    var bit: UInt16 {
        switch self {
        case .regionsOrderedNoOverlap: return 1 << 0
        case .aligned2M: return 1 << 1
        case .kpmBelowValloc: return 1 << 2
        case .heapNonempty: return 1 << 3
        case .heapAtLeast1_5xPhysmem: return 1 << 4
        case .segkpmBaseAboveDefault: return 1 << 5
        case .kernelbaseAboveHole: return 1 << 6
        case .noWrap: return 1 << 7
        }
    }
}

/// A set of checks as a bit mask, so that checking a layout allocates nothing.
public struct LayoutCheckSet: Sendable, Hashable, Sequence {
    public var rawValue: UInt16
    public init(rawValue: UInt16 = 0) { self.rawValue = rawValue }

    public init(_ checks: [LayoutCheck]) {
        rawValue = 0
        for check in checks { insert(check) }
    }

    @inlinable
    public mutating func insert(_ check: LayoutCheck) { rawValue |= check.bit }
    @inlinable
    public func contains(_ check: LayoutCheck) -> Bool { rawValue & check.bit != 0 }
    public var isEmpty: Bool { rawValue == 0 }
    public var count: Int { rawValue.nonzeroBitCount }

    /// The members in declaration order.
    public func makeIterator() -> IndexingIterator<[LayoutCheck]> {
        LayoutCheck.allCases.filter { contains($0) }.makeIterator()
    }
}

/// One check's outcome with a sentence that gives the numbers.
public struct CheckResult: Sendable, Hashable {
    public var check: LayoutCheck
    /// Passed. False for a failed check and for a skipped one.
    public var ok: Bool
    /// Not applicable to this layout: its numbers were computed past a wrap.
    public var skipped: Bool
    public var detail: String
    public var name: String { check.name }
    /// `ok`, `FAIL` or `skip`, as the table prints it.
    public var status: String { skipped ? "skip" : ok ? "ok" : "FAIL" }

    public init(check: LayoutCheck, ok: Bool, skipped: Bool = false, detail: String) {
        self.check = check
        self.ok = ok && !skipped
        self.skipped = skipped
        self.detail = detail
    }
}
