/// Constants of the amd64 kernel layout (illumos `i86pc/sys/machparam.h`,
/// `i86pc/os/startup.c`), the values both amd64 models share.
///
/// The 12608-dependent defaults (`SEGKPM_BASE`, `VALLOC_BASE`, `KERNELBASE`,
/// `USERLIMIT`) are in ``ModelDefaults``.
public enum AMD64 {
    public static let pageSize: UInt64 = 0x1000
    /// `ROUND_UP_LPAGE`: `mmu.level_size[1]`, the 2 MiB large page.
    public static let largePageSize: UInt64 = 0x20_0000
    public static let kernelText: UInt64 = 0xFFFF_FFFF_FB80_0000
    public static let kernelTextSize: UInt64 = 0x40_0000
    public static let kernelData: UInt64 = 0xFFFF_FFFF_FBC0_0000
    public static let segDebugBase: UInt64 = 0xFFFF_FFFF_FF80_0000
    public static let segDebugSize: UInt64 = 0x40_0000
    /// `MISC_VA_BASE` (= `DFTSS_VA`) with the 12718 fix: `KERNEL_TEXT` − 21 pages.
    public static let miscVABase: UInt64 = 0xFFFF_FFFF_FB7E_B000
    /// `COREHEAP_BASE`: `core_base` and `ekernelheap`.
    public static let coreHeapBase: UInt64 = 0xFFFF_FFFF_C000_0000
    /// `HEAPTEXT_SIZE`: the module-text arena at the top of the core heap.
    public static let heapTextSize: UInt64 = 64 << 20
    /// `KERNEL_REDZONE_SIZE`: one top-level page-table slot (512 GiB).
    public static let kernelRedzoneSize: UInt64 = 1 << 39
    /// `KERNELBASE − USERLIMIT`.
    public static let userLimitGap: UInt64 = 2 << 20
    public static let terabyte: UInt64 = 1 << 40
    public static let oneGig: UInt64 = 1 << 30
    /// `AMD64_VA_HOLE_END`.
    public static let vaHoleEnd: UInt64 = 0xFFFF_8000_0000_0000
    /// `AMD64_VA_HOLE_END + TERABYTE`: the lowest `segkpm_base` either rule allows.
    public static let segkpmFloor: UInt64 = 0xFFFF_8100_0000_0000
    /// `TERABYTE / 4`: memory above this triggers the large-memory adjustment.
    public static let largeMemoryThreshold: UInt64 = 256 << 30
    /// `PHYSMEM_MAX64` in bytes: the cap on `plat_dr_physmax`.
    public static let physmemMax64: UInt64 = 64 << 40
    /// `SEGKPDEFSIZE`, `SEGKPMINSIZE`, `SEGKPMAXSIZE`.
    public static let segkpDefaultSize: UInt64 = 2 << 30
    public static let segkpMinimumSize: UInt64 = 200 << 20
    public static let segkpMaximumSize: UInt64 = 8 << 30
    /// `SEGZIOMINSIZE`.
    public static let segzioMinimumSize: UInt64 = 400 << 20
    /// `SEGVMMMINSIZE` (post-12608).
    public static let segkvmmMinimumSize: UInt64 = 4 << 30
    /// `SEGMAPDEFAULT` on amd64.
    public static let segmapDefaultSize: UInt64 = 64 << 20
    /// The `toxic_size` variable: the device arena.
    public static let toxicSizeDefault: UInt64 = 1 << 30
    /// `sizeof (page_t)` on amd64.
    public static let pageStructSize: UInt64 = 120
    /// `sizeof (page_t *)`: one page-hash bucket.
    public static let pageHashEntrySize: UInt64 = 8
    /// `DEFAULTSTKSZ` in pages (segkp's quantum-cache limit is the same 5 pages).
    public static let defaultStackPages: UInt64 = 5
}

