import Testing
import GuestMemory
import Inspect
import PhysicalMemory
@testable import ModelKernel

/// `::vm`, `ADDR::memseg`, `ADDR::memmap`, `GPA::npt` and `::walk vm`: each
/// line parsed and checked against the model, never a whole output compared.
@Suite("mdb guest dcmds")
struct MdbGuestTests {
    static func setUp() throws -> (ModelKernel, [ModelGuest], MdbSession) {
        let k = try ModelKernel(model: .post12608, physmem: 8 * GiB)
        let a = try k.createGuest(size: 32 * MiB)
        let b = try k.createGuest(size: 4 * GiB, nested: NestedTableMode(format: .rvi))
        return (k, [a, b], MdbSession(kernel: k))
    }

    static func rows(_ text: String) -> [[String]] {
        text.split(separator: "\n").dropFirst().map { $0.split(separator: " ").map(String.init) }
    }

    static func hex(_ s: String) -> UInt64? { UInt64(s, radix: 16) }

    @Test("::vm lists every hosted guest with its size, segments, mappings and VMM pages")
    func vm() throws {
        let (k, guests, s) = try Self.setUp()
        let out = s.execute("::vm")
        #expect(!out.isError)
        #expect(out.text.split(separator: "\n").first?.contains("ADDR") == true)
        let rows = Self.rows(out.text)
        #expect(rows.count == guests.count)
        for row in rows {
            let address = try #require(Self.hex(row[0]))
            let g = try #require(k.guest(at: address))
            #expect(Self.hex(row[1]) == g.size)
            #expect(Int(row[2]) == g.memory.segments.count)
            #expect(Int(row[3]) == g.memory.mappings.count)
            #expect(row[4].hasPrefix(g.memory.nestedMode.format.rawValue))
            #expect(UInt64(row[6]) == g.size / 4096)
        }
        // ADDR::vm is that one row; ::walk vm the addresses; piped, the tables.
        let one = Self.rows(s.execute("\(String(guests[1].address, radix: 16))::vm").text)
        #expect(one.count == 1 && Self.hex(one[0][0]) == guests[1].address)
        let walked = s.execute("::walk vm").text.split(separator: "\n").compactMap { Self.hex(String($0)) }
        #expect(walked == k.hostedGuests.map(\.address))
        #expect(Self.rows(s.execute("::walk vm | ::vm").text).count == guests.count)
        let mapLines = s.execute("::walk vm | ::memmap").text.split(separator: "\n").filter { !$0.contains("GPA") }
        #expect(mapLines.count == guests.reduce(0) { $0 + $1.memory.mappings.count })
    }

    @Test("ADDR::memseg and ADDR::memmap show the guest's segments and mappings")
    func memsegAndMemmap() throws {
        let (_, guests, s) = try Self.setUp()
        for g in guests {
            let addr = String(g.address, radix: 16)
            let segs = Self.rows(s.execute("\(addr)::memseg").text)
            #expect(segs.count == g.memory.segments.count)
            for (row, seg) in zip(segs, g.memory.segments) {
                #expect(Int(row[0]) == seg.id && row[1] == "sysmem" && row[2] == "-")
                #expect(Self.hex(row[3]) == seg.length)
                #expect(Self.hex(row[4]) == seg.pageBacking?.address)
                #expect(row[5] == "0")
            }
            let maps = Self.rows(s.execute("0x\(addr)::memmap").text)
            #expect(maps.count == g.memory.mappings.count)
            for (row, m) in zip(maps, g.memory.mappings) {
                #expect(Self.hex(row[0]) == m.gpa && Self.hex(row[1]) == m.length)
                #expect(Int(row[2]) == m.segmentID && Self.hex(row[3]) == m.offset)
                #expect(row[4] == m.protection.description && row[5] == (m.wired ? "yes" : "no"))
                #expect(Self.hex(row[6]) == m.hostAddress)
            }
        }
        // A VMM write dirties one page, which ::memseg counts.
        try guests[0].memory.write(0x5000, [7])
        let row = Self.rows(s.execute("\(String(guests[0].address, radix: 16))::memseg").text)[0]
        #expect(row[5] == "1")
    }

    @Test("GPA::npt walks the nested table level by level and decodes each entry")
    func npt() throws {
        let (_, guests, s) = try Self.setUp()
        let g = guests[0]
        let addr = String(g.address, radix: 16)
        // Untouched: only the root exists; the walk stops at an empty PML4 slot.
        var out = s.execute("1000::npt -g \(addr)")
        #expect(!out.isError)
        #expect(out.text.contains("not yet faulted in"))
        // The guest writes a page: the walk reaches a 4 KiB leaf with R, W, A and D set.
        _ = try g.memory.touch(0x1000, write: true)
        out = s.execute("1000::npt -g \(addr)")
        let lines = out.text.split(separator: "\n").map(String.init)
        let levels = lines.filter { ["PML4", "PDPT", "PD", "PT"].contains(String($0.split(separator: " ")[0])) }
        #expect(levels.map { String($0.split(separator: " ")[0]) } == ["PML4", "PDPT", "PD", "PT"])
        let steps = try g.memory.nestedWalk(0x1000)
        #expect(steps.count == 4)
        for (line, step) in zip(levels, steps) {
            let f = line.split(separator: " ").map(String.init)
            #expect(Self.hex(f[1]) == step.tableAddress && Int(f[2]) == step.index && Self.hex(f[3]) == step.entry)
        }
        let leaf = levels[3].split(separator: " ").map(String.init)
        #expect(leaf[4] == "4K" && leaf[5] == "page")
        let bits = Set(leaf.last!.split(separator: "|").map(String.init))
        #expect(bits.isSuperset(of: ["R", "W", "A", "D"]))
        let host = try #require(g.memory.translate(0x1000, 1, .read))
        #expect(lines.last == "gpa 1000 -> host \(String(UInt(bitPattern: host), radix: 16))")
        // An unmapped GPA says so; -g is needed with two guests; bad input is an error.
        #expect(s.execute("ffffffff::npt -g \(addr)").text.contains("beyond") || s.execute("ffffffff::npt -g \(addr)").isError)
        #expect(s.execute("1000::npt").isError)
        #expect(s.execute("::npt -g \(addr)").isError)
        #expect(s.execute("1000::npt -g 1234").isError)
        #expect(s.execute("1000::npt -x").isError)
        // RVI entries decode as x86 entries.
        let b = guests[1]
        _ = try b.memory.touch(4 * GiB + 0x3000, write: false)
        let rvi = s.execute("\(String(4 * GiB + 0x3000, radix: 16))::npt -g \(String(b.address, radix: 16))").text
        let pt = try #require(rvi.split(separator: "\n").first { $0.hasPrefix("PT") })
        #expect(pt.contains("P|") && pt.contains("A"))
    }

    @Test("::help lists the guest dcmds, and they refuse bad input")
    func helpAndErrors() throws {
        let (_, _, s) = try Self.setUp()
        let help = s.execute("::help").text
        for dcmd in ["::vm", "ADDR::memseg", "ADDR::memmap", "GPA::npt", "::walk vm"] { #expect(help.contains(dcmd)) }
        #expect(s.execute("::memseg").isError)
        #expect(s.execute("1234::memmap").isError)
        #expect(s.execute("::vm -x").isError)
        #expect(s.execute("::walk vm | ::seg").isError)
    }
}
