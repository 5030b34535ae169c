import Synchronization
import CVmemSupport

/// A vmem arena: a set of integer ranges handed out in constant time.
///
/// See the module article for the structures and their invariants. Every
/// public method is thread-safe: one mutex per arena guards its segments, and
/// sizes up to ``quantumCacheMax`` are served by per-CPU quantum caches
/// without taking it.
public final class Arena: @unchecked Sendable {
    /// Longest accepted name (illumos `VMEM_NAMELEN` less the NUL).
    public static let maximumNameLength = 30
    /// At most this many quantum caches (illumos `VMEM_NQCACHE_MAX`).
    public static let maximumQuantumCaches: UInt64 = 16
    /// The largest `quantumCacheMax` in bytes whatever the quantum: a slab
    /// holds three of the largest objects rounded up to a power of two,
    /// which must still fit in 64 bits.
    public static let largestQuantumCacheMax: UInt64 = 1 << 61

    /// The largest `quantumCacheMax` an arena of `quantum` accepts: 16
    /// quanta, and no more than ``largestQuantumCacheMax``.
    public static func quantumCacheLimit(quantum: UInt64) -> UInt64 {
        let (sixteen, o) = quantum.multipliedReportingOverflow(by: maximumQuantumCaches)
        return o ? largestQuantumCacheMax : min(sixteen, largestQuantumCacheMax)
    }
    /// Tags kept in reserve for one operation plus nested populators (illumos
    /// `VMEM_MINFREE`).
    @usableFromInline static let tagReserve = 16
    /// Bytes of tag memory taken from a tag arena at a time.
    static let tagSlabBytes: UInt64 = 4096

    public let name: String
    public let quantum: UInt64
    public let quantumCacheMax: UInt64
    public let minimumImport: UInt64
    public let flags: ArenaFlags
    public let debugging: ArenaDebugging
    public let source: ArenaSource?
    /// The arena this one imports from, if its source is an arena.
    public var parent: Arena? { source?.parent }
    /// Creation order, process-wide (mdb walks arenas in this order).
    public let sequence: Int

    @usableFromInline let lock = ArenaLock()
    @usableFromInline let core: UnsafeMutablePointer<ArenaCore>
    /// log2(quantum), here as well as in the core: the cache paths read it
    /// first thing, and one load fewer in their chain of dependent loads shows.
    @usableFromInline let qshift: UInt64
    /// How many quantum caches there are (`quantumCacheMax / quantum`).
    @usableFromInline let quantumCacheCount: UInt64
    @usableFromInline let hasSource: Bool
    /// Neither audit records nor failure injection: `alloc` and `xfree` may
    /// take their fast paths.
    @usableFromInline let plainPaths: Bool
    /// Owns the quantum caches.
    var qcaches: ContiguousArray<QuantumCache> = []
    /// The same caches, unretained, for the fast path: reading a class
    /// reference out of a `var` array costs an exclusivity check and a
    /// retain/release pair, more than the cache operation itself.
    @usableFromInline let qcacheTable: UnsafeMutablePointer<Unmanaged<QuantumCache>>
    // The fields below are guarded by `lock`.
    /// Set by destroy(); lives in the core so hot paths read it without
    /// dynamic exclusivity checks.
    @usableFromInline var destroyed: Bool {
        @inline(__always) get { core.pointee.destroyed }
        @inline(__always) set { core.pointee.destroyed = newValue }
    }
    @usableFromInline var waiters: Int {
        @inline(__always) get { core.pointee.waiters }
        @inline(__always) set { core.pointee.waiters = newValue }
    }
    var failureState: UInt64
    var audits: [UInt64: AuditRecord] = [:]
    /// Where the boundary tags come from, when not from the heap; nil as
    /// well when the arena takes them from itself (``tagsFromSelf``: a
    /// reference to itself would keep it alive for ever).
    var tagArena: Arena?
    var tagsFromSelf = false
    var tagBacking: TagBacking = .accounting
    /// ``TagBacking/accounting``: the slabs this arena was charged.
    var tagSlabs: [(base: UInt64, size: UInt64)] = []
    /// Arenas whose tag tables live in memory this arena handed out
    /// (``TagBacking/memory``): while there are any, destroying this arena
    /// keeps its spans, which hold their tables.
    var tagClients = 0
    /// Who may refill from a tag arena, and who does now: the process's one
    /// ``TagPopulation``. (A test gives a group of arenas a private one, so
    /// that other tests running meanwhile do not take its lock.)
    var population = TagPopulation.shared
    /// Threads asleep in this arena; read without the lock by quantum-cache frees.
    @usableFromInline let sleepers = Atomic<Int>(0)

