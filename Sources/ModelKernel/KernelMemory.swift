import AddressSpace
import PhysicalMemory

/// The page layer under segkmem and segkp: what `segkmem_xalloc` /
/// `segkmem_xfree` do once the VA is chosen, over the model's
/// ``PhysicalMemory`` and ``KernelHAT``.
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
    func createPages(va: UInt64, size: UInt64, vnode: Vnode, offset: UInt64? = nil,
                     protection: Protection = KernelMemory.kernelProtection,
                     hold: PageHold = .kernel) throws(ModelKernelError) {
        let count = size >> PhysicalMemory.pageShift
        guard count > 0 else { return }
        let identity = offset ?? va
        let pfns: [PageFrameNumber]
        do {
            pfns = try physical.pageCreate(vnode: vnode, offset: identity, pageCount: count,
                                           flags: [.exclusive, .noRelocate])
        } catch {
            throw .physicalMemory(error, context: "page_create_va of \(count) pages at 0x\(String(va, radix: 16)) on \(vnode)")
        }
        do throws(HATError) {
            try hat.loadPages(address: va, pfns: pfns, protection: protection)
        } catch {
            for pfn in pfns { try? physical.pageDestroy(pfn) }
            throw .hat(error)
        }
        do throws(PhysicalMemoryError) {
            for pfn in pfns {
                switch hold {
                case .kernel:
                    try physical.setLockCount(pfn, to: 1)
                    try physical.pageDowngrade(pfn)
                case .shared:
                    try physical.pageDowngrade(pfn)
                case .none:
                    try physical.pageUnlock(pfn)
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
    func destroyPages(va: UInt64, size: UInt64, vnode: Vnode, offset: UInt64? = nil) throws(ModelKernelError) {
        let count = size >> PhysicalMemory.pageShift
        let identity = offset ?? va
        var pfns: [PageFrameNumber] = []
        var wasShared: [Bool] = []
        pfns.reserveCapacity(Int(count))
        func undo() {
            for (p, shared) in zip(pfns, wasShared) {
                if shared { try? physical.pageDowngrade(p) } else { try? physical.pageUnlock(p) }
            }
        }
        for i in 0..<count {
            let name = identity &+ i << PhysicalMemory.pageShift
            guard let pfn = physical.pageFind(vnode: vnode, offset: name) else {
                undo()
                throw .unknownAllocation(kind: "page (\(vnode), offset)", address: name)
            }
            let page: Page
            var acquired = false
            var shared = false
            do throws(PhysicalMemoryError) {
                page = try physical.page(pfn)
                switch page.lock {
                case .shared(count: 1):
                    acquired = try physical.pageTryUpgrade(pfn)
                    shared = true
                case .unlocked:
                    acquired = try physical.pageTryLock(pfn, .exclusive)
                default:
                    acquired = false
                }
            } catch {
                undo()
                throw .physicalMemory(error, context: "locking the page at 0x\(String(name, radix: 16)) to free it")
            }
            guard acquired else {
                undo()
                throw .physicalMemory(.lockConflict(pfn: pfn, held: page.lock, requested: .exclusive),
                                      context: "freeing the page at 0x\(String(va &+ i << PhysicalMemory.pageShift, radix: 16)), which another holder has locked")
            }
            wasShared.append(shared)
            pfns.append(pfn)
        }
        do throws(HATError) { try hat.unloadAndReap(address: va, size: size) } catch { undo(); throw .hat(error) }
        do throws(PhysicalMemoryError) {
            for pfn in pfns {
                try physical.setLockCount(pfn, to: 0)
                try physical.pageDestroy(pfn)
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
