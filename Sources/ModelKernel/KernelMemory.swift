import AddressSpace
import PhysicalMemory

/// The page layer under segkmem and segkp: what `segkmem_xalloc` /
/// `segkmem_xfree` do once the VA is chosen, over the model's
/// `PhysicalMemory` and ``KernelHAT``.
///
/// A kernel page is created with identity (vnode, offset = its VA), loaded
/// into the kernel page table locked, given `p_lckcnt` 1 and downgraded to
/// a shared page lock (x86). Freeing reverses that: upgrade, unload (and
/// reap empty tables), `p_lckcnt` 0, `page_destroy`.
///
/// Shared by the drivers and the arena import functions, which run inside
/// Vmem with no arena lock held; it holds no state of its own but the log
/// of import failures.
public final class KernelMemory: @unchecked Sendable {
    /// `(PROT_ALL & ~PROT_USER)`: what segkmem loads kernel pages with.
    public static let kernelProtection: Protection = [.read, .write, .execute]

    public let physical: PhysicalMemory
    public let hat: KernelHAT
    let failures = _FailureLog()

    init(physical: PhysicalMemory, hat: KernelHAT) {
        self.physical = physical
        self.hat = hat
    }

    /// How a freshly created page is left.
    enum PageHold {
        /// `p_lckcnt` 1 and a shared page lock: segkmem's kernel pages.
        case kernel
        /// A shared page lock only: segkp's `KPD_LOCKED` pages.
        case shared
        /// Unlocked: segkp's pageable pages, segmap's file pages.
        case none
    }

    /// Creates and maps the pages of `[va, va + size)`, named on `vnode` at
    /// `offset` (the VA itself unless given), and leaves them held as `hold` says.
    ///
    /// Works in runs of consecutive frames (`PhysicalMemory.pageCreateRuns(vnode:offset:pageCount:flags:)`):
    /// each run is one page record, loaded with one HAT call and held with
    /// one call per step, so a 64 GiB guest costs a handful of operations.
    /// Guest memory (`kvps[KV_VVP]`) is mapped with large pages where the
    /// VA and the frames line up; everything else with 4 KiB pages.
    func createPages(va: UInt64, size: UInt64, vnode: Vnode, offset: UInt64? = nil,
                     protection: Protection = KernelMemory.kernelProtection,
                     hold: PageHold = .kernel) throws(ModelKernelError) {
        let count = size >> PhysicalMemory.pageShift
        guard count > 0 else { return }
        let identity = offset ?? va
        let runs: [FrameRange]
        do {
            runs = try physical.pageCreateRuns(vnode: vnode, offset: identity, pageCount: count,
                                               flags: [.exclusive, .noRelocate])
        } catch {
            throw .physicalMemory(error, context: "page_create_va of \(count) pages at 0x\(String(va, radix: 16)) on \(vnode)")
        }
        var address = va
        var loaded = 0
        do throws(HATError) {
            for run in runs {
                try hat.loadRun(address: address, pfn: run.lower, count: run.count, protection: protection,
                                largePages: vnode == .vvp)
                address &+= run.count << PhysicalMemory.pageShift
                loaded += 1
            }
        } catch {
            if address > va { try? hat.unloadAndReap(address: va, size: address - va) }
            for run in runs { try? physical.pageDestroy(run) }
            throw .hat(error)
        }
        do throws(PhysicalMemoryError) {
            for run in runs {
                switch hold {
                case .kernel:
                    try physical.setLockCount(run, to: 1)
                    try physical.pageDowngrade(run)
                case .shared:
                    try physical.pageDowngrade(run)
                case .none:
                    try physical.pageUnlock(run)
                }
            }
        } catch {
            throw .physicalMemory(error, context: "locking new kernel pages at 0x\(String(va, radix: 16))")
        }
    }

