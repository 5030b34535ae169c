import Testing
import AddressSpace
import PhysicalMemory
@testable import ModelKernel

/// `segkp_map_red` (address-space.md §3.7): a fault taken with less than
/// `red_minavail` (5000) bytes of stack left panics on amd64 and, on i386,
/// lends the thread its red-zone page for the fault, with the statistics.
@Suite("segkp_map_red: running low on stack")
struct RedZoneLendingTests {
    static let page = PhysicalMemory.pageSize

    static func redPage(_ s: KernelStack) -> UInt64 { (s.base & ~(page - 1)) - page }

    @Test("i386: a fault with little stack left is served on a lent red page, given back after")
    func i386LendsTheRedPage() throws {
        let k = try ModelKernel(model: .i386, physmem: GiB)
        let stack = try k.allocateStack(.thread)
        let red = Self.redPage(stack)
        // Without a thread context the red zone is still an overflow.
        #expect(throws: ModelKernelError.self) { try k.touch(red, access: .write) }
        let pfn = try k.touch(red + 8, access: .write, thread: (stack, stack.base + 100))
        #expect(k.redZoneStatistics.mapped == 1 && k.redZoneStatistics.closest == 100 && k.redZoneStatistics.doubles == 0)
        #expect(pfn > 0)
        // Given back when the fault is over: no mapping, no page.
        #expect(k.hat.translation(of: red) == nil && k.lentRedPage(of: stack) == nil)
        #expect(k.physicalMemory.pageFind(vnode: .kvp, offset: red) == nil)
        try k.verify()
    }

    @Test("i386: a second fault while lent counts a double; verify accepts the lent page")
    func i386Doubles() throws {
        let k = try ModelKernel(model: .i386, physmem: GiB)
        let stack = try k.allocateStack(.lwp)
        #expect(try k.segkpMapRed(on: stack, framePointer: stack.base + 4999))
        #expect(k.lentRedPage(of: stack) == Self.redPage(stack))
        #expect(k.hat.translation(of: Self.redPage(stack))?.protection.contains(.write) == true)
        try k.verify()
        #expect(try k.segkpMapRed(on: stack, framePointer: stack.base + 3000) == false)
        #expect(k.redZoneStatistics.mapped == 1 && k.redZoneStatistics.doubles == 1 && k.redZoneStatistics.closest == 4999)
        try k.segkpUnmapRed(on: stack)
        #expect(throws: ModelKernelError.unknownAllocation(kind: "lent red-zone page of the stack", address: stack.base)) {
            try k.segkpUnmapRed(on: stack)
        }
        // Enough stack left: nothing happens.
        #expect(try k.segkpMapRed(on: stack, framePointer: stack.base + ModelKernel.redMinimumAvailable) == false)
        #expect(k.redZoneStatistics.mapped == 1)
        // A thread that exits while lent gives the page back with its stack.
        _ = try k.segkpMapRed(on: stack, framePointer: stack.base)
        try k.freeStack(stack)
        #expect(k.physicalMemory.pageFind(vnode: .kvp, offset: Self.redPage(stack)) == nil)
        try k.verify()
    }

    @Test("amd64: too little stack left is a kernel stack overflow, and nothing is lent")
    func amd64Panics() throws {
        let k = try ModelKernel(model: .post12608, physmem: GiB)
        let stack = try k.allocateStack(.thread)
        #expect(try k.segkpMapRed(on: stack, framePointer: stack.base + 5000) == false)
        do {
            _ = try k.segkpMapRed(on: stack, framePointer: stack.base + 10)
            Issue.record("amd64 lent a red page")
        } catch {
            guard case let .stackOverflow(_, _, address, base, size) = error else { Issue.record("\(error)"); return }
            #expect(address == stack.base + 10 && base == stack.base && size == stack.size)
        }
        #expect(k.redZoneStatistics == RedZoneStatistics() && k.lentRedPage(of: stack) == nil)
        // Any fault taken with a low frame pointer panics first: the same
        // touch without the thread is segkmem's FC_NOSUPPORT, not an overflow.
        let kvseg = try #require(k.segment(named: "kvseg"))
        let va = kvseg.base + kvseg.size - 4096
        do { try k.touch(va); Issue.record("resolved") } catch {
            if case .stackOverflow = error { Issue.record("no thread, yet an overflow") }
        }
        do { try k.touch(va, thread: (stack, stack.base + 8)); Issue.record("resolved") } catch {
            guard case .stackOverflow = error else { Issue.record("\(error)"); return }
        }
        try k.verify()
    }

    @Test("bad input names the value")
    func badInput() throws {
        let k = try ModelKernel(model: .i386, physmem: GiB)
        let stack = try k.allocateStack(.thread)
        #expect(throws: ModelKernelError.invalidArgument(name: "frame pointer", value: stack.top + 1,
                                                          reason: "outside the stack [0x\(String(stack.base, radix: 16)), 0x\(String(stack.top, radix: 16))]")) {
            try k.segkpMapRed(on: stack, framePointer: stack.top + 1)
        }
        try k.freeStack(stack)
        #expect(throws: ModelKernelError.unknownAllocation(kind: "kernel stack", address: stack.base)) {
            try k.segkpMapRed(on: stack, framePointer: stack.base)
        }
    }
}
