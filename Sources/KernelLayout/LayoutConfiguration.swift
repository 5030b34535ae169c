import Vmem
/// Everything a layout is computed from.
///
/// Sizes are bytes. The tunables the kernel keeps in pages (`segkpsize`,
/// `segkvmmsize`, `segziosize`) must be whole pages; `nil` (or 0 for
/// `segkvmmsize`/`segziosize`) means "unset, use the default", as in the
/// kernel. Values that only one model reads are ignored by the others, and
/// the layout says so in ``Layout/notes``.
public struct LayoutConfiguration: Sendable, Hashable {
    /// The largest physical size accepted: 2^52 bytes (4 PiB), the x86-64
    /// architectural limit of physical addresses. Larger layouts do not
    /// exist; within the limit, a layout that runs out of VA is reported by
    /// the `no-wrap` check rather than refused.
    public static let maximumSize: UInt64 = 1 << 52

    public var model: LayoutModel
    /// `mmu_ptob(physmem)`; rounded down to whole pages.
    public var physmem: UInt64
    /// The end of physical memory, `mmu_ptob(physmax + 1)`; rounded up to a
    /// page. `nil` means equal to `physmem` (no holes).
    public var physmax: UInt64?
    /// `segkpsize` × page size. `nil`: the default 2 GiB. Outside
    /// [200 MiB, 8 GiB] the kernel resets it to 2 GiB with a warning, and so
    /// does the model. Ignored on i386 (segkp lives in the heap).
    public var segkpSize: UInt64?
    /// `segkvmmsize` × page size (post-12608 only). `nil` or 0: 4 × physmem.
    public var segkvmmSize: UInt64?
    /// `segziosize` × page size (amd64). `nil` or 0: 1.5 × physmem.
    public var segzioSize: UInt64?
    /// The `segmapsize` boot property in bytes. `nil`: `SEGMAPDEFAULT`.
    public var segmapSize: UInt64?
    /// `toxic_size`: the device arena (amd64).
    public var toxicSize: UInt64
    /// The part of `valloc_sz` the model does not derive: memsegs, memlists,
    /// page colouring, page counters, the pse table.
    public var vallocOther: UInt64
    /// `ptob(plat_dr_physmax)` (pre-12608 only; 0: no memory DR). Capped at
    /// `PHYSMEM_MAX64` (64 TiB) as the kernel does.
    public var drPhysmax: UInt64
    /// The eeprom `kernelbase` (i386 only; amd64 ignores it). `nil`: unset.
    public var eepromKernelbase: UInt64?
    /// i386: cap physmem at `PHYSMEM` (16 GiB), as the kernel does unless
    /// physmem is set with eeprom.
    public var capI386Physmem: Bool

    public init(
        model: LayoutModel = .post12608,
        physmem: UInt64,
        physmax: UInt64? = nil,
        segkpSize: UInt64? = nil,
        segkvmmSize: UInt64? = nil,
        segzioSize: UInt64? = nil,
        segmapSize: UInt64? = nil,
        toxicSize: UInt64 = AMD64.toxicSizeDefault,
        vallocOther: UInt64 = 1 << 20,
        drPhysmax: UInt64 = 0,
        eepromKernelbase: UInt64? = nil,
        capI386Physmem: Bool = true
    ) {
        self.model = model
        self.physmem = physmem
        self.physmax = physmax
        self.segkpSize = segkpSize
        self.segkvmmSize = segkvmmSize
        self.segzioSize = segzioSize
        self.segmapSize = segmapSize
        self.toxicSize = toxicSize
        self.vallocOther = vallocOther
        self.drPhysmax = drPhysmax
        self.eepromKernelbase = eepromKernelbase
        self.capI386Physmem = capI386Physmem
    }

    /// Parses a SIZE given for the parameter `name` (for example
    /// `"physmem"`), turning a `SizeParseError` into a ``LayoutError`` that
    /// names the parameter.
    public static func size(_ text: String, for name: String) throws(LayoutError) -> UInt64 {
        do {
            return try SizeParser.parse(text)
        } catch {
            throw .unparsableSize(name: name, text: text, reason: error)
        }
    }

    /// Refuses configurations that no kernel could be given.
    @inlinable
    public func validate() throws(LayoutError) {
        let page = AMD64.pageSize
        let limit = Self.maximumSize
        if physmem < page { throw .zeroSize(name: "physmem", value: physmem) }
        if physmem > limit {
            throw .outOfRange(name: "physmem", value: physmem, minimum: page, maximum: limit)
        }
        if let physmax {
            if physmax < physmem { throw .physmaxBelowPhysmem(physmax: physmax, physmem: physmem) }
            if physmax > limit {
                throw .outOfRange(name: "physmax", value: physmax, minimum: physmem, maximum: limit)
            }
        }
        if drPhysmax > limit {
            throw .outOfRange(name: "dr-physmax", value: drPhysmax, minimum: 0, maximum: limit)
        }
        if drPhysmax % page != 0 { throw .unaligned(name: "dr-physmax", value: drPhysmax, alignment: page) }
        try Self.checkPages("segkpsize", segkpSize)
        try Self.checkPages("segkvmmsize", segkvmmSize)
        try Self.checkPages("segziosize", segzioSize)
        if let segmapSize, segmapSize > limit {
            throw .outOfRange(name: "segmapsize", value: segmapSize, minimum: 0, maximum: limit)
        }
        if toxicSize < page { throw .zeroSize(name: "toxic-size", value: toxicSize) }
        try Self.checkPages("toxic-size", toxicSize)
        if vallocOther > limit {
            throw .outOfRange(name: "valloc-other", value: vallocOther, minimum: 0, maximum: limit)
        }
        if let eepromKernelbase, eepromKernelbase >= I386.addressLimit {
            throw .outOfRange(name: "kernelbase", value: eepromKernelbase, minimum: 0,
                              maximum: I386.addressLimit - 1)
        }
    }

    @inlinable
    static func checkPages(_ name: String, _ value: UInt64?) throws(LayoutError) {
        guard let value else { return }
        if value > maximumSize {
            throw .outOfRange(name: name, value: value, minimum: 0, maximum: maximumSize)
        }
        if value % AMD64.pageSize != 0 {
            throw .unaligned(name: name, value: value, alignment: AMD64.pageSize)
        }
    }
}
