import Testing
import Vmem

/// Audit stacks resolved as mdb's `%a` prints them, and WHO: the first frame
/// that is not the allocator's own.
@Suite("StackSymbol: audit frames by name")
struct StackSymbolTests {
    @Test func whoIsTheFirstFrameOutsideTheAllocator() throws {
        let arena = try Arena(name: "who", base: 0x1000, size: 0x10_0000, quantum: 0x1000,
                              debugging: ArenaDebugging(audit: true))
        let a = try arena.alloc(0x2000)
        let audit = try #require(arena.segments(.allocated).first { $0.start == a }?.audit)
        let frames = audit.stack.map(StackSymbol.init)
        // The record starts inside the allocator (its capture frames are dropped) ...
        #expect(frames.first?.isAllocator == true, "\(frames.prefix(3))")
        #expect(frames.first?.name?.hasPrefix("Vmem.Arena.") == true)
        // ... and WHO is the first frame past it: this test.
        let who = try #require(audit.caller)
        #expect(!who.isAllocator && who.name?.hasPrefix("VmemTests.") == true, "\(who)")
        #expect(who.description == "\(who.name!)+0x\(String(who.offset, radix: 16))")
        #expect(who.functionStart == who.address - who.offset)
    }

    @Test func anAddressWithoutASymbolIsPrintedBare() {
        let s = StackSymbol(0x10)
        #expect(s.rawName == nil && s.name == nil && s.functionStart == nil && !s.isAllocator)
        #expect(s.description == "0x10")
        #expect(AuditRecord(thread: 1, timestamp: 2, stack: []).caller == nil)
    }
}