    /// Creates an arena (illumos `vmem_create` / `vmem_xcreate`).
    ///
    /// - Parameters:
    ///   - name: the arena's name: not empty, at most ``maximumNameLength`` bytes.
    ///   - base: the start of an initial span, added when `size` is non-zero.
    ///   - size: the length of that initial span; 0 for none.
    ///   - quantum: the unit of every address and size; a power of two.
    ///   - source: where to import spans from when out of room.
    ///   - quantumCacheMax: sizes up to this (at most 16 quanta and 2^61 bytes) are served
    ///     by quantum caches.
    ///   - minimumImport: the least the arena imports at a time.
    ///   - flags: the arena's behaviour options (``ArenaFlags``).
    ///   - debugging: auditing, failure injection and cached-free checks
    ///     (``ArenaDebugging``).
    public init(name: String, base: UInt64 = 0, size: UInt64 = 0, quantum: UInt64 = 1,
                source: ArenaSource? = nil, quantumCacheMax: UInt64 = 0, minimumImport: UInt64 = 0,
                flags: ArenaFlags = [], debugging: ArenaDebugging = .init()) throws(VmemError) {
        guard !name.isEmpty, name.utf8.count <= Self.maximumNameLength else { throw .invalidName(name) }
        guard quantum != 0, isPowerOfTwo(quantum) else { throw .quantumNotPowerOfTwo(quantum: quantum) }
        guard quantumCacheMax & (quantum - 1) == 0 else {
            throw .notQuantumAligned(parameter: "quantumCacheMax", value: quantumCacheMax, quantum: quantum)
        }
        let limit = Self.quantumCacheLimit(quantum: quantum)
        guard quantumCacheMax <= limit else {
            throw .quantumCacheTooLarge(quantumCacheMax: quantumCacheMax, limit: limit)
        }
        guard minimumImport & (quantum - 1) == 0 else {
            throw .notQuantumAligned(parameter: "minimumImport", value: minimumImport, quantum: quantum)
        }
        if let source, source.quantum == 0 || !isPowerOfTwo(source.quantum) {
            throw .quantumNotPowerOfTwo(quantum: source.quantum)
        }
        if let parent = source?.parent, parent.flags.contains(.identifier) != flags.contains(.identifier) {
            throw .notSupported(flags.contains(.identifier)
                ? "identifier arena \(name) cannot import from memory arena \(parent.name)"
                : "memory arena \(name) cannot import from identifier arena \(parent.name)")
        }
        self.name = name
        self.quantum = quantum
        self.qshift = UInt64(highbit(quantum) - 1)
        self.quantumCacheMax = quantumCacheMax
        self.quantumCacheCount = quantumCacheMax >> qshift
        self.minimumImport = minimumImport
        self.flags = flags
        self.debugging = debugging
        self.source = source
        self.hasSource = source != nil
        self.plainPaths = !debugging.audit && debugging.meanTimeBetweenFailures == 0
        self.failureState = debugging.failureSeed
        self.sequence = ArenaRegistry.shared.nextSequence()
        core = .allocate(capacity: 1)
        core.initialize(to: ArenaCore(quantum: quantum))
        qcacheTable = .allocate(capacity: Int(Self.maximumQuantumCaches))
        core.pointee.reserveTags(Self.tagReserve)
        // Every stored property is set, so if this throws, deinit releases
        // the core and the table.
        if size != 0 { try add(base: base, size: size) }
        if quantumCacheMax != 0 { makeQuantumCaches() }
        ArenaRegistry.shared.register(self)
    }

