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
    /// `tagReserve` (16, illumos `VMEM_MINFREE`) tags are free, the arena
    /// refills from `tagArena` *before* its operation. An arena that is
    /// itself refilling (because the refill came back to it through the
    /// hierarchy) draws on its reserve instead of recursing.
    ///
    /// With ``TagBacking/memory`` the tag table really lives in blocks
    /// `tagArena` hands out, so `tagArena`'s addresses must be this process's
    /// memory (an arena over a ``ReservedAddressRange`` whose source
    /// commits pages). An arena may then take its tags from itself, as
    /// illumos's `vmem_seg` arena does. With ``TagBacking/accounting`` (for
    /// arenas of a model's addresses) `tagArena` is charged a slab per
    /// refill and the table stays in the heap.
    public func useTags(from tagArena: Arena, backing: TagBacking = .accounting) throws(VmemError) {
        if tagArena === self && backing == .accounting {
            throw .notSupported("arena \(name) cannot take its tags from itself without real tag memory")
        }
        if backing == .memory && tagArena.flags.contains(.identifier) {
            throw .notSupported("identifier arena \(tagArena.name) has no memory to hold \(name)'s tags")
        }
        lock.lock(); defer { lock.unlock() }
        if destroyed { throw .arenaDestroyed(arena: name) }
        if self.tagArena != nil || tagsFromSelf {
            throw .notSupported("arena \(name) already takes its tags from \((self.tagArena ?? self).name)")
        }
        if tagArena === self {
            tagsFromSelf = true
        } else {
            if backing == .memory {
                tagArena.lock.lock()
                let gone = tagArena.destroyed
                if !gone { tagArena.tagClients += 1 }
                tagArena.lock.unlock()
                if gone { throw .arenaDestroyed(arena: tagArena.name) }
            }
            self.tagArena = tagArena
        }
        tagBacking = backing
        // The table moves into tag memory at once, as illumos arenas take
        // every tag from vmem_seg from the start.
        if backing == .memory { refillTags(force: true) }
    }

    /// The arena tags come from, itself included.
    var tagSource: Arena? { tagsFromSelf ? self : tagArena }

    /// The block of tag-arena memory the tag table lives in, nil while it
    /// is in the heap.
    public var tagTableBlock: (address: UInt64, bytes: UInt64)? {
        lock.lock(); defer { lock.unlock() }
        let bytes = core.pointee.tagBlockBytes
        return bytes == 0 ? nil : (UInt64(UInt(bitPattern: core.pointee.tags)), UInt64(bytes))
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
    /// with tag memory from `tagArena` (a slab charged, or a larger block
    /// the table moves into), lock held on entry and exit. `force` refills
    /// even with the reserve full.
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
    func refillTags(force: Bool = false) {
        guard let tagArena = tagSource else {
            // The internal pool: the table simply grows.
            core.pointee.reserveTags(Self.tagReserve * 4)
            return
        }
        let population = self.population
        // A nested request from this thread's own refill: tap the reserve.
        if population.isCurrentThread {
            population.nestedRequests.add(1, ordering: .relaxed)
            return
        }
        lock.unlock()
        let waited = !population.lock.tryLock()
        if waited { population.lock.lock() }
        population.begin()
        // Another thread may have refilled this arena while we waited.
        lock.lock()
        let needed = force || core.pointee.availableTags < Self.tagReserve
        let bytes = tagBacking == .memory ? tableBlockBytes(tagArena.quantum) : p2roundup(Self.tagSlabBytes, tagArena.quantum)
        lock.unlock()
        var got: UInt64?
        if needed, bytes > 0 {
            got = tagArena.quantum >= 64 ? try? tagArena.alloc(bytes) : try? tagArena.xalloc(bytes, align: 64)
        }
        population.end()
        population.lock.unlock()
        lock.lock()
        if waited { core.pointee.stats.populateWait &+= 1 }
        switch (tagBacking, got) {
        case (.accounting, let got?):
            tagSlabs.append((got, bytes))
            core.pointee.growTags(by: UInt32(bytes / UInt64(MemoryLayout<BoundaryTag>.stride)))
        case (.memory, let got?):
            let capacity = UInt32(bytes / UInt64(MemoryLayout<BoundaryTag>.stride))
            if capacity > core.pointee.tagCapacity, let p = UnsafeMutableRawPointer(bitPattern: UInt(got)) {
                core.pointee.moveTable(to: p.bindMemory(to: BoundaryTag.self, capacity: Int(capacity)),
                                       capacity: capacity, blockBytes: Int(bytes))
            } else {
                // The table outgrew the block meanwhile (nested operations
                // that ran dry grew it in the heap): the block goes back.
                core.pointee.retiredTagBlocks.append((got, bytes))
            }
        case (_, nil):
            if needed {
                // Without tag memory the arena falls back on its own table
                // rather than fail the operation; the counter tells.
                core.pointee.stats.populateFail &+= 1
                core.pointee.reserveTags(Self.tagReserve)
            }
        }
        returnRetiredTagBlocks(to: tagArena)
    }

    /// The size of the next tag-arena block for the table: a quarter more
    /// tags than now (at least 128), in whole quanta of the tag arena; 0
    /// at the 2^28-tag limit. Lock held.
    func tableBlockBytes(_ tagQuantum: UInt64) -> UInt64 {
        let stride = UInt64(MemoryLayout<BoundaryTag>.stride)
        let now = UInt64(core.pointee.tagCapacity)
        let want = min(now + max(now / 4, 128), UInt64(BoundaryTag.indexMask) + 1)
        if want <= now { return 0 }
        let bytes = p2roundup(want * stride, max(tagQuantum, 64))
        return min(bytes, (UInt64(BoundaryTag.indexMask) + 1) * stride)
    }

    /// Gives the blocks the table moved out of back to the tag arena, with
    /// this arena's lock dropped (the tag arena may be this one, or may
    /// release spans to a source). Lock held on entry and exit.
    func returnRetiredTagBlocks(to tagArena: Arena) {
        guard !core.pointee.retiredTagBlocks.isEmpty else { return }
        let blocks = core.pointee.retiredTagBlocks
        core.pointee.retiredTagBlocks = []
        lock.unlock()
        for b in blocks { try? tagArena.free(b.address, size: b.bytes) }
        lock.lock()
    }

    /// At the end of the arena: gives its table and retired blocks back to
    /// the tag arena, and stops counting as its client.
    func releaseTagMemory() {
        guard tagBacking == .memory, let tagArena, !tagsFromSelf else { return }
        var blocks = core.pointee.retiredTagBlocks
        core.pointee.retiredTagBlocks = []
        // The table goes back with the arena (the core, seeing a block,
        // leaves it alone when it is freed).
        if core.pointee.tagBlockBytes != 0 {
            blocks.append((UInt64(UInt(bitPattern: core.pointee.tags)), UInt64(core.pointee.tagBlockBytes)))
        }
        for b in blocks { try? tagArena.free(b.address, size: b.bytes) }
        tagArena.lock.lock()
        tagArena.tagClients -= 1
        tagArena.lock.unlock()
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
    /// Refills asked for by the populator's own nested requests, each
    /// answered from a reserve instead of recursing (for tests).
    let nestedRequests = Atomic<Int>(0)

    /// Whether the calling thread is the populator.
    var isCurrentThread: Bool { owner.load(ordering: .relaxed) == cvmem_thread_token() }
    /// Records the calling thread as the populator (`lock` held).
    func begin() { owner.store(cvmem_thread_token(), ordering: .relaxed) }
    func end() { owner.store(0, ordering: .relaxed) }
}
