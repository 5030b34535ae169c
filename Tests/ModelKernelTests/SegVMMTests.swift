import Testing
import Foundation
import Synchronization
import AddressSpace
import PhysicalMemory
@testable import ModelKernel

/// segvmm: a hosted guest's memory mapped into a process (address-space.md
/// §3.10, the 2020 design; §3.3 for its ops table).
@Suite("segvmm: guest memory mapped into a process")
struct SegVMMTests {
    static let userRW: Protection = [.read, .write, .user]

    /// A kernel, a 64 MiB guest and a process address space.
    static func setup() throws -> (ModelKernel, ModelGuest, AddressSpace) {
        let k = try ModelKernel(model: .post12608, physmem: 1 * GiB)
        let g = try k.createGuest(size: 64 * MiB)
        let p = try k.createProcessAddressSpace(name: "bhyve")
        return (k, g, p)
    }

    static func driver(_ s: Segment) throws -> SegVMM { try #require(s.driver as? SegVMM) }

    @Test("segvmm_create refuses kaddr at or below _userlimit, a wrapping range, no PROT_USER, an unaligned kaddr")
    func createChecks() throws {
        let (k, g, p) = try Self.setup()
        let object = try #require(g.object(forSegment: 0))
        let limit = k.layout.userlimit
        func refused(_ kaddr: UInt64, _ size: UInt64, _ prot: Protection, name: String, value: UInt64) {
            let args = SegVMM.Arguments(kernelAddress: kaddr, protection: prot, object: object)
            do {
                try SegVMM.map(into: p, address: 0x4000_0000, size: size, arguments: args, userLimit: limit,
                               kernelHAT: k.hat)
                Issue.record("segvmm_create took kaddr 0x\(String(kaddr, radix: 16)) prot \(prot)")
            } catch {
                guard case let .invalidArgument(n, v, _) = error else { Issue.record("unexpected \(error)"); return }
                #expect(n == name && v == value, "\(error)")
            }
        }
        refused(limit, 4096, Self.userRW, name: "segvmm kaddr", value: limit)
        refused(0x1000, 4096, Self.userRW, name: "segvmm kaddr", value: 0x1000)
        refused(UInt64.max - 0xFFF, 2 * 4096, Self.userRW, name: "segvmm kaddr", value: UInt64.max - 0xFFF)
        // Ending exactly at 2^64 wraps to 0 in C: refused too.
        refused(UInt64.max - 0x1FFF, 2 * 4096, Self.userRW, name: "segvmm kaddr", value: UInt64.max - 0x1FFF)
        refused(object.kernelAddress, 4096, [.read, .write], name: "segvmm protection", value: 3)
        refused(object.kernelAddress + 0x10, 4096, Self.userRW, name: "segvmm kaddr", value: object.kernelAddress + 0x10)
        // Nothing was mapped and no hold was kept.
        #expect(p.segmentCount == 0 && p.size == 0)
        #expect(object.mappingHolds == 0 && object.referenceCount == 1)
        // The same arguments, correct, are taken.
        let args = SegVMM.Arguments(kernelAddress: object.kernelAddress, protection: Self.userRW, object: object)
        let s = try SegVMM.map(into: p, address: 0x4000_0000, size: 8192, arguments: args, userLimit: limit,
                               kernelHAT: k.hat)
        #expect(s.base == 0x4000_0000 && s.size == 8192 && object.mappingHolds == 1)
        try k.verify()
    }

    @Test("mapGuestSegment refuses bad input with a typed error naming the value, and maps nothing")
    func entryPointRefusals() throws {
        let (k, g, p) = try Self.setup()
        try g.memory.allocateSegment(id: 1, length: 1 * MiB, name: "bootrom")
        func refused(_ expected: ModelKernelError, segment id: Int = 0, offset: UInt64 = 0, length: UInt64 = MiB,
                     protection: Protection = SegVMMTests.userRW, guest: ModelGuest? = nil, space: AddressSpace? = nil,
                     sourceLocation: SourceLocation = #_sourceLocation) {
            do {
                try k.mapGuestSegment(guest ?? g, segment: id, offset: offset, length: length, protection: protection,
                                      into: space ?? p)
                Issue.record("mapped \(id) +\(offset) \(length) \(protection)", sourceLocation: sourceLocation)
            } catch {
                #expect(error == expected, sourceLocation: sourceLocation)
            }
        }
        func argument(_ e: ModelKernelError) -> (String, UInt64)? {
            if case let .invalidArgument(n, v, _) = e { return (n, v) }
            return nil
        }
        func refused(name: String, value: UInt64, segment id: Int = 0, offset: UInt64 = 0, length: UInt64 = MiB,
                     protection: Protection = SegVMMTests.userRW, sourceLocation: SourceLocation = #_sourceLocation) {
            do {
                try k.mapGuestSegment(g, segment: id, offset: offset, length: length, protection: protection, into: p)
                Issue.record("mapped \(id) +\(offset) \(length) \(protection)", sourceLocation: sourceLocation)
            } catch {
                let got = argument(error)
                #expect(got?.0 == name && got?.1 == value, "\(error)", sourceLocation: sourceLocation)
            }
        }
        refused(name: "length", value: 0, length: 0)
        refused(name: "offset", value: 0x800, offset: 0x800)
        refused(name: "length", value: 0x1800, length: 0x1800)
        refused(name: "length", value: 2 * MiB, offset: 63 * MiB, length: 2 * MiB)
        refused(name: "length", value: 0x1000, offset: UInt64.max & ~0xFFF, length: 0x1000)
        refused(name: "guest segment id", value: 5, segment: 5)
        refused(name: "guest segment id", value: UInt64.max, segment: -1)
        refused(name: "guest segment id", value: 1, segment: 1)          // devmem: no kernel pages
        refused(name: "segvmm protection", value: 3, protection: [.read, .write])
        refused(name: "protection", value: 0x1B, protection: Protection(rawValue: 0x1B))
        // Not this kernel's guest, not a process address space.
        let other = try ModelKernel(model: .post12608, physmem: 512 * MiB)
        let stranger = try other.createGuest(size: 4 * MiB)
        refused(.unknownAllocation(kind: "guest (vm_t)", address: stranger.address), guest: stranger)
        refused(.unknownAllocation(kind: "process address space (struct as)", address: k.kas.address), space: k.kas)
        #expect(p.segmentCount == 0)
        #expect(g.objects.allSatisfy { $0.mappingHolds == 0 })
        try k.verify()
    }

    @Test("a fault loads the frame the kernel maps at kaddr, 4 KiB at a time, without locking the page")
    func faultIn() throws {
        let (k, g, p) = try Self.setup()
        let object = try #require(g.object(forSegment: 0))
        let s = try k.mapGuestSegment(g, segment: 0, offset: 2 * MiB, length: 4 * MiB, protection: Self.userRW, into: p)
        let d = try Self.driver(s)
        #expect(d.kernelAddress == object.kernelAddress + 2 * MiB)
        // First fit, above page zero, below the user limit, congruent to kaddr modulo 2 MiB.
        #expect(s.base >= ModelKernel.lowestUserAddress && s.base + s.size <= k.layout.userlimit)
        #expect(s.base % (2 * MiB) == d.kernelAddress % (2 * MiB))
        #expect(s.base < 4 * MiB)
        #expect(p.hat.translation(of: s.base) == nil, "nothing is loaded before a fault")

        let va = s.base + 0x12_3000
        let kaddr = va - s.base + d.kernelAddress
        let kernel = try #require(k.hat.translation(of: kaddr))
        #expect(kernel.pageSize > 4096, "the kernel maps guest memory with large pages; segvmm loads 4 KiB of one")
        let pageBefore = try k.physicalMemory.page(kernel.pfn)
        try p.fault(address: va + 0x10, size: 8, type: .invalid, access: .write)
        let user = try #require(p.hat.translation(of: va))
        #expect(user.pfn == kernel.pfn && user.pageSize == 4096)
        #expect(user.protection == Self.userRW)
        // The frame is the guest page named (KV_VVP, kaddr), and its page_t was not touched.
        let page = try k.physicalMemory.page(user.pfn)
        #expect(page.vnode == .vvp && page.offset == kaddr)
        #expect(page.lock == pageBefore.lock && page.lockCount == pageBefore.lockCount)
        #expect(p.hat.translation(of: va + 4096) == nil, "one page only")
        // A range faults in page by page, each to its own kernel frame.
        try p.fault(address: s.base, size: 16 * 4096, type: .invalid, access: .read)
        for i in UInt64(0)..<16 {
            let t = try #require(p.hat.translation(of: s.base + i * 4096))
            #expect(t.pfn == k.hat.translation(of: d.kernelAddress + i * 4096)?.pfn)
        }
        // A second fault on a loaded page changes nothing.
        try p.fault(address: va, size: 4096, type: .invalid, access: .read)
        #expect(p.hat.translation(of: va)?.pfn == kernel.pfn)
        // Outside the segment: FC_NOMAP from the address space.
        do {
            try p.fault(address: s.base + s.size, size: 4096, type: .invalid, access: .read)
            Issue.record("a fault past the segment was resolved")
        } catch {
            #expect(error.faultCode == .noMapping)
        }
        #expect(p.faultStatistics.invalid == 4)
        try k.verify()
    }

    @Test("F_PROT is FC_PROT")
    func protectionFault() throws {
        let (k, g, p) = try Self.setup()
        let s = try k.mapGuestSegment(g, segment: 0, offset: 0, length: MiB, protection: [.read, .user], into: p)
        try p.fault(address: s.base, size: 4096, type: .invalid, access: .read)
        do {
            try p.fault(address: s.base, size: 4096, type: .protection, access: .write)
            Issue.record("F_PROT was resolved")
        } catch {
            #expect(error.faultCode == .protection)
        }
        #expect(p.faultStatistics.protection == 1)
        #expect(p.hat.translation(of: s.base)?.protection == [.read, .user])
    }

    @Test("soft locks are counted per page; unmap is EAGAIN while any is held")
    func softLocks() throws {
        let (k, g, p) = try Self.setup()
        let object = try #require(g.object(forSegment: 0))
        let s = try k.mapGuestSegment(g, segment: 0, offset: 0, length: 2 * MiB, protection: Self.userRW, into: p)
        let d = try Self.driver(s)
        try p.fault(address: s.base, size: 3 * 4096, type: .softLock, access: .read)
        try p.fault(address: s.base + 0x10_0000, size: 1, type: .softLock, access: .write)
        #expect(d.softLockCount == 4)
        #expect(p.hat.translation(of: s.base + 2 * 4096) != nil, "F_SOFTLOCK faults the pages in")
        #expect(throws: AddressSpaceError.busy(segmentBase: s.base, address: s.base, size: s.size)) {
            try p.unmap(address: s.base, size: s.size)
        }
        #expect(p.segat(s.base) === s && object.mappingHolds == 1)
        // Nor can the process go (as_free unmaps everything).
        #expect(throws: ModelKernelError.addressSpace(.busy(segmentBase: s.base, address: s.base, size: s.size))) {
            try k.destroyProcessAddressSpace(p)
        }
        #expect(k.processAddressSpaces.count == 1)
        try p.fault(address: s.base, size: 3 * 4096, type: .softUnlock, access: .other)
        #expect(d.softLockCount == 1)
        // Unlocking more than is locked is refused and changes nothing.
        #expect(throws: SegmentError.errno(Errno.EINVAL, operation: .fault)) {
            try d.fault(p.hat, s, address: s.base, size: 2 * 4096, type: .softUnlock, access: .other)
        }
        #expect(d.softLockCount == 1)
        #expect(throws: AddressSpaceError.self) { try p.unmap(address: s.base, size: s.size) }
        try p.fault(address: s.base + 0x10_0000, size: 4096, type: .softUnlock, access: .other)
        #expect(d.softLockCount == 0)
        try p.unmap(address: s.base, size: s.size)
        #expect(p.segmentCount == 0 && object.mappingHolds == 0)
        try k.verify()
    }

    @Test("only the whole segment unmaps; that unloads the user HAT and releases the hold")
    func unmap() throws {
        let (k, g, p) = try Self.setup()
        let object = try #require(g.object(forSegment: 0))
        let kernelPagesBefore = k.memstat().kernel
        let s = try k.mapGuestSegment(g, segment: 0, offset: 4 * MiB, length: 4 * MiB, protection: Self.userRW, into: p)
        #expect(object.referenceCount == 2 && object.mappingHolds == 1)
        #expect(p.size == 4 * MiB)
        try p.fault(address: s.base, size: s.size, type: .invalid, access: .read)
        // Any part is EINVAL: from the bottom, the top or the middle.
        for (a, n) in [(s.base, UInt64(4096)), (s.base + s.size - 4096, 4096), (s.base + MiB, MiB)] {
            do {
                try p.unmap(address: a, size: n)
                Issue.record("a partial unmap of [0x\(String(a, radix: 16)), +0x\(String(n, radix: 16))) was taken")
            } catch {
                #expect(error == .segment(.errno(Errno.EINVAL, operation: .unmap), segmentBase: s.base))
            }
        }
        #expect(p.segat(s.base) === s && p.hat.translation(of: s.base) != nil && object.mappingHolds == 1)
        // The guest cannot go while a process maps it.
        #expect(throws: ModelKernelError.guestMemoryMapped(guest: g.address, segment: 0, holds: 1)) {
            try k.destroyGuest(g)
        }
        // ... and the refusal left the guest as it was: it can be mapped again.
        let again = try k.mapGuestSegment(g, segment: 0, offset: 0, length: MiB, protection: Self.userRW, into: p)
        #expect(object.mappingHolds == 2 && !object.isRetired)
        try p.unmap(address: again.base, size: again.size)
        try p.unmap(address: s.base, size: s.size)
        #expect(p.segmentCount == 0 && p.size == 0)
        #expect(object.referenceCount == 1 && object.mappingHolds == 0)
        #expect(try !(Self.driver(s).holdsObject))
        for va in stride(from: s.base, to: s.base + s.size, by: Int(MiB)) { #expect(p.hat.translation(of: va) == nil) }
        // The user page table gave its leaf tables back (the top levels stay).
        #expect(k.memstat().kernel <= kernelPagesBefore + 3)
        try k.verify()
        try k.destroyGuest(g)
        #expect(object.isRetired && g.object(forSegment: 0) == nil)
        #expect(throws: ModelKernelError.unknownAllocation(kind: "guest (vm_t)", address: g.address)) {
            try k.mapGuestSegment(g, segment: 0, offset: 0, length: MiB, protection: Self.userRW, into: p)
        }
        try k.destroyProcessAddressSpace(p)
        try k.verify()
    }

    @Test("retiring a guest's objects is all or nothing, and a retired object cannot be mapped")
    func retire() throws {
        let (k, g, p) = try Self.setup()
        let object = try #require(g.object(forSegment: 0))
        let s = try k.mapGuestSegment(g, segment: 0, offset: 0, length: MiB, protection: Self.userRW, into: p)
        #expect(g.closeObjects() === object && !object.isRetired, "a held object is not retired")
        #expect(g.object(forSegment: 0) === object, "a refused close closes nothing")
        try p.unmap(address: s.base, size: s.size)
        #expect(g.closeObjects() == nil && object.isRetired && g.object(forSegment: 0) == nil)
        #expect(throws: ModelKernelError.unknownAllocation(kind: "guest (vm_t)", address: g.address)) {
            try k.mapGuestSegment(g, segment: 0, offset: 0, length: MiB, protection: Self.userRW, into: p)
        }
        #expect(p.segmentCount == 0 && object.mappingHolds == 0)
        g.reopenObjects()
        #expect(!object.isRetired)
        let again = try k.mapGuestSegment(g, segment: 0, offset: 0, length: MiB, protection: Self.userRW, into: p)
        #expect(g.object(forSegment: 0) === object && object.mappingHolds == 1)
        try p.unmap(address: again.base, size: again.size)
        try k.verify()
    }

    final class Flag: Sendable {
        let value = Atomic<Bool>(false)
        let maps = Atomic<Int>(0)
        let mapperDone = Atomic<Bool>(false)
    }

    @Test("a guest destroyed while a process maps it in a loop is never freed under a mapping")
    func destroyRace() throws {
        for _ in 0..<20 {
            let (k, g, p) = try Self.setup()
            let destroyed = Flag()
            DispatchQueue.concurrentPerform(iterations: 2) { worker in
                if worker == 0 {
                    for _ in 0..<50 {
                        guard let s = try? k.mapGuestSegment(g, segment: 0, offset: 0, length: MiB,
                                                             protection: Self.userRW, into: p) else { continue }
                        destroyed.maps.add(1, ordering: .relaxed)
                        // While the mapping holds the object, the guest stays.
                        let wasDestroyed = destroyed.value.load(ordering: .sequentiallyConsistent)
                        #expect(k.guest(at: g.address) === g && !wasDestroyed)
                        try? p.fault(address: s.base, size: 4096, type: .invalid, access: .read)
                        try? p.unmap(address: s.base, size: s.size)
                    }
                    destroyed.mapperDone.store(true, ordering: .releasing)
                } else {
                    // Start once the mapper is in its loop, so the two overlap.
                    while destroyed.maps.load(ordering: .relaxed) < 5 && !destroyed.mapperDone.load(ordering: .acquiring) {}
                    while true {
                        do throws(ModelKernelError) {
                            try k.destroyGuest(g)
                            destroyed.value.store(true, ordering: .sequentiallyConsistent)
                            return
                        } catch {
                            guard case .guestMemoryMapped = error else { Issue.record("unexpected \(error)"); return }
                        }
                    }
                }
            }
            let wasDestroyed = destroyed.value.load(ordering: .relaxed)
            #expect(wasDestroyed && destroyed.maps.load(ordering: .relaxed) >= 5)
            #expect(p.segmentCount == 0 && k.hostedGuests.isEmpty)
            try k.verify()
        }
    }

    @Test("dup takes a second hold; the child's free gives it back")
    func dup() throws {
        let (k, g, p) = try Self.setup()
        let object = try #require(g.object(forSegment: 0))
        let s = try k.mapGuestSegment(g, segment: 0, offset: 0, length: MiB, protection: Self.userRW, into: p)
        let d = try Self.driver(s)
        try p.fault(address: s.base, size: 4096, type: .softLock, access: .read)
        let child = try k.createProcessAddressSpace(name: "child")
        let c = try #require(try d.dup(s, into: child) as? SegVMM)
        #expect(object.mappingHolds == 2)
        #expect(c.kernelAddress == d.kernelAddress && c.protection == d.protection && c.object === d.object)
        #expect(c.softLockCount == 0 && d.softLockCount == 1)
        try c.free(s)
        try c.free(s)   // released once only
        #expect(object.mappingHolds == 1)
        try p.fault(address: s.base, size: 4096, type: .softUnlock, access: .other)
        try k.destroyProcessAddressSpace(p)
        #expect(object.mappingHolds == 0 && k.processAddressSpaces.map(\.name) == ["child"])
        // A destroyed process is no longer the kernel's to map into or destroy.
        let gone = ModelKernelError.unknownAllocation(kind: "process address space (struct as)", address: p.address)
        #expect(throws: gone) {
            try k.mapGuestSegment(g, segment: 0, offset: 0, length: MiB, protection: Self.userRW, into: p)
        }
        #expect(throws: gone) { try k.destroyProcessAddressSpace(p) }
        try k.verify()
    }

    @Test("setprot is EACCES; checkprot, gettype, getoffset, getprot, incore, getvp, getmemid, dump")
    func otherOps() throws {
        let (k, g, p) = try Self.setup()
        let object = try #require(g.object(forSegment: 0))
        let s = try k.mapGuestSegment(g, segment: 0, offset: MiB, length: MiB, protection: [.read, .user], into: p)
        let d = try Self.driver(s)
        #expect(throws: AddressSpaceError.segment(.errno(Errno.EACCES, operation: .setprot), segmentBase: s.base)) {
            try p.setProtection(address: s.base, size: 4096, protection: Self.userRW)
        }
        try p.checkProtection(address: s.base, size: s.size, protection: [.read])
        #expect(throws: AddressSpaceError.segment(.errno(Errno.EACCES, operation: .checkprot), segmentBase: s.base)) {
            try p.checkProtection(address: s.base, size: 4096, protection: [.write])
        }
        #expect(try d.gettype(s, address: s.base) == .shared)
        #expect(try d.getoffset(s, address: s.base + 0x5000) == 0, "no kernel offset leaks to the process")
        #expect(try d.getprot(s, address: s.base, size: 3 * 4096) == [[.read, .user], [.read, .user], [.read, .user]])
        #expect(try d.incore(s, address: s.base, size: 2 * 4096) == [.inCore, .inCore])
        #expect(try d.getvp(s, address: s.base) == nil)
        #expect(try d.getmemid(s, address: s.base + 0x3000) == MemoryID(object: object.identity, offset: 0x3000))
        try p.fault(address: s.base, size: s.size, type: .invalid, access: .read)
        var dumped = 0
        try d.dump(s) { _, _ in dumped += 1 }
        #expect(dumped == 0)
        #expect(throws: SegmentError.errno(Errno.ENOTSUP, operation: .pagelock)) {
            _ = try d.pagelock(s, address: s.base, size: 4096, type: .lock, access: .read)
        }
        #expect(throws: SegmentError.errno(Errno.ENOTSUP, operation: .setpagesize)) {
            try d.setpagesize(s, address: s.base, size: s.size, sizeCode: 1)
        }
        #expect(try !d.capable(s, capability: .noMinorFaults))
    }

    @Test("kluster, swapout, getpolicy and inherit are not in the table: notSupported, never a trap")
    func missingOps() throws {
        let (k, g, p) = try Self.setup()
        let s = try k.mapGuestSegment(g, segment: 0, offset: 0, length: MiB, protection: Self.userRW, into: p)
        let d = try Self.driver(s)
        for op in [SegmentOperation.kluster, .swapout, .getpolicy, .inherit] {
            #expect(!d.supportedOperations.contains(op), "\(op)")
        }
        #expect(d.supportedOperations.operations.count == 20)
        #expect(throws: SegmentError.notSupported(.kluster, driver: "segvmm_ops")) {
            _ = try d.kluster(s, address: s.base, delta: 4096)
        }
        #expect(throws: SegmentError.notSupported(.swapout, driver: "segvmm_ops")) { _ = try d.swapout(s) }
        #expect(throws: SegmentError.notSupported(.getpolicy, driver: "segvmm_ops")) {
            _ = try d.getpolicy(s, address: s.base)
        }
        #expect(throws: SegmentError.notSupported(.inherit, driver: "segvmm_ops")) {
            try d.inherit(s, address: s.base, size: 4096, behavior: .zero)
        }
    }

    @Test("<proc>::walk seg | ::seg shows the segvmm segment with segvmm_ops")
    func segRendering() throws {
        let (k, g, p) = try Self.setup()
        let a = try k.mapGuestSegment(g, segment: 0, offset: 0, length: 8 * MiB, protection: Self.userRW, into: p)
        let b = try k.mapGuestSegment(g, segment: 0, offset: 8 * MiB, length: 64 * 1024, protection: Self.userRW, into: p)
        // First fit: the small one takes the hole below the first if it fits there.
        let low = ModelKernel.lowestUserAddress
        #expect(b.base == (a.base - low >= 64 * 1024 ? low : a.base + a.size))
        let lines = p.renderSegWalk().split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines[0] == "             SEG             BASE             SIZE             DATA OPS")
        let row = try #require(lines.first { $0.contains(" " + String(a.base, radix: 16) + " ") })
        #expect(row == SegRendering.row(a))
        let fields = row.split(separator: " ").map(String.init)
        #expect(fields == [String(a.address, radix: 16), String(a.base, radix: 16), "800000", "0", "segvmm_ops"])
        #expect(lines.contains(SegRendering.row(b)) && SegRendering.row(b).contains(" 10000 "))
        #expect(lines.dropFirst().allSatisfy { $0.hasSuffix(" segvmm_ops") })
        #expect(g.object(forSegment: 0)?.mappingHolds == 2)
        try k.verify()
    }
}
