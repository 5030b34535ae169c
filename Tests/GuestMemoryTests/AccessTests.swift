import Testing
import GuestMemory
import HostMemory

/// VMM access: translate in one mapping with the rights, copies split
/// across adjacent mappings and all-or-nothing, atomics aligned and in one
/// mapping, aliasing.
@Suite("VMM access: translate, copies, atomics, aliasing")
struct AccessTests {
    static let page = GuestKit.page

    /// sysmem 0 (64 KiB): [0, 16K) rw from off 0, [16K, 32K) r from off 16K,
    /// [32K, 48K) rw from off 32K; devmem 1 "rom" (8 KiB) at 1 MiB rx;
    /// and the same sysmem page 0 aliased at 2 MiB, rw.
    static func makeGuest() throws -> GuestMemory {
        let g = try GuestMemory(limit: 4 << 20)
        try g.allocateSegment(id: 0, length: 64 << 10)
        try g.allocateSegment(id: 1, length: 8 << 10, name: "rom")
        try g.map(gpa: 0, segment: 0, offset: 0, length: 16 << 10, protection: .readWrite)
        try g.map(gpa: 16 << 10, segment: 0, offset: 16 << 10, length: 16 << 10, protection: .read)
        try g.map(gpa: 32 << 10, segment: 0, offset: 32 << 10, length: 16 << 10, protection: .readWrite)
        try g.map(gpa: 1 << 20, segment: 1, offset: 0, length: 8 << 10, protection: [.read, .execute])
        try g.map(gpa: 2 << 20, segment: 0, offset: 0, length: page, protection: .readWrite)
        return g
    }

    struct TranslateCase: CustomTestStringConvertible, Sendable {
        let rule: String
        let gpa: UInt64, len: UInt64, prot: UInt8
        let expected: GuestMemoryError?
        var testDescription: String { rule }
    }

    static let translateCases: [TranslateCase] = [
        .init(rule: "inside one mapping with the rights", gpa: 100, len: 200, prot: 3, expected: nil),
        .init(rule: "the last byte of a mapping", gpa: (16 << 10) - 1, len: 1, prot: 3, expected: nil),
        .init(rule: "execute of an rx mapping", gpa: 1 << 20, len: 4096, prot: 5, expected: nil),
        .init(rule: "write of an r mapping", gpa: 16 << 10, len: 1, prot: 2,
              expected: .protectionDenied(gpa: 16 << 10, requested: .write, mapped: .read)),
        .init(rule: "execute of an rw mapping", gpa: 0, len: 1, prot: 4,
              expected: .protectionDenied(gpa: 0, requested: .execute, mapped: .readWrite)),
        .init(rule: "across two adjacent mappings", gpa: (16 << 10) - 2, len: 4, prot: 1,
              expected: .crossesMapping(gpa: (16 << 10) - 2, length: 4, mappingGPA: 0, mappingLength: 16 << 10)),
        .init(rule: "an unmapped gpa", gpa: 48 << 10, len: 1, prot: 1, expected: .unmapped(gpa: 48 << 10)),
        .init(rule: "into the hole after a mapping", gpa: (48 << 10) - 1, len: 2, prot: 1,
              expected: .crossesMapping(gpa: (48 << 10) - 1, length: 2, mappingGPA: 32 << 10, mappingLength: 16 << 10)),
        .init(rule: "gpa + len wrapping", gpa: ~UInt64(0), len: 2, prot: 1, expected: .rangeWraps(gpa: ~UInt64(0), length: 2)),
        .init(rule: "length 0", gpa: 0, len: 0, prot: 1, expected: .zeroLength(gpa: 0)),
        .init(rule: "no rights asked", gpa: 0, len: 1, prot: 0, expected: .invalidProtection(rawValue: 0)),
    ]

    @Test(arguments: translateCases)
    func translate(_ c: TranslateCase) throws {
        try GuestKit.gated {
            let g = try Self.makeGuest()
            defer { try? g.destroy() }
            let p = GuestProtection(rawValue: c.prot)
            let e = GuestKit.error { () throws(GuestMemoryError) in try g.translation(c.gpa, c.len, p) }
            #expect(e == c.expected, "\(c.rule)")
            #expect((g.translate(c.gpa, c.len, p) == nil) == (c.expected != nil), "vm_map_gpa is nil exactly when refused")
            if c.expected == nil {
                let t = try g.translation(c.gpa, c.len, p)
                #expect(t.hostAddress == g.hostBase + c.gpa)
                #expect(t.offset == t.mapping.offset + (c.gpa - t.mapping.gpa))
            }
        }
    }