    deinit {
        ArenaRegistry.shared.unregister(self)
        releaseTagMemory()
        // The caches' slabs are segments of this arena, which goes away whole.
        qcacheTable.deallocate()
        core.pointee.deallocate()
        core.deinitialize(count: 1)
        core.deallocate()
    }

    // MARK: Spans

    /// Adds a span (illumos `vmem_add`). It must not overlap a span the arena has.
    public func add(base: UInt64, size: UInt64) throws(VmemError) {
        try checkSize(size)
        guard base & (quantum - 1) == 0 else { throw .notQuantumAligned(parameter: "base", value: base, quantum: quantum) }
        let (end, o) = base.addingReportingOverflow(size)
        guard !o else { throw .overflow(base: base, size: size) }
        lock.lock(); defer { lock.unlock() }
        guard !destroyed else { throw .arenaDestroyed(arena: name) }
        // The refill may drop the lock, so it comes before the overlap check.
        try refillTagsIfNeeded(size)
        if let (s, e) = overlappingSpan(base, end) {
            throw .spanOverlap(base: base, size: size, existingStart: s, existingEnd: e)
        }
        _ = core.pointee.createSpan(start: base, end: end, imported: false)
        if waiters > 0 { lock.broadcast() }
    }

    /// The first span overlapping `[start, end)`, lock held.
    func overlappingSpan(_ start: UInt64, _ end: UInt64) -> (UInt64, UInt64)? {
        let tags = core.pointee.tags
        var s = tags[Int(ReservedTag.spans)].next
        while s != ReservedTag.spans {
            if tags[Int(s)].start < end && start < tags[Int(s)].end { return (tags[Int(s)].start, tags[Int(s)].end) }
            s = tags[Int(s)].next
        }
        return nil
    }

    // MARK: Validation

    @inlinable @inline(__always)
    func checkSize(_ size: UInt64) throws(VmemError) {
        if size == 0 { throw .zeroSize }
        if size & (quantum &- 1) != 0 { throw .sizeNotQuantumMultiple(size: size, quantum: quantum) }
    }

    /// The argument checks of `vmem_xalloc`, in its order, as errors.
    func makeConstraints(size: UInt64, align alignArg: UInt64, phase: UInt64, nocross: UInt64,
                         minaddr: UInt64, maxaddr: UInt64, fromEnd: Bool) throws(VmemError) -> Constraints {
        try checkSize(size)
        let q = quantum &- 1
        if alignArg & q != 0 { throw .notQuantumAligned(parameter: "align", value: alignArg, quantum: quantum) }
        if phase & q != 0 { throw .notQuantumAligned(parameter: "phase", value: phase, quantum: quantum) }
        if nocross & q != 0 { throw .notQuantumAligned(parameter: "nocross", value: nocross, quantum: quantum) }
        if minaddr & q != 0 { throw .notQuantumAligned(parameter: "minaddr", value: minaddr, quantum: quantum) }
        if maxaddr & q != 0 { throw .notQuantumAligned(parameter: "maxaddr", value: maxaddr, quantum: quantum) }
        let align = alignArg == 0 ? quantum : alignArg
        if !isPowerOfTwo(align) { throw .notPowerOfTwo(parameter: "align", value: align) }
        if !isPowerOfTwo(nocross) { throw .notPowerOfTwo(parameter: "nocross", value: nocross) }
        if phase >= align { throw .phaseNotBelowAlign(phase: phase, align: align) }
        if nocross != 0 {
            let (ps, o) = phase.addingReportingOverflow(size)
            if align > nocross || o || p2roundup(ps, align) > nocross || p2roundup(ps, align) < ps {
                throw .overconstrained(size: size, align: align, phase: phase, nocross: nocross)
            }
        }
        if minaddr != 0 || maxaddr != 0 {
            let hi = maxaddr == 0 ? UInt64.max : maxaddr &- 1   // inclusive
            if maxaddr != 0 && maxaddr <= minaddr || hi &- minaddr < size &- 1 {
                throw .rangeCannotHoldSize(minaddr: minaddr, maxaddr: maxaddr, size: size)
            }
        }
        return Constraints(size: size, align: align, phase: phase, nocross: nocross,
                           minaddr: minaddr, maxaddr: maxaddr, fromEnd: fromEnd)
    }

