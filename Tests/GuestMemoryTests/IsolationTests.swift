import Testing
import GuestMemory

/// Randomized against a reference model of the map (a list of mappings and
/// the bytes of each segment): every call is accepted exactly when the model
/// says so, and — read back through each segment's memfd, not through the
/// guest — no write outside a mapping or beyond its rights ever reaches
/// memory.
@Suite("Isolation: random operations against a reference model")
struct IsolationTests {
    struct ModelMapping {
        let gpa: UInt64, length: UInt64, segment: Int, offset: UInt64, prot: GuestProtection
        var end: UInt64 { gpa + length }
    }

    struct Model {
        let limit: UInt64
        var maps: [ModelMapping] = []
        var bytes: [[UInt8]]

        func mapping(_ gpa: UInt64) -> ModelMapping? { maps.first { gpa >= $0.gpa && gpa < $0.end } }

        /// Whether every byte of the range is mapped with `need`.
        func allowed(_ gpa: UInt64, _ len: UInt64, _ need: GuestProtection) -> Bool {
            // Mappings are page aligned: one look per page.
            let page = GuestMemory.pageSize
            return (gpa / page ... (gpa + len - 1) / page).allSatisfy { mapping($0 * page)?.prot.isSuperset(of: need) ?? false }
        }

        func mapKind(_ m: ModelMapping) -> GuestMemoryError.Kind? {
            if m.offset + m.length > UInt64(bytes[m.segment].count) { return .invalid }
            if maps.count >= GuestMemory.maxMappings { return .nospace }
            if m.end > limit { return .fault }
            if maps.contains(where: { $0.gpa < m.end && m.gpa < $0.end }) { return .fault }
            return nil
        }

        mutating func write(_ gpa: UInt64, _ data: [UInt8]) {
            var i = 0
            while i < data.count {
                let a = gpa + UInt64(i)
                let m = mapping(a)!
                let n = min(data.count - i, Int(m.end - a))
                let at = Int(a - m.gpa + m.offset)
                bytes[m.segment].replaceSubrange(at ..< at + n, with: data[i ..< i + n])
                i += n
            }
        }

        func read(_ gpa: UInt64, _ len: Int) -> [UInt8] {
            var out: [UInt8] = []
            while out.count < len {
                let a = gpa + UInt64(out.count)
                let m = mapping(a)!
                let n = min(len - out.count, Int(m.end - a))
                let at = Int(a - m.gpa + m.offset)
                out += bytes[m.segment][at ..< at + n]
            }
            return out
        }
    }

    @Test(arguments: [UInt64(1), 2, 3, 4])
    func randomOperationsMatchTheModel(seed: UInt64) throws {
        try GuestKit.gated {
            let page = GuestKit.page
            let limit: UInt64 = 96 * page
            let segPages: [UInt64] = [16, 8]
            let g = try GuestMemory(limit: limit)
            defer { try? g.destroy() }
            for (id, n) in segPages.enumerated() { try g.allocateSegment(id: id, length: n * page, name: id == 1 ? "dev" : nil) }
            var model = Model(limit: limit, bytes: segPages.map { [UInt8](repeating: 0, count: Int($0 * page)) })
            var rng = GuestRNG(seed: seed)
            var accepted = 0, refused = 0
            for step in 0..<1500 {
                switch rng.below(10) {
                case 0, 1:
                    // Mostly inside the segment, sometimes not.
                    let seg = Int(rng.below(2)), lenPages = 1 + rng.below(4)
                    let off = rng.below(5) == 0 ? rng.below(16) : rng.below(segPages[seg] - lenPages + 1)
                    let m = ModelMapping(gpa: rng.below(100) * page, length: lenPages * page, segment: seg,
                                         offset: off * page, prot: GuestProtection(rawValue: UInt8(1 + rng.below(7))))
                    let want = model.mapKind(m)
                    let got = GuestKit.kind { () throws(GuestMemoryError) in
                        try g.map(gpa: m.gpa, segment: m.segment, offset: m.offset, length: m.length, protection: m.prot)
                    }
                    #expect(got == want, "step \(step): map \(m)")
                    if want == nil && got == nil { model.maps.append(m) }
                case 2:
                    if rng.below(3) == 0, !model.maps.isEmpty {
                        let i = Int(rng.below(UInt64(model.maps.count)))
                        let m = model.maps[i]
                        try g.unmap(gpa: m.gpa, length: m.length)
                        model.maps.remove(at: i)
                    } else {
                        let gpa = rng.below(100) * page, len = (1 + rng.below(3)) * page
                        let exact = model.maps.contains { $0.gpa == gpa && $0.length == len }
                        let got = GuestKit.kind { () throws(GuestMemoryError) in try g.unmap(gpa: gpa, length: len) }
                        #expect(got == (exact ? nil : .invalid), "step \(step): unmap")
                        if exact { model.maps.removeAll { $0.gpa == gpa } }
                    }
                case 3, 4, 5:
                    let gpa = rng.below(limit + 4 * page)
                    let len = 1 + (rng.below(4) == 0 ? rng.below(3 * page) : rng.below(64))
                    let data = (0..<len).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                    let ok = model.allowed(gpa, len, .write)
                    let got = GuestKit.kind { () throws(GuestMemoryError) in try g.write(gpa, data) }
                    #expect((got == nil) == ok, "step \(step): write [\(gpa), +\(len))")
                    if ok { model.write(gpa, data); accepted += 1 } else { refused += 1 }
                case 6, 7:
                    let gpa = rng.below(limit + 4 * page), len = 1 + rng.below(2 * page)
                    let ok = model.allowed(gpa, len, .read)
                    let got = GuestKit.error { () throws(GuestMemoryError) in try g.read(gpa, count: Int(len)) }
                    #expect((got == nil) == ok, "step \(step): read")
                    if ok { #expect(try g.read(gpa, count: Int(len)) == model.read(gpa, Int(len))) }
                case 8:
                    let gpa = rng.below(limit + 4 * page) & ~3
                    let value = UInt32(truncatingIfNeeded: rng.next())
                    let ok = model.allowed(gpa, 4, .write)
                    let got = GuestKit.kind { () throws(GuestMemoryError) in try g.store(value, at: gpa) }
                    #expect((got == nil) == ok, "step \(step): store")
                    if ok { model.write(gpa, withUnsafeBytes(of: value.littleEndian) { Array($0) }) }
                default:
                    let gpa = rng.below(limit + 4 * page), len = 1 + rng.below(2 * page)
                    let prot = GuestProtection(rawValue: UInt8(1 + rng.below(7)))
                    let m = model.mapping(gpa)
                    let ok = m.map { gpa + len <= $0.end && $0.prot.isSuperset(of: prot) } ?? false
                    let p = g.translate(gpa, len, prot)
                    #expect((p != nil) == ok, "step \(step): translate")
                    if let p { #expect(UInt64(UInt(bitPattern: p)) == g.hostBase + gpa) }
                }
                if step % 100 == 99 {
                    // The real bytes, through each segment's descriptor.
                    for id in 0..<segPages.count {
                        let real = try g.segment(id)!.object.read(offset: 0, count: Int(segPages[id] * page))
                        #expect(real == model.bytes[id], "step \(step): segment \(id) differs from the model")
                    }
                    #expect(g.mappings.map(\.gpa) == model.maps.map(\.gpa).sorted())
                }
            }
            #expect(accepted > 20 && refused > 20, "both outcomes exercised: \(accepted) writes accepted, \(refused) refused")
        }
    }
}