    @Test func copiesSplitAcrossAdjacentMappingsAllOrNothing() throws {
        try GuestKit.gated {
            let g = try Self.makeGuest()
            defer { try? g.destroy() }
            // Read across rw | r | rw: fine.
            let bytes = (0..<UInt64(40 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            try g.write(0, Array(bytes[0..<(16 << 10)]))
            #expect(try g.read(100, count: 40 << 10).count == 40 << 10)
            // Write across rw | r: refused, and nothing of the rw part is written.
            let before = try g.read((16 << 10) - 8, count: 16)
            #expect(GuestKit.error { () throws(GuestMemoryError) in try g.write((16 << 10) - 8, [UInt8](repeating: 0xEE, count: 16)) }
                    == .protectionDenied(gpa: 16 << 10, requested: .write, mapped: .read))
            #expect(try g.read((16 << 10) - 8, count: 16) == before)
            // Write across the rw | hole: refused, nothing written.
            #expect(GuestKit.error { () throws(GuestMemoryError) in try g.write((48 << 10) - 4, [1, 2, 3, 4, 5, 6]) }
                    == .unmapped(gpa: 48 << 10))
            #expect(try g.read((48 << 10) - 4, count: 4) == [0, 0, 0, 0])
            // Write rw | rw with an r between is refused; two adjacent rw mappings are split.
            try g.unmap(gpa: 16 << 10, length: 16 << 10)
            try g.map(gpa: 16 << 10, segment: 0, offset: 16 << 10, length: 16 << 10, protection: .readWrite)
            let span = [UInt8](repeating: 0x5C, count: 40 << 10)
            try g.write(4, span)
            #expect(try g.read(4, count: 40 << 10) == span)
            // Reads past the end and wraps are typed.
            #expect(GuestKit.error { () throws(GuestMemoryError) in try g.read(~UInt64(0) - 1, count: 4) }
                    == .rangeWraps(gpa: ~UInt64(0) - 1, length: 4))
            #expect(GuestKit.error { () throws(GuestMemoryError) in try g.read(0, count: -1) } == .negativeCount(-1))
            #expect(try g.read(48 << 10, count: 0) == [])
        }
    }

    @Test func aliasingSeesTheSameBytes() throws {
        try GuestKit.gated {
            let g = try Self.makeGuest()
            defer { try? g.destroy() }
            try g.write(16, [1, 2, 3, 4])
            #expect(try g.read((2 << 20) + 16, count: 4) == [1, 2, 3, 4])
            try g.store(UInt64(0x1122_3344_5566_7788), at: (2 << 20) + 64)
            #expect(try g.load(UInt64.self, at: 64) == 0x1122_3344_5566_7788)
            #expect(g.translate(16, 1, .read)! != g.translate((2 << 20) + 16, 1, .read)!, "two host addresses, one page")
            // A devmem segment is reachable by another process through its memfd.
            let rom = try #require(g.segment(1))
            #expect(rom.object.fd >= 0)
            #expect(try HostWrite.fromChild(rom, seed: 9) == 0)
            #expect(try g.read(1 << 20, count: 3) == [9, 16, 23])
        }
    }

    struct AtomicCase: CustomTestStringConvertible, Sendable {
        let rule: String
        let gpa: UInt64, size: Int, op: String
        let expected: GuestMemoryError?
        var testDescription: String { rule }
    }

    static let atomicCases: [AtomicCase] = [
        .init(rule: "aligned 8-byte store and load", gpa: 8, size: 8, op: "store", expected: nil),
        .init(rule: "aligned 2-byte compare-exchange", gpa: 2, size: 2, op: "cas", expected: nil),
        .init(rule: "aligned 4-byte load of an r mapping", gpa: 16 << 10, size: 4, op: "load", expected: nil),
        .init(rule: "misaligned 8-byte load", gpa: 4, size: 8, op: "load", expected: .misaligned(gpa: 4, size: 8)),
        .init(rule: "misaligned 2-byte store", gpa: 1, size: 2, op: "store", expected: .misaligned(gpa: 1, size: 2)),
        .init(rule: "misaligned 4-byte cas", gpa: 6, size: 4, op: "cas", expected: .misaligned(gpa: 6, size: 4)),
        .init(rule: "store to an r mapping", gpa: 16 << 10, size: 8, op: "store",
              expected: .protectionDenied(gpa: 16 << 10, requested: .write, mapped: .read)),
        .init(rule: "cas on an r mapping", gpa: 16 << 10, size: 4, op: "cas",
              expected: .protectionDenied(gpa: 16 << 10, requested: .readWrite, mapped: .read)),
        .init(rule: "load of an unmapped gpa", gpa: 48 << 10, size: 8, op: "load", expected: .unmapped(gpa: 48 << 10)),
        .init(rule: "load at the top of the address space", gpa: ~UInt64(7), size: 8, op: "load", expected: .unmapped(gpa: ~UInt64(7))),
    ]

    @Test(arguments: atomicCases)
    func atomic(_ c: AtomicCase) throws {
        try GuestKit.gated {
            let g = try Self.makeGuest()
            defer { try? g.destroy() }
            let before = try g.read(0, count: 48 << 10)
            func run<T: FixedWidthInteger & UnsignedInteger>(_ t: T.Type) -> GuestMemoryError? {
                GuestKit.error { () throws(GuestMemoryError) in
                    switch c.op {
                    case "load": _ = try g.load(T.self, at: c.gpa)
                    case "store":
                        try g.store(T(truncatingIfNeeded: 0xA1B2_C3D4_E5F6_0718 as UInt64), at: c.gpa)
                        #expect(try g.load(T.self, at: c.gpa) == T(truncatingIfNeeded: 0xA1B2_C3D4_E5F6_0718 as UInt64))
                    default:
                        let r = try g.compareExchange(at: c.gpa, expected: T(0), desired: T(0x7777))
                        #expect(r.exchanged && r.original == 0)
                        let r2 = try g.compareExchange(at: c.gpa, expected: T(1), desired: T(2))
                        #expect(!r2.exchanged && r2.original == T(0x7777))
                    }
                }
            }
            let e: GuestMemoryError? = switch c.size {
            case 2: run(UInt16.self)
            case 4: run(UInt32.self)
            default: run(UInt64.self)
            }
            #expect(e == c.expected, "\(c.rule)")
            if c.expected != nil { #expect(try g.read(0, count: 48 << 10) == before, "a refused atomic changes nothing") }
        }
    }
}

/// A second process writing a segment through its descriptor.
enum HostWrite {
    static func fromChild(_ segment: MemorySegment, seed: UInt8) throws -> Int32 {
        try ChildTouch.writeFromChild(segment.object, offset: 0, length: 4096, seed: seed)
    }
}
