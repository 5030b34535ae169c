import GuestMemory
import GuestSnapshot

/// A ``KVMGuest`` booted from a snapshot chain (base first, then its diffs
/// in order): the memory is built from the chain — eagerly, every recorded
/// page read before the VM exists, or lazily, the memory usable at once and
/// each page fetched on its first touch (by the vCPU through KVM, or by the
/// VMM) through userfaultfd — and only then is the VM created on it (a
/// restore refuses memory a VM runs). The payload then resumes as
/// `KVMGuest+Resume.swift` says: fresh registers, the code page and the
/// tables written only where the snapshot lacks them.
///
/// Keep the object while the guest runs: it holds the lazy restore, which
/// serves the faults. ``finish()`` (or deinit) fetches what was never
/// touched and stops serving.
public final class KVMRestoredGuest: @unchecked Sendable {
    public let guest: KVMGuest
    public let chain: SnapshotChain
    /// The lazy restore serving faults, or nil for an eager restore.
    public let lazy: LazyRestore?
    /// The eager restore's report (pages and bytes read), or nil.
    public let eager: RestoreReport?
    /// From the call to usable memory: the files opened and checked, the
    /// memory made, and the pages read (eager) or the ranges registered
    /// (lazy). The VM's creation is not included.
    public let restoreNanoseconds: UInt64

    /// Restores the chain at `paths`, then creates the guest on it.
    /// Refused with ``KVMError/snapshot(_:)`` for a bad file or chain, with
    /// ``KVMError/notABootableGuest(detail:)`` when the snapshot is not of a
    /// `vmkit guest run` guest, and as ``KVMGuest`` refuses otherwise.
    public init(paths: [String], lazy: Bool, payload: GuestPayload, touch: UInt64 = 0,
                dirtyLog: KVMDirtyLogMode = .bitmap, dirtyRingBytes: UInt32 = KVMVirtualMachine.defaultDirtyRingBytes,
                useKVM: Bool = true, requireKVM: Bool = false) throws(KVMError) {
        let clock = ContinuousClock()
        let start = clock.now
        let memory: GuestMemory
        do throws(GuestSnapshotError) {
            chain = try SnapshotChain(paths: paths)
            // The map is checked before any byte moves: a snapshot of another
            // kind of guest is refused without building its memory.
            if lazy {
                (memory, self.lazy) = try LazyRestore.intoNewMemory(chain)
                eager = nil
            } else {
                let (m, report) = try chain.restoreIntoNewMemory()
                (memory, self.lazy, eager) = (m, nil, report)
            }
        } catch {
            throw .snapshot(error)
        }
        let d = clock.now - start
        restoreNanoseconds = UInt64(d.components.seconds) * 1_000_000_000 + UInt64(d.components.attoseconds / 1_000_000_000)
        guest = try KVMGuest(restoredMemory: memory, payload: payload, touch: touch, dirtyLog: dirtyLog,
                             dirtyRingBytes: dirtyRingBytes, useKVM: useKVM, requireKVM: requireKVM)
    }

    /// Whether the restore is lazy.
    public var isLazy: Bool { lazy != nil }

    /// The lazy restore's counters so far (nil when eager).
    public var statistics: LazyRestoreStatistics? { lazy?.statistics }

    /// Faults served so far: one per page first touched (0 when eager).
    public var faults: UInt64 { lazy?.statistics.faultsServed ?? 0 }

    /// A snapshotter continuing the chain: its first diff's parent is the
    /// chain's newest file, so it holds exactly the pages dirty since the
    /// restore (the VMM's reloads and the guest's writes).
    public func snapshotter() throws(KVMError) -> GuestSnapshotter {
        do { return try GuestSnapshotter(memory: guest.memory, continuingFrom: chain.newest) } catch { throw .snapshot(error) }
    }

    /// Fetches every page not yet touched and stops serving faults (lazy);
    /// nothing for an eager restore. Idempotent.
    public func finish() throws(KVMError) {
        do { try lazy?.finish() } catch { throw .snapshot(error) }
    }
}