/// Constants of the 32-bit (i386, PAE) kernel layout, from the pre-12608
/// `startup.c` and `machparam.h`, with the model parameters of
/// `kernel-layout.md` §2.2.
public enum I386 {
    public static let pageSize: UInt64 = 0x1000
    /// `mmu.level_size[1]` with a PAE HAT.
    public static let largePageSize: UInt64 = 0x20_0000
    /// `ROUND_UP_4MEG`.
    public static let fourMeg: UInt64 = 0x40_0000
    /// Non-DEBUG `KERNELBASE`.
    public static let kernelBase: UInt64 = 0xD400_0000
    /// `KERNELBASE_MAX`: the cap on an eeprom `kernelbase`.
    public static let kernelBaseMaximum: UInt64 = 0xE000_0000
    /// `KERNELBASE_ABI_MIN`: the i386 ABI wants 3 GiB of user space.
    public static let kernelBaseABIMinimum: UInt64 = 0xC000_0000
    public static let kernelText: UInt64 = 0xFE80_0000
    public static let kernelTextSize: UInt64 = 0x40_0000
    public static let kernelData: UInt64 = 0xFEC0_0000
    /// `SEGDEBUGBASE` = `KERNEL_TEXT + 8 MiB` by the macro.
    public static let segDebugBase: UInt64 = 0xFF00_0000
    public static let segDebugSize: UInt64 = 0x40_0000
    /// `MISC_VA_BASE`: `KERNEL_TEXT − 0x15000`.
    public static let miscVABase: UInt64 = 0xFE7E_B000
    /// `KERNEL_REDZONE_SIZE` = `MAXBSIZE` on i386.
    public static let kernelRedzoneSize: UInt64 = 8 << 10
    /// `SEGMAPDEFAULT` and `SEGMAPMAX` on i386.
    public static let segmapDefaultSize: UInt64 = 16 << 20
    public static let segmapMaximumSize: UInt64 = 128 << 20
    /// `PHYSMEM`: physmem is capped at 16 GiB unless set with eeprom.
    public static let physmemCap: UInt64 = 16 << 30
    /// physmax is clamped at 64 GiB with a PAE HAT.
    public static let physmaxClamp: UInt64 = 64 << 30
    /// `sizeof (page_t)` in the model (the source comment's 80 bytes).
    public static let pageStructSize: UInt64 = 80
    public static let pageHashEntrySize: UInt64 = 4
    public static let heapTextSize: UInt64 = 64 << 20
    /// Addresses are 32 bits: everything must stay below this.
    public static let addressLimit: UInt64 = 1 << 32
}

/// The default bases an amd64 model starts from before the large-memory
/// adjustment: the values 12608 moved down by 1 TiB.
public struct ModelDefaults: Sendable, Hashable {
    /// `SEGKPM_BASE`.
    public var segkpmBase: UInt64
    /// `VALLOC_BASE`.
    public var vallocBase: UInt64
    /// `KERNELBASE` (= `SEGKPM_BASE − KERNEL_REDZONE_SIZE`).
    public var kernelBase: UInt64
    /// `USERLIMIT` (= `KERNELBASE − 2 MiB`).
    public var userLimit: UInt64

    public static let post12608 = ModelDefaults(
        segkpmBase: 0xFFFF_FD00_0000_0000, vallocBase: 0xFFFF_FE00_0000_0000,
        kernelBase: 0xFFFF_FC80_0000_0000, userLimit: 0xFFFF_FC7F_FFE0_0000)
    public static let pre12608 = ModelDefaults(
        segkpmBase: 0xFFFF_FE00_0000_0000, vallocBase: 0xFFFF_FF00_0000_0000,
        kernelBase: 0xFFFF_FD80_0000_0000, userLimit: 0xFFFF_FD7F_FFE0_0000)
    /// i386 has no kpm and no fixed valloc base; `kernelBase` is `KERNELBASE`
    /// before it is lowered by twice valloc, and `userLimit` equals it.
    public static let i386 = ModelDefaults(
        segkpmBase: 0, vallocBase: 0, kernelBase: I386.kernelBase, userLimit: I386.kernelBase)
}

extension LayoutModel {
    /// The default bases of this model.
    public var defaults: ModelDefaults {
        switch self {
        case .post12608: return .post12608
        case .pre12608: return .pre12608
        case .i386: return .i386
        }
    }
}
