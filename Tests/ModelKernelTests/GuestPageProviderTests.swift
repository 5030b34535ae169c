import Testing
import Foundation
import GuestMemory
import HostMemory

/// GuestMemory's page-provider hook on its own: who is asked, when, how
/// often, and what a refusal leaves behind.
@Suite("GuestPageProvider: the hook between GuestMemory and whoever backs sysmem")
struct GuestPageProviderTests {
    final class Counting: GuestPageProvider, @unchecked Sendable {
        let lock = NSLock()
        var provided: [(id: Int, length: UInt64)] = []
        var released: [(id: Int, length: UInt64, address: UInt64)] = []
        var refuse = false
        var object: MemoryObject?
        var next: UInt64 = 0x1000_0000

        func provideBacking(forSegment id: Int, length: UInt64) throws(GuestMemoryError) -> GuestPageBacking {
            lock.lock(); defer { lock.unlock() }
            if refuse { throw .host(.system(call: "provider", errno: ENOMEM, detail: "refused")) }
            provided.append((id, length))
            next += length
            return GuestPageBacking(address: next - length, object: object)
        }

        func releaseBacking(_ backing: GuestPageBacking, ofSegment id: Int, length: UInt64) {
            lock.lock(); defer { lock.unlock() }
            released.append((id, length, backing.address))
        }
    }

    @Test("sysmem is asked for, devmem never; destroy gives each backing back exactly once")
    func lifecycle() throws {
        let p = Counting()
        let g = try GuestMemory(limit: 1 << 30, pageProvider: p)
        let sys = try g.allocateSegment(id: 0, length: 64 << 20)
        let rom = try g.allocateSegment(id: 1, length: 1 << 20, name: "bootrom")
        #expect(p.provided.map(\.id) == [0] && p.provided[0].length == 64 << 20)
        #expect(sys.pageBacking?.address == 0x1000_0000 && rom.pageBacking == nil)
        try g.map(gpa: 0, segment: 0, offset: 0, length: 64 << 20, protection: .all)
        try g.write(0x2000, [9, 8, 7])
        #expect(try g.read(0x2000, count: 3) == [9, 8, 7])
        try g.destroy()
        try g.destroy()
        #expect(p.released.count == 1 && p.released[0].id == 0 && p.released[0].address == 0x1000_0000)
    }

    @Test("a refusal changes nothing; a guest dropped without destroy still gives its backing back")
    func refusalAndDeinit() throws {
        let p = Counting()
        p.refuse = true
        do {
            let g = try GuestMemory(limit: 1 << 30, pageProvider: p)
            #expect(throws: GuestMemoryError.host(.system(call: "provider", errno: ENOMEM, detail: "refused"))) {
                try g.allocateSegment(id: 0, length: 4 << 20)
            }
            #expect(g.segments.isEmpty)
            p.refuse = false
            try g.allocateSegment(id: 0, length: 4 << 20)
            #expect(g.segments.count == 1)
        }
        #expect(p.provided.count == 1 && p.released.count == 1, "the dropped guest's segment released its backing")
    }

    @Test("a provider can hand out the host memory itself, at least the segment's length")
    func providedObject() throws {
        let p = Counting()
        p.object = try MemoryObject.memfd(name: "reservoir", size: 8 << 20)
        let g = try GuestMemory(limit: 1 << 30, pageProvider: p)
        let s = try g.allocateSegment(id: 0, length: 8 << 20)
        #expect(s.object === p.object)
        try g.map(gpa: 0, segment: 0, offset: 0, length: 8 << 20, protection: .readWrite)
        try g.write(0x3000, [1])
        #expect(try g.read(0x3000, count: 1) == [1])
        #expect(throws: GuestMemoryError.self) { try g.allocateSegment(id: 2, length: 16 << 20) }
        #expect(p.released.count == 1, "the too-short object's backing went straight back")
        #expect(g.segment(2) == nil)
        try g.destroy()
        #expect(p.released.count == 2)
    }

    @Test("without a provider nothing changes")
    func noProvider() throws {
        let g = try GuestMemory(limit: 1 << 30)
        #expect(g.pageProvider == nil)
        let s = try g.allocateSegment(id: 0, length: 1 << 20)
        #expect(s.pageBacking == nil)
        try g.destroy()
    }
}
