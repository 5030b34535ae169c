/// A kernel virtual-address layout: every base and size `startup.c` would
/// compute for one configuration, as plain numbers.
///
/// A layout is a value. ``init(_:)`` (or ``compute(_:)``) computes it with
/// checked arithmetic and allocates nothing; the region list, checks, arena
/// specifications and renderings are derived from the stored numbers on
/// demand. Fields a model does not have are 0 (for example `kpmSize` on
/// i386).
public struct Layout: Sendable, Hashable {
    public let configuration: LayoutConfiguration
    public var model: LayoutModel { configuration.model }

    /// `mmu_ptob(physmem)` as the model used it (page-rounded; capped on i386).
    public internal(set) var physmem: UInt64 = 0
    /// `mmu_ptob(physmax + 1)` as the model used it (page-rounded; clamped on i386).
    public internal(set) var physmax: UInt64 = 0
    /// Pages with a `page_t`: `physmem / PAGESIZE` under the model's
    /// assumption of contiguous memory.
    public internal(set) var npages: UInt64 = 0

    /// `_kernelbase`.
    public internal(set) var kernelbase: UInt64 = 0
    /// `_userlimit` (amd64: kernelbase − 2 MiB; i386: kernelbase).
    public internal(set) var userlimit: UInt64 = 0

    /// `segkpm_base` = `kpm_vbase` (amd64).
    public internal(set) var segkpmBase: UInt64 = 0
    /// `kpm_size` (amd64).
    public internal(set) var kpmSize: UInt64 = 0
    public internal(set) var vallocBase: UInt64 = 0
    /// `valloc_sz`, with its parts.
    public internal(set) var valloc = VallocSize(pageStructs: 0, pageHash: 0, other: 0, total: 0)
    public var vallocSize: UInt64 { valloc.total }
    /// segkp as a segment (amd64); on i386 segkp is an arena in the heap and these are 0.
    public internal(set) var segkpBase: UInt64 = 0
    public internal(set) var segkpSize: UInt64 = 0
    /// segkvmm (post-12608).
    public internal(set) var segkvmmBase: UInt64 = 0
    public internal(set) var segkvmmSize: UInt64 = 0
    /// segzio, the `zfs_file_data` range (amd64).
    public internal(set) var segzioBase: UInt64 = 0
    public internal(set) var segzioSize: UInt64 = 0
    /// The device ("toxic") range (amd64).
    public internal(set) var toxicAddr: UInt64 = 0
    public internal(set) var toxicSize: UInt64 = 0
    public internal(set) var segmapStart: UInt64 = 0
    public internal(set) var segmapSize: UInt64 = 0
    /// `kernelheap`: the start of `heap_arena`.
    public internal(set) var kernelheap: UInt64 = 0
    /// The end of `heap_arena`: `ekernelheap` on amd64, `valloc_base − 64 MiB` on i386.
    public internal(set) var heapEnd: UInt64 = 0
    /// `heap_core` (amd64): `[COREHEAP_BASE, MISC_VA_BASE − 64 MiB)`.
    public internal(set) var heapCoreBase: UInt64 = 0
    public internal(set) var heapCoreSize: UInt64 = 0
    /// `heaptext`: 64 MiB below `MISC_VA_BASE` (amd64) or below `valloc_base` (i386).
    public internal(set) var heaptextBase: UInt64 = 0
    public internal(set) var heaptextSize: UInt64 = 0
    /// The MISC VA pages (TSS, LDT, IDT, GDT, debug info) below the kernel text.
    public internal(set) var miscBase: UInt64 = 0
    public internal(set) var miscSize: UInt64 = 0

    /// The large-memory adjustment (amd64).
    public internal(set) var adjustment = LargeMemoryAdjustment.notTriggered
    /// What the kernel would have logged.
    public internal(set) var notes: LayoutNotes = []
    /// Some step wrapped past 2^64 (2^32 on i386): the kernel would have
    /// panicked; the `no-wrap` check fails.
    public internal(set) var wrapped = false

    /// The heap arena's size, 0 if `kernelheap` is at or above its end.
    public var heapSize: UInt64 { heapEnd > kernelheap ? heapEnd - kernelheap : 0 }

    /// Computes the layout of `configuration`.
    public init(_ configuration: LayoutConfiguration) throws(LayoutError) {
        try configuration.validate()
        self.configuration = configuration
        switch configuration.model {
        case .post12608, .pre12608: computeAMD64()
        case .i386: computeI386()
        }
    }

    /// Computes the layout of `configuration` (same as ``init(_:)``).
    public static func compute(_ configuration: LayoutConfiguration) throws(LayoutError) -> Layout {
        try Layout(configuration)
    }

    /// The layout for `physmem` bytes under `model` with every tunable at its default.
    public static func compute(model: LayoutModel, physmem: UInt64) throws(LayoutError) -> Layout {
        try Layout(LayoutConfiguration(model: model, physmem: physmem))
    }
}