    // MARK: Allocation

    /// Allocates `size` bytes (illumos `vmem_alloc`).
    ///
    /// Sizes up to ``quantumCacheMax`` come from the quantum caches; others
    /// use `policy`. `fromEnd` places the allocation at the high end of the
    /// chosen segment (illumos `VM_ENDALLOC`).
    @inlinable
    public func alloc(_ size: UInt64, policy: AllocationPolicy = .instantFit, fromEnd: Bool = false,
                      wait: WaitPolicy = .noSleep) throws(VmemError) -> UInt64 {
        // The test of the count first: arenas without caches pay one comparison.
        if quantumCacheCount != 0 {
            let slot = cacheSlot(size)
            if slot < quantumCacheCount { return try cacheAlloc(slot, size, wait: wait) }
        }
        if policy == .bestFit || policy == .firstFit {
            return try allocBySearch(size, policy: policy, fromEnd: fromEnd, wait: wait)
        }
        if policy == .instantFit, let addr = allocInstantFit(size, fromEnd: fromEnd) { return addr }
        return try allocGeneral(size, policy: policy, fromEnd: fromEnd, wait: wait)
    }

    /// Instant fit's common case: it succeeds at once, on an arena with
    /// nothing to audit or inject; nil sends the caller down the general
    /// path, which makes every check in its usual order. It takes only what
    /// it needs (no wait policy, no error path), so that little is live in
    /// it besides the arena's own pointers.
    @usableFromInline @inline(never)
    func allocInstantFit(_ size: UInt64, fromEnd: Bool) -> UInt64? {
        guard plainPaths && size != 0 && size & (quantum &- 1) == 0 else { return nil }
        lock.lock()
        defer { lock.unlock() }
        if destroyed || core.pointee.availableTags < Self.tagReserve { return nil }
        let t = core.pointee.allocInstant(size, fromEnd: fromEnd)
        return t == 0 ? nil : core.pointee.tags[Int(t)].start
    }

    /// `alloc` with best or first fit. Its common case, a search that
    /// succeeds at once, goes without the general path's layers (failure
    /// injection, audit, the import-wait loop); anything else starts over on
    /// that path.
    @usableFromInline @inline(never)
    func allocBySearch(_ size: UInt64, policy: AllocationPolicy, fromEnd: Bool,
                       wait: WaitPolicy) throws(VmemError) -> UInt64 {
        if plainPaths && size != 0 && size & (quantum &- 1) == 0 {
            lock.lock()
            if !destroyed && core.pointee.availableTags >= Self.tagReserve {
                let list = core.pointee.firstListToSearch(size, policy: policy)
                let (t, a) = core.pointee.searchUnconstrained(size, fromEnd: fromEnd, from: list,
                                                             bestFit: policy == .bestFit)
                if t != 0 {
                    _ = core.pointee.carve(t, at: a, size: size)
                    lock.unlock()
                    return a
                }
                // The general path searches again. This search counted
                // nothing: `searchCount` counts segments that fit, and
                // without constraints the first one that fits ends a search.
            }
            lock.unlock()
        }
        return try allocGeneral(size, policy: policy, fromEnd: fromEnd, wait: wait)
    }

