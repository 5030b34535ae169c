/// Where an arena gets more spans when it runs out, and where it gives them
/// back (illumos `afunc`/`ffunc` with `source`, or `vmem_xcreate`'s enlarging
/// import).
///
/// The import receives the size the arena needs and the alignment it would
/// like (a power of two, at least the arena quantum) and returns the span it
/// obtained, which may be larger than asked (`vmem_xcreate`). It throws to
/// refuse. The release receives exactly a span the import returned.
public struct ArenaSource: Sendable {
    public typealias Import = @Sendable (_ size: UInt64, _ align: UInt64) throws(VmemError) -> (base: UInt64, size: UInt64)
    public typealias Release = @Sendable (_ base: UInt64, _ size: UInt64) -> Void

    /// The quantum of the source (the `aq` of vmem.md §3 is the larger of this
    /// and the importing arena's quantum).
    public var quantum: UInt64
    /// A label for displays (the parent arena's name, or "custom").
    public var name: String
    /// The parent arena, when the source is one (for `::vmem` indentation).
    public let parent: Arena?
    public var importSpan: Import
    public var releaseSpan: Release

    public init(name: String = "custom", quantum: UInt64, import: @escaping Import, release: @escaping Release) {
        self.name = name; self.quantum = quantum; self.parent = nil
        self.importSpan = `import`; self.releaseSpan = release
    }

    /// Import from `parent` with its default (instant-fit, no-sleep) allocation
    /// and release with its free: the usual vmem hierarchy. The alignment
    /// asked for is honoured (``Arena/allocSpan(_:align:)``).
    public static func arena(_ parent: Arena) -> ArenaSource {
        ArenaSource(parent: parent, quantum: parent.quantum, name: parent.name,
                    import: { (size, align) throws(VmemError) in (try parent.allocSpan(size, align: align), size) },
                    release: { base, size in parent.freeSpan(base, size: size) })
    }

    /// Like ``arena(_:)`` with custom import and release functions that still
    /// name `parent` as the source for displays (illumos `segkmem_alloc` on
    /// top of `heap`, for example).
    public static func arena(_ parent: Arena, import: @escaping Import, release: @escaping Release) -> ArenaSource {
        ArenaSource(parent: parent, quantum: parent.quantum, name: parent.name, import: `import`, release: release)
    }

    init(parent: Arena?, quantum: UInt64, name: String, import: @escaping Import, release: @escaping Release) {
        self.parent = parent; self.quantum = quantum; self.name = name
        self.importSpan = `import`; self.releaseSpan = release
    }
}

/// Creation flags (illumos `VMC_*`, plus VMKit's own).
public struct ArenaFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// An arena of numbers rather than memory (`VMC_IDENTIFIER`), usually
    /// quantum 1 with next fit. As in illumos, such an arena may only import
    /// from another identifier arena (and a memory arena not from one), and
    /// its leak report counts identifiers rather than bytes.
    public static let identifier = ArenaFlags(rawValue: 1 << 0)
    /// Constrained requests (nocross, minaddr, maxaddr) may import from the
    /// source. Off in illumos; off by default.
    public static let constrainedImport = ArenaFlags(rawValue: 1 << 1)
    /// Imports ask the source for a span aligned to the request's alignment
    /// (when it is above the quantum), so an aligned request imports only
    /// `size + phase` rounded to the quantum instead of `size + align -
    /// quantum` more to align within the span (`VMC_XALIGN`). Both built-in
    /// sources (``ArenaSource/arena(_:)`` and ModelKernel's page-backed
    /// arenas) honour it, through ``Arena/allocSpan(_:align:)``; a custom
    /// source that returns a span the request cannot use makes the import
    /// fail (the span goes straight back).
    public static let alignedImport = ArenaFlags(rawValue: 1 << 2)
}

/// Debugging aids (illumos `KMF_AUDIT`, `vmem_mtbf`).
public struct ArenaDebugging: Sendable, Hashable {
    /// Record thread, timestamp and call stack for each allocation.
    public var audit: Bool = false
    /// When non-zero, a no-sleep allocation fails on average once per this
    /// many allocations (`vmem_mtbf`).
    public var meanTimeBetweenFailures: UInt64 = 0
    /// The seed of the failure-injection generator, for reproducible runs.
    public var failureSeed: UInt64 = 0x5EED
    /// Refuse a free of a quantum-cached size whose address is not an
    /// allocated object of its cache (a double free, or an address never
    /// handed out) with ``VmemError/badFree(address:size:)``. On by default.
    /// Off, as kmem runs without `KMF_DEBUG`, the cache fast paths touch no
    /// shared memory at all (the check writes a byte per object, and objects
    /// move between CPUs), but such a free is accepted and the address may
    /// later be handed out twice; a free at an address that is not even at an
    /// object's offset is still refused.
    public var checkCachedFrees: Bool = true
    public init(audit: Bool = false, meanTimeBetweenFailures: UInt64 = 0, failureSeed: UInt64 = 0x5EED,
                checkCachedFrees: Bool = true) {
        self.audit = audit; self.meanTimeBetweenFailures = meanTimeBetweenFailures; self.failureSeed = failureSeed
        self.checkCachedFrees = checkCachedFrees
    }
}

extension Arena {
    /// A span for an importing arena: `size` bytes by instant fit, aligned
    /// to `align` (a power of two). A plain ``alloc(_:policy:fromEnd:wait:)``
    /// when the quantum already gives that alignment — the exact import of
    /// vmem.md §3 — else an
    /// ``xalloc(_:align:phase:nocross:minaddr:maxaddr:policy:fromEnd:wait:)``.
    /// Give it back with ``freeSpan(_:size:)``.
    public func allocSpan(_ size: UInt64, align: UInt64) throws(VmemError) -> UInt64 {
        if align <= quantum { return try alloc(size) }
        return try xalloc(size, align: align)
    }

    /// Gives back a span from ``allocSpan(_:align:)``. A span of a size the
    /// quantum caches serve may be a cached object (a plain `alloc`) or a
    /// segment (an aligned `xalloc`): the segment is tried first, since a
    /// cache must never take an address it did not hand out.
    public func freeSpan(_ base: UInt64, size: UInt64) {
        if quantumCacheCount != 0 && cacheSlot(size) < quantumCacheCount, (try? xfree(base, size: size)) != nil { return }
        try? free(base, size: size)
    }
}
