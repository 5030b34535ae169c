import Testing
import GuestMemory

/// bhyve's `vm_alloc_memseg` rules (guest-memory.md §7), one case per rule.
@Suite("Memory segments: vm_alloc_memseg rules")
struct SegmentRuleTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let rule: String
        let id: Int
        let length: UInt64
        let name: String?
        let expected: GuestMemoryError.Kind?
        var testDescription: String { rule }
    }

    /// Every case runs on a guest that already has sysmem 0 (16 MiB) and devmem 1 "bootrom" (1 MiB).
    static let cases: [Case] = [
        Case(rule: "a new sysmem id is created", id: 2, length: 1 << 20, name: nil, expected: nil),
        Case(rule: "a new devmem id with a plain name is created", id: 3, length: 8192, name: "fb.0_x-y", expected: nil),
        Case(rule: "id 15 is the last valid", id: 15, length: 4096, name: nil, expected: nil),
        Case(rule: "id 16 is invalid", id: 16, length: 4096, name: nil, expected: .invalid),
        Case(rule: "a negative id is invalid", id: -1, length: 4096, name: nil, expected: .invalid),
        Case(rule: "length 0 is invalid", id: 4, length: 0, name: nil, expected: .invalid),
        Case(rule: "an unaligned length is invalid", id: 4, length: 4097, name: nil, expected: .invalid),
        Case(rule: "a length past the guest space is invalid", id: 4, length: (1 << 47) + 4096, name: nil, expected: .invalid),
        Case(rule: "an empty name is invalid", id: 4, length: 4096, name: "", expected: .invalid),
        Case(rule: "a 64-byte name is invalid", id: 4, length: 4096, name: String(repeating: "a", count: 64), expected: .invalid),
        Case(rule: "a 63-byte name is valid", id: 4, length: 4096, name: String(repeating: "a", count: 63), expected: nil),
        Case(rule: "a name with a slash is invalid", id: 4, length: 4096, name: "a/b", expected: .invalid),
        Case(rule: "a name with a space is invalid", id: 4, length: 4096, name: "a b", expected: .invalid),
        Case(rule: "a non-ASCII name is invalid", id: 4, length: 4096, name: "rom\u{E9}", expected: .invalid),
        Case(rule: "an identical sysmem re-allocation exists", id: 0, length: 16 << 20, name: nil, expected: .exists),
        Case(rule: "a sysmem id re-allocated with another length is invalid", id: 0, length: 8 << 20, name: nil, expected: .invalid),
        Case(rule: "a sysmem id re-allocated as devmem is invalid", id: 0, length: 16 << 20, name: "x", expected: .invalid),
        Case(rule: "an identical devmem re-allocation exists", id: 1, length: 1 << 20, name: "bootrom", expected: .exists),
        Case(rule: "a devmem id re-allocated with another name is invalid", id: 1, length: 1 << 20, name: "other", expected: .invalid),
        Case(rule: "a devmem name used by another id exists", id: 5, length: 1 << 20, name: "bootrom", expected: .exists),
    ]

    @Test(arguments: cases)
    func rule(_ c: Case) throws {
        try GuestKit.gated {
            let g = try GuestMemory(limit: 64 << 20)
            defer { try? g.destroy() }
            try g.allocateSegment(id: 0, length: 16 << 20)
            try g.allocateSegment(id: 1, length: 1 << 20, name: "bootrom")
            let before = g.segments.map { "\($0.id) \($0.kind) \($0.length)" }
            let got = GuestKit.kind { () throws(GuestMemoryError) in
                try g.allocateSegment(id: c.id, length: c.length, name: c.name)
            }
            #expect(got == c.expected, "\(c.rule)")
            if c.expected != nil {
                #expect(g.segments.map { "\($0.id) \($0.kind) \($0.length)" } == before, "a refusal changes nothing")
            } else {
                let s = try #require(g.segment(c.id))
                #expect(s.length == c.length && s.name == c.name && s.isSystem == (c.name == nil))
                #expect(s.object.kind == .memfd, "memfd by default")
            }
        }
    }

    @Test func errorsNameTheirValues() throws {
        try GuestKit.gated {
            let g = try GuestMemory(limit: 16 << 20)
            defer { try? g.destroy() }
            #expect(GuestKit.error { () throws(GuestMemoryError) in try g.allocateSegment(id: 16, length: 4096) }
                    == .invalidSegmentID(16))
            #expect(GuestKit.error { () throws(GuestMemoryError) in try g.allocateSegment(id: 2, length: 4097) }
                    == .invalidSegmentLength(id: 2, length: 4097))
            let e = GuestKit.error { () throws(GuestMemoryError) in try g.allocateSegment(id: 2, length: 4096, name: "a b") }
            #expect("\(e.map(String.init(describing:)) ?? "")".contains("\"a b\""))
        }
    }

    @Test func anonymousBackingOnRequest() throws {
        try GuestKit.gated {
            let g = try GuestMemory(limit: 16 << 20)
            defer { try? g.destroy() }
            let s = try g.allocateSegment(id: 0, length: 1 << 20, backing: .anonymous)
            #expect(s.object.kind == .anonymous && s.object.fd == -1)
            try g.map(gpa: 0, segment: 0, offset: 0, length: 1 << 20, protection: .readWrite)
            try g.write(4096, [1, 2, 3])
            #expect(try g.read(4096, count: 3) == [1, 2, 3])
            // No descriptor, so no second view of the same range.
            #expect(GuestKit.error { () throws(GuestMemoryError) in
                try g.map(gpa: 2 << 20, segment: 0, offset: 0, length: 4096, protection: .read)
            } == .anonymousAlias(id: 0, offset: 0, length: 4096, mappedGPA: 0))
        }
    }
}