    /// `alloc` past the quantum caches and the fast paths: every check, in
    /// illumos's order. Out of line, so that the cache path, the one most
    /// callers take, does not pay for this path's registers and stack frame.
    @usableFromInline @inline(never)
    func allocGeneral(_ size: UInt64, policy: AllocationPolicy, fromEnd: Bool,
                      wait: WaitPolicy) throws(VmemError) -> UInt64 {
        try checkSize(size)
        lock.lock(); defer { lock.unlock() }
        if destroyed { throw failed(.arenaDestroyed(arena: name)) }
        try injectFailure(size, wait)
        if policy == .instantFit {
            try refillTagsIfNeeded(size)
            let t = core.pointee.allocInstant(size, fromEnd: fromEnd)
            if t != 0 {
                let addr = core.pointee.tags[Int(t)].start
                if debugging.audit { recordAudit(addr) }
                return addr
            }
        } else if policy == .nextFit {
            return try nextFitLocked(size, fromEnd: fromEnd, wait: wait)
        }
        let c = Constraints(size: size, align: quantum, phase: 0, nocross: 0, minaddr: 0, maxaddr: 0, fromEnd: fromEnd)
        return try xallocLocked(c, policy: policy, wait: wait)
    }

    /// Allocates with constraints (illumos `vmem_xalloc`): the result `a`
    /// satisfies `a % align == phase`, `[a, a+size)` crosses no multiple of
    /// `nocross`, and lies in `[minaddr, maxaddr)` (0 = no limit). Bypasses the
    /// quantum caches: free it with ``xfree(_:size:)``.
    public func xalloc(_ size: UInt64, align: UInt64 = 0, phase: UInt64 = 0, nocross: UInt64 = 0,
                       minaddr: UInt64 = 0, maxaddr: UInt64 = 0, policy: AllocationPolicy = .instantFit,
                       fromEnd: Bool = false, wait: WaitPolicy = .noSleep) throws(VmemError) -> UInt64 {
        let c: Constraints
        do {
            c = try makeConstraints(size: size, align: align, phase: phase, nocross: nocross,
                                    minaddr: minaddr, maxaddr: maxaddr, fromEnd: fromEnd)
        } catch {
            // A range too small for the size is no argument error to illumos:
            // vmem_xalloc searches, finds nothing and counts `vk_fail`.
            if case .rangeCannotHoldSize = error { lock.withLock { _ = failed(error) } }
            throw error
        }
        lock.lock(); defer { lock.unlock() }
        if destroyed { throw failed(.arenaDestroyed(arena: name)) }
        try injectFailure(size, wait)
        // Next fit is `alloc`'s rotor; xalloc is the constrained search,
        // where `next` is neither best nor first fit and so starts at the
        // lists whose members all fit, as instant fit does (illumos's
        // vmem_xalloc ignores VM_NEXTFIT the same way).
        return try xallocLocked(c, policy: policy == .nextFit ? .instantFit : policy, wait: wait)
    }

    /// Allocates exactly `[address, address+size)`, which must be free.
    public func allocExact(at address: UInt64, size: UInt64, wait: WaitPolicy = .noSleep) throws(VmemError) -> UInt64 {
        try checkSize(size)
        if address & (quantum &- 1) != 0 { throw .notQuantumAligned(parameter: "address", value: address, quantum: quantum) }
        let (end, o) = address.addingReportingOverflow(size)
        if o || end == 0 { throw .overflow(base: address, size: size) }
        return try xalloc(size, minaddr: address, maxaddr: end, policy: .firstFit, wait: wait)
    }

    /// The search-import-wait loop of `vmem_xalloc`, lock held.
    /// `countsFailure` is false only for a quantum cache's slab, whose
    /// failure the cached allocation counts once itself.
    @usableFromInline
    func xallocLocked(_ c: Constraints, policy: AllocationPolicy, wait: WaitPolicy,
                      countsFailure: Bool = true) throws(VmemError) -> UInt64 {
        var lastError: VmemError = .exhausted(arena: name, size: c.size)
        var reaped = false
        while true {
            try refillTagsIfNeeded(c.size)
            let (t, a) = core.pointee.search(c, policy: policy)
            if t != 0 {
                _ = core.pointee.carve(t, at: a, size: c.size)
                if debugging.audit { recordAudit(a) }
                return a
            }
            if source != nil && (!c.isConstrained || flags.contains(.constrainedImport)) {
                switch importAndCarve(c, policy: policy) {
                case .allocated(let addr):
                    if debugging.audit { recordAudit(addr) }
                    return addr
                case .retry: continue
                case .failed(let e): lastError = e
                }
                if destroyed { throw countsFailure ? failed(.arenaDestroyed(arena: name)) : .arenaDestroyed(arena: name) }
            }
            if !reaped && !qcaches.isEmpty {
                // Objects idle in quantum-cache depots may hold the room we need.
                reaped = true
                lock.unlock(); reapCaches(); lock.lock()
                continue
            }
            if wait.mode == .noSleep {
                if countsFailure { core.pointee.stats.failCount &+= 1 }
                throw lastError
            }
            try sleep(c.size, wait)
        }
    }

