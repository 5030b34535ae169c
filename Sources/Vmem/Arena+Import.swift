import CVmemSupport
import Synchronization

// Importing spans from the source (vmem.md §3 "import") and the boundary-tag
// reserve (seed 002's recursion problem).

extension Arena {
    @usableFromInline
    enum ImportOutcome { case allocated(UInt64), retry, failed(VmemError) }

    /// Imports a span big enough for `c` and carves the allocation from it,
    /// lock held on entry and exit (dropped around the source's import).
    @usableFromInline
    func importAndCarve(_ c: Constraints, policy: AllocationPolicy) -> ImportOutcome {
        guard let source else { return .failed(.exhausted(arena: name, size: c.size)) }
        let aq = max(quantum, source.quantum)
        var aphase = c.phase
        if c.align > aq && !flags.contains(.alignedImport) {
            aphase = (c.phase & (aq - 1)) != 0 ? c.align - quantum : c.align - aq
        }
        let (sizePlusPhase, o1) = c.size.addingReportingOverflow(aphase)
        let needed = max(sizePlusPhase, minimumImport)
        let asize = p2roundup(needed, aq)
        if o1 || asize < needed { return .failed(.importFailed(arena: name, size: c.size)) }
        // What a concurrent free must have left for us to use instead.
        let (alignSlack, o2) = c.size.addingReportingOverflow(c.align - quantum)
        let aneeded = o2 ? UInt64.max : p2roundup(alignSlack, quantum)

        // The span marker and its free segment, and up to two for the carve,
        // must not need a refill once the span arrives.
        core.pointee.reserveTags(4)
        lock.unlock()
        var imported: (base: UInt64, size: UInt64)? = nil
        var importError: VmemError = .importFailed(arena: name, size: asize)
        do {
            imported = try source.importSpan(asize, flags.contains(.alignedImport) ? max(c.align, aq) : aq)
        } catch {
            importError = .importFailed(arena: name, size: asize)
        }
        lock.lock()

        // Another thread may have freed enough while we were away. For a
        // plain request a segment on a list that certainly fits `size + align
        // - quantum` always serves it (illumos `vmem_canalloc`); a constrained
        // one needs a real search with the caller's own policy, or a segment
        // the caller's search cannot use would send it round forever.
        func roomAppeared() -> Bool {
            if c.isConstrained { return core.pointee.search(c, policy: policy).0 != 0 }
            return core.pointee.definitelyFitsList(aneeded) >= 0
        }
        guard let span = imported else {
            if !destroyed && roomAppeared() { return .retry }
            return .failed(importError)
        }
        let (end, o3) = span.base.addingReportingOverflow(span.size)
        let misaligned = (span.base | span.size) & (quantum - 1) != 0 || span.size < asize || o3
        if destroyed || misaligned || overlappingSpan(span.base, end) != nil {
            releaseToSource(span)
            return .failed(destroyed ? .arenaDestroyed(arena: name) : .importFailed(arena: name, size: asize))
        }
        if roomAppeared() {
            // Someone freed enough meanwhile: give the fresh span straight back.
            releaseToSource(span)
            return .retry
        }
        let f = core.pointee.createSpan(start: span.base, end: end, imported: true)
        guard let a = core.pointee.place(c, in: f) else {
            // The span cannot serve the request (the source ignored the
            // alignment, or the constraints exclude it): it goes back whole.
            core.pointee.freelistDelete(f)
            core.pointee.destroySpan(freeSegment: f)
            releaseToSource(span)
            return .failed(.importFailed(arena: name, size: asize))
        }
        if waiters > 0 { lock.broadcast() }
        _ = core.pointee.carve(f, at: a, size: c.size)
        return .allocated(a)
    }

    // MARK: Boundary-tag reserve

    /// Makes the arena take its boundary tags from `tagArena` (the illumos
    /// hierarchy `heap` → `vmem_metadata` → `vmem_seg`): whenever fewer than
    /// `tagReserve` (16, illumos `VMEM_MINFREE`) tags are free, the arena allocates a slab of tag memory
    /// from `tagArena` *before* its operation. An arena that is itself
    /// refilling (because the refill came back to it through the hierarchy)
    /// draws on its reserve instead of recursing.
    public func useTags(from tagArena: Arena) throws(VmemError) {
        if tagArena === self { throw .notSupported("arena \(name) cannot take its tags from itself") }
        lock.lock(); defer { lock.unlock() }
        if destroyed { throw .arenaDestroyed(arena: name) }
        self.tagArena = tagArena
    }

