#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import GuestMemory
import HostMemory
import Synchronization

/// Counters of a lazy restore.
public struct LazyRestoreStatistics: Hashable, Sendable {
    /// Missing faults answered with a page (copy or zero), one per page.
    public let faultsServed: UInt64
    /// Of those, answered with a zero page (the page is in no file).
    public let zeroFills: UInt64
    /// Bytes copied from the files by faults.
    public let bytesCopied: UInt64
    /// Fault events for a page already filled (two threads touched it at
    /// once, or an alias): answered with a wake.
    public let duplicates: UInt64
    /// Faults refused (a fill failed): the toucher got `SIGBUS`.
    public let refused: UInt64
    /// A page filled twice: must stay 0 (the kernel fills a page once).
    public let servedTwice: UInt64
    /// Pages filled by ``LazyRestore/fetchAll()`` or ``LazyRestore/prefetch(_:)``, not by faults.
    public let prefetched: UInt64
    /// Pages of unmapped segment ranges, copied at the call (no fault can reach them).
    public let eagerPages: UInt64
    /// From the call to the memory usable (every range registered).
    public let usableNanoseconds: UInt64
}

/// A lazy restore (Firecracker's UFFD restore, built in): the memory is
/// usable when the call returns, and each page is fetched on first touch —
/// by the guest (through KVM, whose accesses fault on the host mapping) or
/// by the VMM (`GuestMemory/read(_:count:)` and friends) — through
/// `UserFaultService` in missing mode: the fault is answered with the
/// page's newest version from the chain (`UFFDIO_COPY` from a read-only
/// mapping of the file), or a zero page when no file records it.
///
/// The host window of every mapping is registered; on a memfd segment the
/// fill lands in the memfd's page cache, so an alias of the page (a second
/// mapping of the segment) finds it there and never faults: a page is served
/// once whatever maps it. Ranges of a segment no mapping covers cannot fault
/// and are copied at the call. Filled pages are not dirty (no dirty source
/// sees a `UFFDIO_COPY`); VMM writes after the restore are.
///
/// Keep the object while the memory is in use: ``finish()`` (or deinit)
/// fetches every page not yet touched, then unregisters and stops the
/// service. A caller dropping the memory too destroys it first
/// (`GuestMemory.destroy()`): finish then copies nothing. Call ``finish()``
/// before changing the memory's map — an unmapped and re-mapped range is no
/// longer registered. A full snapshot of the memory fetches everything first.
public final class LazyRestore: @unchecked Sendable {
    public let memory: GuestMemory
    public let chain: SnapshotChain
    private let service: UserFaultService
    private let table: LazyFaultTable
    private let lock = HostLock()
    private var finished = false
    private var eagerPages: UInt64 = 0
    private var usable: UInt64 = 0