    /// Unmaps and destroys the pages of `[va, va + size)`, named on `vnode`
    /// at `offset` (the VA unless given). Each page must be held only by its
    /// creator: one shared lock, or none for pageable pages. A page someone
    /// else holds (a soft lock) makes the whole free fail with nothing changed.
    /// Works run by run (`PhysicalMemory.pageRuns(of:offset:pageCount:)`).
    func destroyPages(va: UInt64, size: UInt64, vnode: Vnode, offset: UInt64? = nil) throws(ModelKernelError) {
        let count = size >> PhysicalMemory.pageShift
        guard count > 0 else { return }
        let identity = offset ?? va
        let shift = PhysicalMemory.pageShift
        let runs: [PageRun]
        do { runs = try physical.pageRuns(of: vnode, offset: identity, pageCount: count) } catch {
            throw .physicalMemory(error, context: "finding the pages at 0x\(String(va, radix: 16)) to free them")
        }
        // Every name must have a page, and each page only its creator's hold.
        var expected = identity
        for r in runs {
            guard r.first.offset == expected else { throw .unknownAllocation(kind: "page (\(vnode), offset)", address: expected) }
            switch r.first.lock {
            case .shared(count: 1), .unlocked: break
            default:
                throw .physicalMemory(.lockConflict(pfn: r.first.pfn, held: r.first.lock, requested: .exclusive),
                                      context: "freeing the page at 0x\(String(va &+ (r.first.offset &- identity), radix: 16)), which another holder has locked")
            }
            expected = r.first.offset &+ r.count << shift
        }
        guard expected == identity &+ count << shift else {
            throw .unknownAllocation(kind: "page (\(vnode), offset)", address: expected)
        }
        // Take each run exclusively; undo on the first refusal.
        var taken: [(frames: FrameRange, wasShared: Bool)] = []
        func undo() {
            for t in taken { if t.wasShared { try? physical.pageDowngrade(t.frames) } else { try? physical.pageUnlock(t.frames) } }
        }
        for r in runs {
            let shared = r.first.lock != .unlocked
            var acquired = false
            do throws(PhysicalMemoryError) {
                if shared {
                    acquired = try physical.pageTryUpgrade(r.frames)
                } else {
                    acquired = true
                    var locked: [PageFrameNumber] = []
                    for pfn in r.frames.lower ..< r.frames.upper {
                        guard try physical.pageTryLock(pfn, .exclusive) else { acquired = false; break }
                        locked.append(pfn)
                    }
                    if !acquired { for p in locked { try? physical.pageUnlock(p) } }
                }
            } catch {
                undo()
                throw .physicalMemory(error, context: "locking the page at 0x\(String(r.first.offset, radix: 16)) to free it")
            }
            guard acquired else {
                undo()
                throw .physicalMemory(.lockConflict(pfn: r.first.pfn, held: r.first.lock, requested: .exclusive),
                                      context: "freeing the page at 0x\(String(va &+ (r.first.offset &- identity), radix: 16)), which another holder has locked")
            }
            taken.append((r.frames, shared))
        }
        do throws(HATError) { try hat.unloadAndReap(address: va, size: size) } catch { undo(); throw .hat(error) }
        do throws(PhysicalMemoryError) {
            for t in taken {
                try physical.setLockCount(t.frames, to: 0)
                try physical.pageDestroy(t.frames)
            }
        } catch {
            throw .physicalMemory(error, context: "page_destroy of kernel pages at 0x\(String(va, radix: 16))")
        }
    }
}

/// Errors raised inside arena import functions, which can only throw a
/// `VmemError`: the real cause is parked here, per thread, and the kernel's
/// allocation entry points rethrow it.
final class _FailureLog: @unchecked Sendable {
    private let mutex = _OwnedMutex()
    private var byThread: [UInt: ModelKernelError] = [:]

    func record(_ error: ModelKernelError) {
        mutex.lock()
        byThread[_OwnedMutex.currentThread] = error
        mutex.unlock()
    }

    func take() -> ModelKernelError? {
        mutex.lock()
        defer { mutex.unlock() }
        return byThread.removeValue(forKey: _OwnedMutex.currentThread)
    }
}
