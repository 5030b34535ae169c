import AddressSpace
import PhysicalMemory

/// What `segkp_map_red` has done on a 32-bit kernel (its `red_nmapped`,
/// `red_closest` and `red_ndoubles` counters).
public struct RedZoneStatistics: Sendable, Hashable {
    /// Red-zone pages mapped because a thread ran low on stack.
    public var mapped: UInt32 = 0
    /// The least stack left (frame pointer minus `t_stkbase`) seen when one
    /// was mapped; `UInt32.max` until then.
    public var closest: UInt32 = .max
    /// Faults taken while the thread's red page was already mapped.
    public var doubles: UInt32 = 0
    public init() {}
}

extension ModelKernel {
    /// `red_minavail`: below this many bytes of stack left, a kernel page
    /// fault is taken as a stack about to overflow.
    public static let redMinimumAvailable: UInt64 = 5000

    /// `segkp_map_red`, which the page-fault path calls first: whether the
    /// thread on `stack`, its frame pointer at `framePointer`, has less than
    /// ``redMinimumAvailable`` bytes left.
    ///
    /// - On amd64 that is fatal: ``ModelKernelError/stackOverflow(segment:segmentBase:address:stackBase:stackSize:)``
    ///   ("kernel stack overflow").
    /// - On i386 the kernel lends the thread its red-zone page: a real page
    ///   on `kvp` is created and mapped read-write there, the statistics
    ///   count it, and the result is true; the caller gives it back with
    ///   ``segkpUnmapRed(on:)`` once the fault is handled. A fault while the
    ///   page is lent counts a double and returns false.
    ///
    /// Refused, naming the value: a stack that is not live, a frame pointer
    /// outside `[base, top]`.
    @discardableResult
    public func segkpMapRed(on stack: KernelStack, framePointer: UInt64) throws(ModelKernelError) -> Bool {
        guard withState({ liveStacks[stack.base] == stack }) else {
            throw .unknownAllocation(kind: "kernel stack", address: stack.base)
        }
        guard framePointer >= stack.base, framePointer <= stack.top else {
            throw .invalidArgument(name: "frame pointer", value: framePointer,
                                   reason: "outside the stack [0x\(String(stack.base, radix: 16)), 0x\(String(stack.top, radix: 16))]")
        }
        let left = framePointer - stack.base
        let lent = withState { redPages[stack.base] != nil }
        if !lent && left >= Self.redMinimumAvailable { return false }
        let page = PhysicalMemory.pageSize
        let redPage = (stack.base & ~(page - 1)) - page
        if model.isAMD64 { throw stackOverflow(at: framePointer, stackBase: stack.base, stackSize: stack.size) }
        if lent {
            withState { redStatistics.doubles &+= 1 }
            return false
        }
        // A plain shared hold, no p_lckcnt: the page is the thread's for the
        // length of one fault, then destroyed.
        try memory.createPages(va: redPage, size: page, vnode: .kvp, protection: [.read, .write], hold: .shared)
        withState {
            redPages[stack.base] = redPage
            redStatistics.mapped &+= 1
            redStatistics.closest = min(redStatistics.closest, UInt32(clamping: left))
        }
        return true
    }

    /// `segkp_unmap_red`: takes back the red-zone page lent to the thread on
    /// `stack`. Refused when none is lent.
    public func segkpUnmapRed(on stack: KernelStack) throws(ModelKernelError) {
        guard let redPage = withState({ redPages[stack.base] }) else {
            throw .unknownAllocation(kind: "lent red-zone page of the stack", address: stack.base)
        }
        try memory.destroyPages(va: redPage, size: PhysicalMemory.pageSize, vnode: .kvp)
        _ = withState { redPages.removeValue(forKey: stack.base) }
    }

    /// The `segkp_map_red` counters (i386; they stay zero on amd64, which panics instead).
    public var redZoneStatistics: RedZoneStatistics { withState { redStatistics } }

    /// The red-zone page lent to the thread on `stack`, if any.
    public func lentRedPage(of stack: KernelStack) -> UInt64? { withState { redPages[stack.base] } }
}