    /// Restores `chain` into `memory` lazily. Refused, changing nothing,
    /// unless `memory` has the chain's map and is fresh
    /// (``SnapshotChain/checkFresh(_:forLazyRestore:)``), or when userfaultfd (with the
    /// shared-memory missing mode a memfd segment needs) is not available.
    public init(_ chain: SnapshotChain, into memory: GuestMemory, handlerThreads: Int = 1) throws(GuestSnapshotError) {
        let start = SnapshotIO.now()
        try chain.newest.checkMatches(memory)
        try SnapshotChain.checkFresh(memory, forLazyRestore: true)
        let segments = memory.segments
        let mappings = memory.mappings
        if let huge = segments.first(where: { $0.backing == .memfdHugePages }) {
            // hugetlbfs is filled 2 MiB at a time; this handler fills 4 KiB pages.
            throw .lazyUnavailable(reason: "segment \(huge.id) is backed by 2 MiB huge pages: restore it eagerly")
        }
        var bases: [UnsafeRawPointer] = []
        for f in chain.files { bases.append(try f.mapping()) }
        let table = LazyFaultTable(chain: chain, bases: bases, segments: segments, mappings: mappings)
        let service: UserFaultService
        do {
            service = try UserFaultService(threads: handlerThreads) { fault, service in table.serve(fault, service) }
        } catch {
            throw .lazyUnavailable(reason: "\(error)")
        }
        if segments.contains(where: { $0.object.fd >= 0 }), !service.features.contains(.missingShmem) {
            throw .lazyUnavailable(reason: "this kernel's userfaultfd has no missing mode on shared memory (features \(service.features))")
        }
        self.memory = memory
        self.chain = chain
        self.service = service
        self.table = table
        // The registry entry first, so a second restore racing this one is
        // refused before either changes a byte.
        guard LazyRegistry.shared.add(self) else {
            finished = true
            service.stopQuietly()
            throw .memoryNotFresh(reason: "a lazy restore is active on it")
        }
        // Ranges no mapping covers: no fault reaches them, so they are copied now.
        do throws(GuestSnapshotError) {
            for (i, s) in segments.enumerated() where s.object.fd >= 0 {
                eagerPages += try table.copyUnmapped(segmentIndex: i, segment: s, path: chain.newest.path)
            }
        } catch {
            LazyRegistry.shared.remove(memory)
            finished = true
            service.stopQuietly()
            throw error
        }
        // Registration last, so no fault arrives before the table is complete.
        for w in table.windows {
            do throws(HostMemoryError) {
                try service.register(at: w.host, length: w.end - w.host, modes: .missing)
            } catch {
                for v in table.windows where v.host < w.host { try? service.unregister(at: v.host, length: v.end - v.host) }
                LazyRegistry.shared.remove(memory)
                finished = true
                service.stopQuietly()
                throw .host(error)
            }
        }
        usable = SnapshotIO.now() - start
    }

    deinit { try? finish() }

    /// A new memory with the chain's map (wired ranges left unpopulated) and
    /// a lazy restore of the chain into it.
    public static func intoNewMemory(_ chain: SnapshotChain, nested: NestedTableMode = NestedTableMode(),
                                     handlerThreads: Int = 1) throws(GuestSnapshotError) -> (GuestMemory, LazyRestore) {
        let memory = try chain.newest.makeMemory(nested: nested, honorWired: false)
        return (memory, try LazyRestore(chain, into: memory, handlerThreads: handlerThreads))
    }

    /// The lazy restore active on `memory`, if any.
    public static func active(on memory: GuestMemory) -> LazyRestore? { LazyRegistry.shared.find(memory) }

    public var statistics: LazyRestoreStatistics {
        LazyRestoreStatistics(faultsServed: table.served.load(ordering: .relaxed), zeroFills: table.zeroFills.load(ordering: .relaxed),
                              bytesCopied: table.bytes.load(ordering: .relaxed), duplicates: table.duplicates.load(ordering: .relaxed),
                              refused: table.refused.load(ordering: .relaxed), servedTwice: table.servedTwice.load(ordering: .relaxed),
                              prefetched: table.prefetched.load(ordering: .relaxed), eagerPages: eagerPages, usableNanoseconds: usable)
    }

    /// Whether ``finish()`` has run.
    public var isFinished: Bool { lock.withLock { finished } }

    /// Copies every page some file records that no fault has filled yet
    /// (`UFFDIO_COPY`; a page filled meanwhile is skipped). Safe while the
    /// guest and the VMM touch the memory.
    public func fetchAll() throws(GuestSnapshotError) {
        guard !isFinished else { return }
        do throws(HostMemoryError) { try table.fetchAll(service) } catch { throw .host(error) }
    }

    /// The pages faults have filled so far — the guest's and the VMM's
    /// first touches, in order; not those prefetched — to save
    /// (``WorkingSet/write(to:)``) and replay on the next restore of this
    /// snapshot with ``prefetch(_:)``.
    public var workingSet: WorkingSet {
        WorkingSet(snapshot: chain.newest.id,
                   pages: table.faultedPages().map { WorkingSet.Page(segment: table.segmentIDs[$0.index], page: $0.page) })
    }

