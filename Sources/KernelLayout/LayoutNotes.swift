/// Things the kernel would log while computing this layout: tunables it
/// reset or ignored, values it capped. A bit set, so that computing a layout
/// allocates nothing; ``Layout/noteMessages`` spells them out.
public struct LayoutNotes: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// `segkpsize` outside [200 MiB, 8 GiB]: reset to 2 GiB ("Illegal value for segkpsize").
    public static let segkpSizeReset = LayoutNotes(rawValue: 1 << 0)
    /// `segkpsize` given for i386, where segkp imports from the heap.
    public static let segkpSizeIgnored = LayoutNotes(rawValue: 1 << 1)
    /// `segkvmmsize` given for a model without segkvmm.
    public static let segkvmmSizeIgnored = LayoutNotes(rawValue: 1 << 2)
    /// `segziosize` given for i386 (`segzio_fromheap`).
    public static let segzioSizeIgnored = LayoutNotes(rawValue: 1 << 3)
    /// `toxic_size` given for i386 (device mappings share the heap).
    public static let toxicSizeIgnored = LayoutNotes(rawValue: 1 << 4)
    /// `plat_dr_physmax` given for a model without memory DR.
    public static let drPhysmaxIgnored = LayoutNotes(rawValue: 1 << 5)
    /// `plat_dr_physmax` above `PHYSMEM_MAX64`: capped at 64 TiB.
    public static let drPhysmaxCapped = LayoutNotes(rawValue: 1 << 6)
    /// eeprom `kernelbase` on amd64: "kernelbase cannot be changed on 64-bit systems".
    public static let kernelbaseIgnored = LayoutNotes(rawValue: 1 << 7)
    /// eeprom `kernelbase` above `KERNELBASE_MAX`: capped.
    public static let kernelbaseCapped = LayoutNotes(rawValue: 1 << 8)
    /// i386: physmem limited to `PHYSMEM` (16 GiB) "due to virtual address space".
    public static let physmemCapped = LayoutNotes(rawValue: 1 << 9)
    /// i386: memory above 64 GiB cannot be addressed with PAE and is dropped.
    public static let physmaxClamped = LayoutNotes(rawValue: 1 << 10)
    /// physmem or physmax was not a whole number of pages and was rounded.
    public static let sizeRoundedToPages = LayoutNotes(rawValue: 1 << 11)
    /// i386: kernelbase below `KERNELBASE_ABI_MIN` (0xC0000000), which the
    /// kernel only logs ("not i386 ABI compliant"): a note, not a failed check.
    public static let kernelbaseBelowABIMinimum = LayoutNotes(rawValue: 1 << 12)
}