    /// Next fit, lock held; falls back to `xallocLocked` as illumos does.
    @usableFromInline func nextFitLocked(_ size: UInt64, fromEnd: Bool, wait: WaitPolicy) throws(VmemError) -> UInt64 {
        try refillTagsIfNeeded(size)
        var release: (base: UInt64, size: UInt64)? = nil
        let t = core.pointee.allocNextFit(size, fromEnd: fromEnd, hasSource: hasSource, release: &release)
        if let r = release { releaseToSource(r) }
        if t != 0 {
            let addr = core.pointee.tags[Int(t)].start
            if debugging.audit { recordAudit(addr) }
            return addr
        }
        if source != nil || wait.mode == .sleep {
            let c = Constraints(size: size, align: quantum, phase: 0, nocross: 0, minaddr: 0, maxaddr: 0, fromEnd: fromEnd)
            return try xallocLocked(c, policy: .instantFit, wait: wait)
        }
        core.pointee.stats.failCount &+= 1
        throw .exhausted(arena: name, size: size)
    }

    // MARK: Freeing

    /// Frees memory from ``alloc(_:policy:fromEnd:wait:)`` (illumos `vmem_free`).
    @inlinable
    public func free(_ address: UInt64, size: UInt64) throws(VmemError) {
        if quantumCacheCount != 0 {
            let slot = cacheSlot(size)
            if slot < quantumCacheCount, cacheFree(address, slot) { return }
        }
        try xfree(address, size: size)
    }

    /// Frees memory from ``xalloc(_:align:phase:nocross:minaddr:maxaddr:policy:fromEnd:wait:)``
    /// (illumos `vmem_xfree`). The size must be the allocated size.
    public func xfree(_ address: UInt64, size: UInt64) throws(VmemError) {
        try freeSegment(address, size: size, slab: false)
    }

    /// The body of `xfree`; `slab` is true only when a quantum cache gives
    /// back one of its slabs, which no other free may release.
    @inline(__always)
    func freeSegment(_ address: UInt64, size: UInt64, slab: Bool) throws(VmemError) {
        try checkSize(size)
        if address.addingReportingOverflow(size).overflow { throw .overflow(base: address, size: size) }
        lock.lock()
        if destroyed { lock.unlock(); throw .arenaDestroyed(arena: name) }
        let t: TagIndex
        switch core.pointee.hashDelete(address, size: size) {
        case .found(let f): t = f
        case .missing:
            lock.unlock(); throw refinedFreeError(address, size: size, .badFree(address: address, size: size))
        case .wrongSize(let actual):
            lock.unlock()
            throw refinedFreeError(address, size: size, .wrongSize(address: address, size: size, allocatedSize: actual))
        }
        if core.pointee.tags[Int(t)].cacheSlab {
            if !slab {
                // A quantum cache's slab: put it back as it was and refuse.
                core.pointee.hashInsert(t)
                core.pointee.stats.allocCount &-= 1
                core.pointee.stats.freeCount &-= 1
                lock.unlock()
                throw .slabOwnedByCache(address: address, size: size)
            }
            core.pointee.tags[Int(t)].cacheSlab = false
        }
        if debugging.audit { audits.removeValue(forKey: address) }
        let release = core.pointee.freeSegment(t, hasSource: hasSource)
        if waiters > 0 { lock.broadcast() }
        if let r = release { releaseToSource(r) }
        lock.unlock()
    }

