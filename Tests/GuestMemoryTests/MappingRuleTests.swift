import Testing
import GuestMemory

private let mib: UInt64 = 1 << 20

/// bhyve's `vm_mmap_memseg` / `vm_munmap_memseg` / `vm_mem_cleanup` rules
/// (guest-memory.md §7), one case per rule. Every case starts from the same
/// guest: limit 64 MiB, sysmem 0 (16 MiB) mapped rw at 0 for 8 MiB, devmem
/// 1 "fb" (1 MiB) mapped rw at 32 MiB, sysmem 2 (1 MiB) not mapped.
@Suite("Mappings: vm_mmap_memseg, vm_munmap_memseg, vm_mem_cleanup rules")
struct MappingRuleTests {
    enum Op: Sendable {
        case map(gpa: UInt64, id: Int, off: UInt64, len: UInt64, prot: UInt8, wired: Bool)
        case unmap(gpa: UInt64, len: UInt64)
        case fill(extra: Int)  // map `extra` more one-page mappings first
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let rule: String
        let ops: [Op]
        let expected: GuestMemoryError.Kind?
        var testDescription: String { rule }
    }

    static func m(_ gpa: UInt64, _ id: Int, _ off: UInt64, _ len: UInt64, _ prot: UInt8 = 3,
                  wired: Bool = false) -> Op {
        .map(gpa: gpa, id: id, off: off, len: len, prot: prot, wired: wired)
    }

    static let cases: [Case] = [
        Case(rule: "a valid mapping is made", ops: [m(16 * mib, 2, 0, mib)], expected: nil),
        Case(rule: "every non-empty subset of rwx is a valid protection",
             ops: (1...7).map { m(40 * mib + UInt64($0) * 4096, 2, 0, 4096, UInt8($0)) }, expected: nil),
        Case(rule: "a wired mapping is populated and made", ops: [m(16 * mib, 2, 0, mib, wired: true)], expected: nil),
        Case(rule: "an unaligned gpa is invalid", ops: [m(16 * mib + 1, 2, 0, 4096)], expected: .invalid),
        Case(rule: "an unaligned offset is invalid", ops: [m(16 * mib, 2, 512, 4096)], expected: .invalid),
        Case(rule: "an unaligned length is invalid", ops: [m(16 * mib, 2, 0, 4095)], expected: .invalid),
        Case(rule: "length 0 is invalid", ops: [m(16 * mib, 2, 0, 0)], expected: .invalid),
        Case(rule: "protection 0 is invalid", ops: [m(16 * mib, 2, 0, 4096, 0)], expected: .invalid),
        Case(rule: "protection bits beyond rwx are invalid", ops: [m(16 * mib, 2, 0, 4096, 8 | 1)], expected: .invalid),
        Case(rule: "a segment that does not exist is invalid", ops: [m(16 * mib, 7, 0, 4096)], expected: .invalid),
        Case(rule: "a segment id out of range is invalid", ops: [m(16 * mib, 99, 0, 4096)], expected: .invalid),
        Case(rule: "offset + length past the segment is invalid", ops: [m(16 * mib, 2, 4096, mib)], expected: .invalid),
        Case(rule: "offset + length wrapping 2^64 is invalid", ops: [m(16 * mib, 2, ~UInt64(4095), 8192)], expected: .invalid),
        Case(rule: "the 33rd mapping is nospace", ops: [.fill(extra: 30), m(60 * mib, 2, 0, 4096)], expected: .nospace),
        Case(rule: "the 32nd mapping is made", ops: [.fill(extra: 29), m(60 * mib, 2, 0, 4096)], expected: nil),
        Case(rule: "gpa + length past the guest space is a fault", ops: [m(64 * mib - 4096, 2, 0, 8192)], expected: .fault),
        Case(rule: "gpa + length past 2^47 is a fault", ops: [m(1 << 47, 2, 0, 4096)], expected: .fault),
        Case(rule: "gpa + length wrapping 2^64 is a fault", ops: [m(~UInt64(4095), 2, 0, 8192)], expected: .fault),
        Case(rule: "overlapping the start of a mapping is a fault", ops: [m(32 * mib - 4096, 2, 0, 8192)], expected: .fault),
        Case(rule: "overlapping the end of a mapping is a fault", ops: [m(8 * mib - 4096, 2, 0, 8192)], expected: .fault),
        Case(rule: "covering a mapping is a fault", ops: [m(31 * mib, 0, 8 * mib, 3 * mib)], expected: .fault),
        Case(rule: "a mapping inside a mapping is a fault", ops: [m(4 * mib, 2, 0, 4096)], expected: .fault),
        Case(rule: "an adjacent mapping is made", ops: [m(8 * mib, 2, 0, 4096), m(33 * mib, 2, 0, 4096)], expected: nil),
        Case(rule: "the same segment range may be mapped at several gpas",
             ops: [m(16 * mib, 0, 0, 4096), m(17 * mib, 0, 0, 4096)], expected: nil),
        Case(rule: "an exact unmap is done", ops: [.unmap(gpa: 0, len: 8 * mib)], expected: nil),
        Case(rule: "an unmap of part of a mapping is invalid", ops: [.unmap(gpa: 0, len: 4096)], expected: .invalid),
        Case(rule: "an unmap past a mapping is invalid", ops: [.unmap(gpa: 0, len: 16 * mib)], expected: .invalid),
        Case(rule: "an unmap of nothing is invalid", ops: [.unmap(gpa: 16 * mib, len: 4096)], expected: .invalid),
        Case(rule: "an unmap twice is invalid", ops: [.unmap(gpa: 32 * mib, len: mib), .unmap(gpa: 32 * mib, len: mib)],
             expected: .invalid),
        Case(rule: "a BAR move is unmap + map", ops: [.unmap(gpa: 32 * mib, len: mib), m(48 * mib, 1, 0, mib)],
             expected: nil),
    ]