    /// Fills the pages of `workingSet` that no fault has filled yet, in its
    /// order, runs of consecutive pages in one `UFFDIO_COPY` each; safe
    /// while the guest and the VMM touch the memory (a page they fault first
    /// is theirs; one this call fills first wakes them). Call it from a
    /// thread of its own to let the guest start at once, or before the guest
    /// runs to have its first touches find their pages. Refused, filling
    /// nothing, unless the set was recorded from a snapshot in this chain and
    /// names only its segments' pages. Returns the pages it filled.
    @discardableResult
    public func prefetch(_ workingSet: WorkingSet) throws(GuestSnapshotError) -> UInt64 {
        guard chain.files.contains(where: { $0.id == workingSet.snapshot }) else {
            throw .workingSetMismatch(snapshot: workingSet.snapshot,
                                      reason: "recorded from a snapshot not in this chain (newest \(chain.newest.id))")
        }
        let index = Dictionary(uniqueKeysWithValues: table.segmentIDs.enumerated().map { ($0.element, $0.offset) })
        let segments = chain.newest.segments
        var pages: [(index: Int, page: UInt64)] = []
        pages.reserveCapacity(workingSet.pages.count)
        for (k, p) in workingSet.pages.enumerated() {
            guard let i = index[p.segment] else {
                throw .workingSetMismatch(snapshot: workingSet.snapshot, reason: "page \(k) names segment \(p.segment), which the memory does not have")
            }
            guard p.page < segments[i].pages else {
                throw .workingSetMismatch(snapshot: workingSet.snapshot,
                                          reason: "page \(k) is page \(p.page) of segment \(p.segment), which has \(segments[i].pages)")
            }
            pages.append((i, p.page))
        }
        // Under the lock, so that finish() does not stop the service under it.
        return try lock.withLock { () throws(GuestSnapshotError) -> UInt64 in
            guard !finished, !memory.isDestroyed else { return 0 }
            do throws(HostMemoryError) { return try table.prefetch(pages, service) } catch { throw .host(error) }
        }
    }

    /// Fetches every remaining page, unregisters the ranges and stops the
    /// service: from then on the memory is ordinary memory. Idempotent.
    public func finish() throws(GuestSnapshotError) {
        try lock.withLock { () throws(GuestSnapshotError) in
            guard !finished else { return }
            // A destroyed memory has nothing left to fill.
            if !memory.isDestroyed {
                do throws(HostMemoryError) { try table.fetchAll(service) } catch { throw .host(error) }
            }
            for w in table.windows { try? service.unregister(at: w.host, length: w.end - w.host) }
            service.stopQuietly()
            finished = true
            LazyRegistry.shared.remove(memory)
        }
    }
}

extension UserFaultService {
    func stopQuietly() { try? stop() }
}

/// The active lazy restores, by memory (weakly held).
final class LazyRegistry: @unchecked Sendable {
    static let shared = LazyRegistry()
    private let lock = HostLock()
    private struct Entry {
        weak var memory: GuestMemory?
        weak var restore: LazyRestore?
    }
    private var entries: [ObjectIdentifier: Entry] = [:]

    /// Adds `r` unless its memory has a live one already.
    func add(_ r: LazyRestore) -> Bool {
        lock.withLock {
            let key = ObjectIdentifier(r.memory)
            if let e = entries[key], e.memory === r.memory, e.restore != nil { return false }
            entries[key] = Entry(memory: r.memory, restore: r)
            return true
        }
    }

    func remove(_ memory: GuestMemory) {
        lock.withLock { _ = entries.removeValue(forKey: ObjectIdentifier(memory)) }
    }

    func find(_ memory: GuestMemory) -> LazyRestore? {
        lock.withLock {
            guard let e = entries[ObjectIdentifier(memory)], e.memory === memory else { return nil }
            return e.restore
        }
    }
}