    /// Gives a wholly free imported span back, dropping the lock around the
    /// source's release function (it may take other arenas' locks).
    func releaseToSource(_ span: (base: UInt64, size: UInt64)) {
        guard let source else { return }
        lock.unlock()
        source.releaseSpan(span.base, span.size)
        lock.lock()
    }

    // MARK: Waiting and failure injection

    /// Counts an allocation that returns no address (illumos `vk_fail`),
    /// lock held, and hands its error back to be thrown. Every allocation
    /// whose arguments were accepted and that returns no address passes
    /// here (or through one of the counting sites it names): exhaustion,
    /// a failed import, a range too small for the size, a timeout, a
    /// cancellation, an injected failure, a destroyed arena.
    @usableFromInline
    func failed(_ error: VmemError) -> VmemError {
        core.pointee.stats.failCount &+= 1
        return error
    }

    /// Sleeps until a free or an add, lock held (illumos `cv_wait`).
    func sleep(_ size: UInt64, _ wait: WaitPolicy) throws(VmemError) {
        if let token = wait.token, token.isCancelled { core.pointee.stats.failCount &+= 1; throw .cancelled(arena: name, size: size) }
        var deadlineNs: UInt64? = nil
        if wait.deadlineNanoseconds != 0 {
            if monotonicNanoseconds() >= wait.deadlineNanoseconds {
                core.pointee.stats.failCount &+= 1; throw .timedOut(arena: name, size: size)
            }
            deadlineNs = wait.deadlineNanoseconds
        }
        core.pointee.stats.waitCount &+= 1
        waiters += 1
        sleepers.add(1, ordering: .relaxed)
        defer { sleepers.subtract(1, ordering: .relaxed) }
        wait.token?.register(lock)
        let woke = lock.wait(untilMonotonicNanoseconds: deadlineNs)
        wait.token?.unregister(lock)
        waiters -= 1
        if let token = wait.token, token.isCancelled { core.pointee.stats.failCount &+= 1; throw .cancelled(arena: name, size: size) }
        if !woke { core.pointee.stats.failCount &+= 1; throw .timedOut(arena: name, size: size) }
        if destroyed { throw failed(.arenaDestroyed(arena: name)) }
    }

    /// `vmem_mtbf`: fail a no-sleep allocation about once in `mtbf`, lock held.
    @inlinable @inline(__always)
    func injectFailure(_ size: UInt64, _ wait: WaitPolicy) throws(VmemError) {
        if debugging.meanTimeBetweenFailures != 0 && wait.mode == .noSleep { try injectFailureSlow(size) }
    }

    @usableFromInline
    func injectFailureSlow(_ size: UInt64) throws(VmemError) {
        if injectedFailureDrawn() { throw failed(.injectedFailure(arena: name, size: size)) }
    }

    /// One draw of the failure-injection generator: true about once in
    /// `meanTimeBetweenFailures` (non-zero), lock held.
    func injectedFailureDrawn() -> Bool {
        failureState &+= 0x9E37_79B9_7F4A_7C15
        var z = failureState
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return z % debugging.meanTimeBetweenFailures == 0
    }

    /// Records who allocated `address`, lock held (illumos `KMF_AUDIT`).
    @usableFromInline
    func recordAudit(_ address: UInt64) {
        // A plain buffer, not a closure over an array: a closure would be one
        // more frame of ours, a local symbol that no one can name.
        let capacity = AuditRecord.maximumDepth + 2
        let pcs = UnsafeMutablePointer<UInt>.allocate(capacity: capacity)
        defer { pcs.deallocate() }
        let depth = Int(cvmem_backtrace(pcs, Int32(capacity)))
        // Drop the shim's frame and this function's; the allocator's own
        // frames above them stay (AuditRecord.caller skips them, as mdb does).
        let stack = depth > 2 ? Array(UnsafeBufferPointer(start: pcs + 2, count: depth - 2)) : []
        audits[address] = AuditRecord(thread: currentThreadID(), timestamp: monotonicNanoseconds(), stack: stack)
    }
}