    static func makeGuest() throws -> GuestMemory {
        let g = try GuestMemory(limit: 64 * mib)
        try g.allocateSegment(id: 0, length: 16 * mib)
        try g.allocateSegment(id: 1, length: mib, name: "fb")
        try g.allocateSegment(id: 2, length: mib)
        try g.map(gpa: 0, segment: 0, offset: 0, length: 8 * mib, protection: .readWrite)
        try g.map(gpa: 32 * mib, segment: 1, offset: 0, length: mib, protection: .readWrite)
        return g
    }

    @Test(arguments: cases)
    func rule(_ c: Case) throws {
        try GuestKit.gated {
            let g = try Self.makeGuest()
            defer { try? g.destroy() }
            var got: GuestMemoryError.Kind?
            for op in c.ops {
                let before = g.mappings
                switch op {
                case let .map(gpa, id, off, len, prot, wired):
                    got = GuestKit.kind { () throws(GuestMemoryError) in
                        try g.map(gpa: gpa, segment: id, offset: off, length: len,
                                  protection: GuestProtection(rawValue: prot), wired: wired)
                    }
                    if got == nil {
                        let made = try #require(g.mappings.first { $0.gpa == gpa })
                        #expect(made.length == len && made.segmentID == id && made.offset == off && made.wired == wired)
                        #expect(made.hostAddress == g.hostBase + gpa)
                    }
                case let .unmap(gpa, len):
                    got = GuestKit.kind { () throws(GuestMemoryError) in try g.unmap(gpa: gpa, length: len) }
                    if got == nil { #expect(!g.mappings.contains { $0.gpa == gpa }) }
                case let .fill(extra):
                    for i in 0..<extra {
                        try g.map(gpa: 40 * mib + UInt64(i) * 8192, segment: 2, offset: 0, length: 4096, protection: .read)
                    }
                }
                if got != nil {
                    #expect(g.mappings == before, "a refused call changes nothing")
                    break
                }
            }
            #expect(got == c.expected, "\(c.rule)")
            // The table stays sorted and disjoint whatever happened.
            let maps = g.mappings
            for (a, b) in zip(maps, maps.dropFirst()) { #expect(a.gpa + a.length <= b.gpa) }
            #expect(maps.count <= GuestMemory.maxMappings)
        }
    }

    @Test func resetKeepsSysmemAndDropsDevmem() throws {
        try GuestKit.gated {
            let g = try Self.makeGuest()
            defer { try? g.destroy() }
            try g.map(gpa: 16 * mib, segment: 2, offset: 0, length: mib, protection: .read)
            try g.write(4096, [0xAA, 0xBB])
            try g.write(32 * mib, [0xCC])
            try g.reset()
            #expect(g.mappings.map(\.gpa) == [0, 16 * mib], "devmem mapping dropped, sysmem kept")
            #expect(try g.read(4096, count: 2) == [0xAA, 0xBB], "sysmem keeps its bytes")
            #expect(g.segments.map(\.id) == [0, 1, 2], "every segment stays")
            #expect(g.translate(32 * mib, 1, .read) == nil)
            // The BAR comes back elsewhere; devmem kept its bytes in its memfd.
            try g.map(gpa: 48 * mib, segment: 1, offset: 0, length: mib, protection: .readWrite)
            #expect(try g.read(48 * mib, count: 1) == [0xCC])
        }
    }

    @Test func resetAndUnmapAreRefusedWhileHeld() throws {
        try GuestKit.gated {
            let g = try Self.makeGuest()
            defer { try? g.destroy() }
            let h = try g.hold(32 * mib + 8, .read)
            #expect(GuestKit.kind { () throws(GuestMemoryError) in try g.reset() } == .invalid)
            #expect(GuestKit.kind { () throws(GuestMemoryError) in try g.unmap(gpa: 32 * mib, length: mib) } == .invalid)
            #expect(g.mappings.count == 2)
            h.release()
            try g.reset()
            #expect(g.mappings.count == 1)
        }
    }
}
