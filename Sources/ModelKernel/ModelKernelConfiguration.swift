import KernelLayout
import PhysicalMemory

/// What a model kernel is booted from.
public struct ModelKernelConfiguration: Sendable, Hashable {
    /// The machine and the layout rules: model, physmem and the tunables.
    public var layout: LayoutConfiguration
    /// Whether page frames hold bytes. Metadata only by default: a 2 TiB
    /// machine then costs host memory only for the pages in use.
    public var backing: PhysicalMemory.Backing
    /// `kpf_max` of the `segkp_thread` and `segkp_lwp` freelist caches.
    public var stackCacheDepth: Int
    /// `kmem_flags` with `KMF_AUDIT`: every arena records the thread, the
    /// time and the stack of each allocation, which `::vmem_seg` shows (WHO,
    /// `-v`) and filters by (`-c`, `-e`, `-l`, `-t`). Off by default, as on
    /// a production kernel.
    public var auditArenas: Bool

    public init(layout: LayoutConfiguration, backing: PhysicalMemory.Backing = .metadataOnly,
                stackCacheDepth: Int = 32, auditArenas: Bool = false) {
        self.layout = layout
        self.backing = backing
        self.stackCacheDepth = stackCacheDepth
        self.auditArenas = auditArenas
    }

    /// `physmem` bytes under `model`, every tunable at its default.
    public init(model: LayoutModel = .post12608, physmem: UInt64) {
        self.init(layout: LayoutConfiguration(model: model, physmem: physmem))
    }
}

/// A segment the kernel attached to `kas` at boot, with illumos's name for it.
public struct KernelSegment: Sendable {
    /// `ktextseg`, `kvseg`, `kpseg` (segkp), `kpmseg`, `kmapseg`, ...
    public let name: String
    public let base: UInt64
    public let size: UInt64
    /// The `struct seg *` `::seg` prints.
    public let address: UInt64
    /// The ops vector's symbol.
    public let opsName: String

    public func contains(_ address: UInt64) -> Bool { address >= base && address - base < size }
}

/// A kernel thread stack from segkp.
public struct KernelStack: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        /// `segkp_thread`: `KPD_HASREDZONE | KPD_LOCKED | KPD_NO_ANON`.
        case thread
        /// `segkp_lwp`: `KPD_NOWAIT | KPD_HASREDZONE | KPD_LOCKED` (anon-backed).
        case lwp
    }
    public let kind: Kind
    /// The lowest usable address (`t_stkbase`); the red zone is the page below.
    public let base: UInt64
    public let size: UInt64
    /// The top of the stack, where it starts growing down from.
    public var top: UInt64 { base + size }
}