    /// Refills the tag reserve from the tag arena when it runs low, lock held.
    /// Throws only when the arena has reached its limit of 2^28 tags and
    /// cannot promise the tags one operation may need.
    @inlinable @inline(__always)
    func refillTagsIfNeeded(_ size: UInt64) throws(VmemError) {
        if core.pointee.availableTags < Self.tagReserve {
            refillTags()
            if core.pointee.availableTags < 4 {
                core.pointee.stats.failCount &+= 1
                throw .exhausted(arena: name, size: size)
            }
        }
    }

    /// Refills the reserve: from the internal pool (the table grows), or
    /// with a slab of tag memory from `tagArena`, lock held on entry and
    /// exit.
    ///
    /// A refill from a tag arena runs as the process's one *populator*
    /// (``TagPopulation``), as illumos's `vmem_populate` runs under a global
    /// populate lock: the lock is taken with this arena's lock dropped, and
    /// every request the refill makes — into the tag arena, its source, and
    /// back into this arena or any other — finds its own thread recorded as
    /// the populator and draws on its arena's reserve instead of refilling
    /// (illumos `vmem_is_populator()`). A thread that finds another one
    /// populating waits for it (``ArenaStatistics/populateWait``), and a
    /// refill that gets no tag memory counts in
    /// ``ArenaStatistics/populateFail``.
    @usableFromInline
    func refillTags() {
        guard let tagArena else {
            // The internal pool: the table simply grows.
            core.pointee.reserveTags(Self.tagReserve * 4)
            return
        }
        let population = self.population
        // A nested request from this thread's own refill: tap the reserve.
        if population.isCurrentThread { return }
        lock.unlock()
        let waited = !population.lock.tryLock()
        if waited { population.lock.lock() }
        population.begin()
        // Another thread may have refilled this arena while we waited.
        lock.lock()
        let needed = core.pointee.availableTags < Self.tagReserve
        lock.unlock()
        let slab = p2roundup(Self.tagSlabBytes, tagArena.quantum)
        let got = needed ? try? tagArena.alloc(slab) : nil
        population.end()
        population.lock.unlock()
        lock.lock()
        if waited { core.pointee.stats.populateWait &+= 1 }
        if let got {
            tagSlabs.append((got, slab))
            core.pointee.growTags(by: UInt32(slab / UInt64(MemoryLayout<BoundaryTag>.stride)))
        } else if needed {
            // Without tag memory the arena falls back on its own table rather
            // than fail the operation; the counter tells.
            core.pointee.stats.populateFail &+= 1
            core.pointee.reserveTags(Self.tagReserve)
        }
    }
}

/// The process-wide populator: the one thread at a time that refills an
/// arena's boundary-tag reserve from a tag arena (illumos serialises
/// `vmem_populate` on a global lock, and `vmem_is_populator()` asks whether
/// the current thread holds it).
///
/// The populator is recorded as a token of its thread (the address of a
/// thread-local byte, ``cvmem_thread_token()``): non-zero and distinct among
/// live threads on every platform. (A kernel thread id, the earlier record,
/// is 0 off Linux, where every thread then looked like the populator's
/// "nobody".) Only the populating thread ever finds its own token here, so
/// a relaxed load is enough to ask "is it me?".
final class TagPopulation: @unchecked Sendable {
    static let shared = TagPopulation()
    /// Held by the populator for the whole refill, no arena lock held
    /// while it is taken. The sleeping arena lock type: a refill may take a
    /// while (the tag arena may import).
    let lock = ArenaLock()
    /// The populator's thread token, 0 when nobody populates.
    let owner = Atomic<UInt>(0)

    /// Whether the calling thread is the populator.
    var isCurrentThread: Bool { owner.load(ordering: .relaxed) == cvmem_thread_token() }
    /// Records the calling thread as the populator (`lock` held).
    func begin() { owner.store(cvmem_thread_token(), ordering: .relaxed) }
    func end() { owner.store(0, ordering: .relaxed) }
}
