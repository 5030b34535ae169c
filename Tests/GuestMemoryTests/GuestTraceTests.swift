import Testing
import GuestMemory

/// The guest-memory trace of guest-memory.md §7: golden outputs for every
/// command and every answer, hostile lines, and the layout `vmkit guest
/// layout` prints. §7 gives the grammar and the output shapes but no worked
/// example, so the goldens below are built from its rules.
@Suite("Guest trace replay (§7) and the standard layout")
struct GuestTraceTests {
    static func replay(_ text: String) -> [String] {
        GuestKit.gated { GuestTraceRunner.replay(text) }
    }

    static func expectGolden(_ trace: String, _ expected: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        let got = replay(trace)
        #expect(got == expected, sourceLocation: sourceLocation)
    }

    // MARK: memseg

    @Test func memsegAnswers() {
        let long63 = String(repeating: "a", count: 63), long64 = String(repeating: "a", count: 64)
        Self.expectGolden("""
            memseg 0 64K
            memseg 1 8K name=bootrom
            memseg 0 64K
            memseg 0 128K
            memseg 1 8K name=bootrom
            memseg 1 8K name=pcirom
            memseg 1 8K
            memseg 2 8K name=bootrom
            memseg 16 4K
            memseg 0x10 4K
            memseg 3 0
            memseg 3 4097
            memseg 3 4K name=
            memseg 3 4K name=\(long64)
            memseg 3 4K name=frame/buffer
            memseg 3 4K name=\(long63)
            memseg 4 4K name=fb_0.v-1
            memseg 15 4K
            """, [
            "memseg 0 error exists",
            "memseg 0 error invalid",
            "memseg 1 error exists",
            "memseg 1 error invalid",
            "memseg 1 error invalid",
            "memseg 2 error exists",
            "memseg 16 error invalid",
            "memseg 16 error invalid",
            "memseg 3 error invalid",
            "memseg 3 error invalid",
            "memseg 3 error invalid",
            "memseg 3 error invalid",
            "memseg 3 error invalid",
        ])
    }

    // MARK: memmap, munmap, maps

    @Test func memmapAnswers() {
        Self.expectGolden("""
            memseg 0 1M
            memseg 1 8K name=bootrom
            memmap 0 0 0 64K rw
            memmap 0x10000 0 0x10000 64K r wired
            memmap 0x100000 1 0 8K rx
            memmap 0x200000 0 0 4K rwx
            memmap 0x201000 0 0 4K x
            memmap 0x202000 0 0 4K w
            memmap 0x203000 0 0 4K wx
            memmap 0x300001 0 0 4K rw
            memmap 0x300000 0 1 4K rw
            memmap 0x300000 0 0 4097 rw
            memmap 0x300000 0 0 0 rw
            memmap 0x300000 0 0 4K wr
            memmap 0x300000 0 0 4K rr
            memmap 0x300000 0 0 4K q
            memmap 0x300000 2 0 4K rw
            memmap 0x300000 99 0 4K rw
            memmap 0x300000 1 4K 8K r
            memmap 0x300000 0 1M 4K r
            memmap 0x8000 0 0 4K rw
            memmap 0xf000 0 0 8K rw
            memmap 0x7ffffffff000 0 0 8K rw
            memmap 0xfffffffffffff000 0 0 8K rw
            maps
            """, [
            "memmap 0x300001 error invalid",
            "memmap 0x300000 error invalid",
            "memmap 0x300000 error invalid",
            "memmap 0x300000 error invalid",
            "memmap 0x300000 error invalid",
            "memmap 0x300000 error invalid",
            "memmap 0x300000 error invalid",
            "memmap 0x300000 error invalid",
            "memmap 0x300000 error invalid",
            "memmap 0x300000 error invalid",
            "memmap 0x300000 error invalid",
            "memmap 0x8000 error fault",
            "memmap 0xf000 error fault",
            "memmap 0x7ffffffff000 error fault",
            "memmap 0xfffffffffffff000 error fault",
            "map 0x0 0x10000 seg=0 off=0x0 prot=rw",
            "map 0x10000 0x10000 seg=0 off=0x10000 prot=r wired",
            "map 0x100000 0x2000 seg=1 off=0x0 prot=rx",
            "map 0x200000 0x1000 seg=0 off=0x0 prot=rwx",
            "map 0x201000 0x1000 seg=0 off=0x0 prot=x",
            "map 0x202000 0x1000 seg=0 off=0x0 prot=w",
            "map 0x203000 0x1000 seg=0 off=0x0 prot=wx",
        ])
    }

    @Test func memmapNospaceAfter32Mappings() {
        var trace = "memseg 0 4K\n"
        for i in 0..<33 { trace += "memmap \(i * 0x2000) 0 0 4K r\n" }
        trace += "memmap 0x100000 0 0 4K zz\n"   // invalid still wins over nospace
        trace += "memmap 0 0 0 4K r\n"           // nospace wins over fault
        trace += "munmap 0 4K\nmemmap 0x100000 0 0 4K r\n"
        Self.expectGolden(trace, ["memmap 0x40000 error nospace", "memmap 0x100000 error invalid",
                                  "memmap 0x0 error nospace"])
    }

    @Test func munmapOnlyExact() {
        Self.expectGolden("""
            memseg 0 64K
            memmap 0 0 0 16K rw
            memmap 0x4000 0 0x4000 16K rw
            munmap 0 4K
            munmap 0 32K
            munmap 0x1000 16K
            munmap 0x100000 4K
            munmap 0 16K
            munmap 0 16K
            maps
            """, [
            "munmap 0x0 error invalid",
            "munmap 0x0 error invalid",
            "munmap 0x1000 error invalid",
            "munmap 0x100000 error invalid",
            "munmap 0x0 error invalid",
            "map 0x4000 0x4000 seg=0 off=0x4000 prot=rw",
        ])
    }

    @Test func resetDropsDevmemKeepsSysmemAndBytes() {
        Self.expectGolden("""
            memseg 0 64K
            memseg 1 8K name=framebuffer
            memmap 0 0 0 64K rw
            memmap 0x100000 1 0 8K rw
            write 0x10 cafe
            write 0x100000 beef
            reset
            maps
            read 0x10 2
            read 0x100000 2
            memmap 0x200000 1 0 8K r
            read 0x200000 2
            """, [
            "map 0x0 0x10000 seg=0 off=0x0 prot=rw",
            "read 0x10 cafe",
            "read 0x100000 fault",
            "read 0x200000 beef",
        ])
    }

    // MARK: translate, read, write

    @Test func translateInOneMappingWithTheRights() {
        Self.expectGolden("""
            memseg 0 64K
            memseg 1 8K name=bootrom
            memmap 0 0 0 16K rw
            memmap 0x4000 0 0x4000 16K r
            memmap 0x100000 1 0 8K rx
            memmap 0x200000 0 0x8000 4K x
            translate 0x100 8 rw
            translate 0x3fff 1 r
            translate 0x4000 4096 r
            translate 0x4000 1 w
            translate 0x3ff0 32 r
            translate 0x100800 16 rx
            translate 0x100800 16 x
            translate 0x200010 4 x
            translate 0x200010 4 r
            translate 0x9000 1 r
            translate 0xffffffffffffffff 1 r
            translate 0 0 r
            translate 0 4097 r
            translate 0 4 rwq
            """, [
            "translate 0x100 seg=0 off=0x100",
            "translate 0x3fff seg=0 off=0x3fff",
            "translate 0x4000 seg=0 off=0x4000",
            "translate 0x4000 fault",
            "translate 0x3ff0 fault",
            "translate 0x100800 seg=1 off=0x800",
            "translate 0x100800 seg=1 off=0x800",
            "translate 0x200010 seg=0 off=0x8010",
            "translate 0x200010 fault",
            "translate 0x9000 fault",
            "translate 0xffffffffffffffff fault",
            "line 18: error: LEN 0: must be 1 to 4096",
            "line 19: error: LEN 4097: must be 1 to 4096",
            "line 20: error: PROT rwq: expected a non-empty subset of r, w, x in that order",
        ])
    }

    @Test func readWriteSpanMappingsAllOrNothingAndAlias() {
        Self.expectGolden("""
            memseg 0 64K
            memmap 0 0 0 4K rw
            memmap 0x1000 0 0x1000 4K rw
            memmap 0x2000 0 0x2000 4K r
            memmap 0x10000 0 0 4K rw   # segment page 0 again
            write 0xffe 0x01020304
            read 0xffe 4
            read 0x10ffe 2
            write 0x1ffe 0a0b0c0d
            read 0x1ffe 4
            write 0x2ffe 0102
            read 0x2ffe 4
            write 0x10000 ff
            read 0 1
            write 0xfffffffffffffffe 0102
            read 0xfffffffffffffffe 2
            write 0 abc
            write 0 zz
            read 0 0
            """, [
            "read 0xffe 01020304",
            "read 0x10ffe 0102",
            "write 0x1ffe fault",
            "read 0x1ffe 00000000",
            "write 0x2ffe fault",
            "read 0x2ffe fault",
            "read 0x0 ff",
            "write 0xfffffffffffffffe fault",
            "read 0xfffffffffffffffe fault",
            "line 17: error: HEXBYTES: expected an even number of hex digits, got 3",
            "line 18: error: HEXBYTES: not a hex digit at position 1",
            "line 19: error: LEN 0: must be 1 to 4096",
        ])
    }

    @Test func writeAndReadLimits() {
        let max = String(repeating: "ab", count: 4096), over = String(repeating: "ab", count: 4097)
        let out = Self.replay("memseg 0 16K\nmemmap 0 0 0 16K rw\nwrite 0x800 \(max)\nread 0x800 4096\nwrite 0 \(over)\n")
        #expect(out == ["read 0x800 " + max, "line 5: error: HEXBYTES: 4097 bytes, write takes 1 to 4096"])
    }

    // MARK: dirty

    @Test func dirtyReportsAndClears() {
        Self.expectGolden("""
            memseg 0 64K
            memseg 1 8K name=fb
            memmap 0 0 0 64K rw
            memmap 0x100000 0 0x2000 8K rw   # segment pages 2 and 3 again
            memmap 0x200000 1 0 8K rw
            dirty 0 4M
            write 0x10 00
            write 0x2ffe 01020304
            write 0x201000 ff
            dirty 0 0x3000
            dirty 0 4M
            dirty 0 4M
            write 0x100000 aa
            dirty 0x100000 1
            dirty 0 64K
            write 0x5000 aa
            write 0x5000 bb
            dirty 0x5fff 1
            dirty 0x5fff 1
            write 0x3000 aa
            dirty 0xfffffffffffff000 0x1000
            dirty 0xfffffffffffff000 0x1001
            dirty 0 0xffffffffffffffff
            dirty 0x7ffffffff000 0x2000
            dirty 0 0
            """, [
            "dirty 0x0 -",
            "dirty 0x0 0 2",
            "dirty 0x0 3 257 513",         // 256 is segment page 2, reported (and cleared) at 2
            "dirty 0x0 -",
            "dirty 0x100000 256",
            "dirty 0x0 -",
            "dirty 0x5fff 5",
            "dirty 0x5fff -",
            "dirty 0xfffffffffffff000 -",
            "dirty 0xfffffffffffff000 fault",
            "dirty 0x0 3 257",
            "dirty 0x7ffffffff000 -",
            "line 25: error: LEN 0: dirty takes at least 1 byte",
        ])
    }

    // MARK: vm, touch, parse errors

    @Test func vmLineAndTouch() {
        Self.expectGolden("""
            # a comment, then a blank line

            vm ad=emulated format=rvi
            memseg 0 8K
            memmap 0 0 0 8K rw
            touch 0x10 w
            touch 0x10 q
            vm
            dirty 0 8K
            """, [
            "touch 0x10 ok",
            "line 7: error: access q: expected r, w or x",
            "line 8: error: vm must be the first command of the trace",
            "dirty 0x0 0",
        ])
        Self.expectGolden("vm format=ept\nvm\n", ["line 2: error: vm must be the first command of the trace"])
        Self.expectGolden("vm ad=soft\nvm format=npt\nvm ad=hardware ad=hardware\nvm mode=1\nvm a b c\n", [
            "line 1: error: ad=soft: expected hardware or emulated",
            "line 2: error: format=npt: expected ept or rvi",
            "line 3: error: ad= given twice",
            "line 4: error: unknown option mode",
            "line 5: error: usage: vm [ad=hardware|emulated] [format=ept|rvi]",
        ])
    }

    @Test func parseErrorsNameTheLineAndTheRunGoesOn() {
        Self.expectGolden("""
            frobnicate 1
            memseg
            memseg x 4K
            memseg 0 4Q
            memseg 0 4K size=3
            memseg 0 99999999999999999999
            memseg 0 0x
            memmap 0 0 0 4K rw sometimes
            munmap 0
            reset now
            maps all
            read 0x10
            memseg 0 4K    # still runs
            memmap 0 0 0 4K r
            maps
            """, [
            "line 1: error: unknown command frobnicate",
            "line 2: error: usage: memseg ID LEN [name=NAME]",
            "line 3: error: ID x: not a number",
            "line 4: error: LEN 4Q: not a number",
            "line 5: error: unknown option size",
            "line 6: error: LEN 99999999999999999999: above 2^64 - 1",
            "line 7: error: LEN 0x: not a number",
            "line 8: error: unexpected word sometimes; expected wired",
            "line 9: error: usage: munmap GPA LEN",
            "line 10: error: usage: reset",
            "line 11: error: usage: maps",
            "line 12: error: usage: read GPA LEN",
            "map 0x0 0x1000 seg=0 off=0x0 prot=r",
        ])
    }

    @Test func crlfLinesAndControlCharactersInErrors() {
        Self.expectGolden("memseg 0 4K\r\nmemmap 0 0 0 4K r\r\nmaps\r\nbad\u{0B}word\u{7}\r\nx\u{2028}y\n", [
            "map 0x0 0x1000 seg=0 off=0x0 prot=r",
            "line 4: error: unknown command bad",
            "line 5: error: unknown command x\\u{2028}y",
        ])
        #expect(GuestTrace.printable("a\u{7}b\u{85}") == "a\\u{7}b\\u{85}")
    }

    @Test func numbers() throws {
        #expect(try GuestTrace.number("4096", "n") == 4096)
        #expect(try GuestTrace.number("0x1000", "n") == 4096)
        #expect(try GuestTrace.number("4K", "n") == 4096)
        #expect(try GuestTrace.number("2m", "n") == 2 << 20)
        #expect(try GuestTrace.number("3G", "n") == 3 << 30)
        #expect(try GuestTrace.number("1T", "n") == 1 << 40)
        #expect(try GuestTrace.number("0x10M", "n") == 16 << 20)
        #expect(try GuestTrace.number("0xfB", "n") == 0xfb)
        #expect(try GuestTrace.number("0xffffffffffffffff", "n") == UInt64.max)
        for bad in ["", "K", "0x", "0xK", "-1", "1.5K", "0x1g0", "16777216T", "0x10000000000000000", "1 K"] {
            #expect(throws: GuestTraceError.self, "\(bad)") { try GuestTrace.number(bad, "n") }
        }
    }

    @Test func guestSpaceCoversEveryMemmap() {
        #expect(GuestTrace.guestSpace(for: "") == 2 << 20)
        #expect(GuestTrace.guestSpace(for: "memmap 0x100000000 0 0 4K rw\nmemmap 0 0 0 4K r") == (4 << 30) + (2 << 20))
        #expect(GuestTrace.guestSpace(for: "memmap 0x7fffffe00000 0 0 2M rw") == 1 << 47)
        #expect(GuestTrace.guestSpace(for: "memmap 0x7ffffffff000 0 0 8K rw\nbogus") == 2 << 20)
        // A memmap at 1 TiB, which a smaller window would refuse, succeeds.
        Self.expectGolden("memseg 0 4K\nmemmap 1T 0 0 4K rw\nwrite 1T 5a\nread 0x10000000000 1\nmaps\n", [
            "read 0x10000000000 5a",
            "map 0x10000000000 0x1000 seg=0 off=0x0 prot=rw",
        ])
    }

    /// §7's guest-physical space is [0, 2^47): a mapping ending exactly at
    /// 2^47 maps (the host window is packed when the whole space cannot be
    /// reserved), one page further is `fault`.
    @Test func memmapsUpTo2To47() {
        Self.expectGolden("""
            memseg 0 16K
            memmap 0 0 0 8K rw
            memmap 0x7fffffffe000 0 0x1000 8K rw
            memmap 0x7ffffffff000 0 0 8K rw
            write 0x7fffffffe000 c3
            read 0x1000 1
            touch 0x7ffffffff000 w
            dirty 0x7fffffffe000 0x2000
            translate 0x7ffffffff000 1 r
            maps
            """, [
            "memmap 0x7ffffffff000 error fault",
            "read 0x1000 c3",
            "touch 0x7ffffffff000 ok",
            "dirty 0x7fffffffe000 34359738366 34359738367",
            "translate 0x7ffffffff000 seg=0 off=0x2000",
            "map 0x0 0x2000 seg=0 off=0x0 prot=rw",
            "map 0x7fffffffe000 0x2000 seg=0 off=0x1000 prot=rw",
        ])
    }

    @Test func memmapPastASmallWindowIsUnsupportedNotFault() {
        var out: [String] = []
        GuestKit.gated {
            var r = GuestTraceRunner(guestSpace: 2 << 20) { out.append($0) }
            r.run("memseg 0 8K\nmemmap 0x400000 0 0 4K rw\nmemmap 0x7ffffffff000 0 0 8K rw")
            r.finish()
        }
        #expect(out.count == 2)
        #expect(out.first?.hasPrefix("line 2: error: unsupported: [0x400000, +0x1000) is below 2^47") == true)
        #expect(out.last == "memmap 0x7ffffffff000 error fault")
    }

    // MARK: hostile input

    /// Every output line has one of §7's shapes.
    static func wellFormed(_ line: String, _ shapes: [Regex<AnyRegexOutput>]) -> Bool {
        shapes.contains { (try? $0.wholeMatch(in: line)) != nil }
    }

    static func shapes() throws -> [Regex<AnyRegexOutput>] {
        try [
            #"memseg [0-9]+ error (invalid|exists|nospace|fault)"#,
            #"(memmap|munmap) 0x[0-9a-f]+ error (invalid|exists|nospace|fault)"#,
            #"translate 0x[0-9a-f]+ (seg=[0-9]+ off=0x[0-9a-f]+|fault)"#,
            #"read 0x[0-9a-f]+ ([0-9a-f]{2})+"#, #"(read|write) 0x[0-9a-f]+ fault"#,
            #"dirty 0x[0-9a-f]+ (-|fault|[0-9]+( [0-9]+)*)"#,
            #"map 0x[0-9a-f]+ 0x[0-9a-f]+ seg=[0-9]+ off=0x[0-9a-f]+ prot=r?w?x?( wired)?"#,
            #"line [0-9]+: error: [^\x00-\x1f\x7f-\x9f\u2028\u2029]*"#,
        ].map { try Regex($0) }
    }

    @Test func hostileLinesNeverTrap() throws {
        var rng = GuestRNG(seed: 0x5EED_7ACE)
        let words = ["vm", "memseg", "memmap", "munmap", "reset", "translate", "write", "read", "touch", "dirty",
                     "maps", "0", "1", "15", "16", "0x1000", "4K", "8K", "64K", "0xfffffffffffff000", "0x7ffffffff000",
                     "18446744073709551615", "99999999999999999999", "rw", "r", "x", "rwx", "wr", "wired", "name=",
                     "name=rom", "ad=emulated", "format=rvi", "=", "#", "0x", "-1", "deadbeef", "abc", "\u{0}", "é",
                     "\t", "\r", "4096", "4097", "1T", "0x10000", "zz"]
        var text = "memseg 0 64K\nmemmap 0 0 0 64K rw\n"
        for _ in 0..<3000 {
            var line = ""
            for _ in 0..<rng.below(8) {
                if rng.below(10) == 0 {
                    line += String(decoding: (0..<rng.below(12)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, as: UTF8.self)
                } else {
                    line += words[Int(rng.below(UInt64(words.count)))]
                }
                line += rng.below(5) == 0 ? "" : " "
            }
            text += line + "\n"
        }
        let out = Self.replay(text)
        #expect(!out.isEmpty)
        let shapes = try Self.shapes()
        #expect(Self.wellFormed("dirty 0x0 1 2", shapes) && Self.wellFormed("line 3: error: é", shapes))
        #expect(!Self.wellFormed("line 3: error: a\u{0B}b", shapes) && !Self.wellFormed("line 3: error: a\u{2028}", shapes))
        let bad = out.filter { !Self.wellFormed($0, shapes) }
        #expect(bad.isEmpty, "\(bad.prefix(5))")
    }

    // MARK: layout

    static let gib: UInt64 = 1 << 30

    @Test(arguments: [
        // size, mappings (gpa, length, offset), segment length, guest space, PCI hole
        (1 * gib, [(UInt64(0), 1 * gib, UInt64(0))], 1 * gib, 1 * gib, nil as Range<UInt64>?),
        (4 * gib, [(0, 3 * gib, 0), (4 * gib, 1 * gib, 4 * gib)], 5 * gib, 5 * gib, 3 * gib ..< 4 * gib),
        (8 * gib, [(0, 3 * gib, 0), (4 * gib, 5 * gib, 4 * gib)], 9 * gib, 9 * gib, 3 * gib ..< 4 * gib),
    ])
    func layoutNumbers(size: UInt64, maps: [(UInt64, UInt64, UInt64)], segment: UInt64, space: UInt64,
                       hole: Range<UInt64>?) throws {
        try GuestKit.gated {
            let g = try GuestMemory.standard(size: size)
            defer { try? g.destroy() }
            let r = GuestLayoutReport(g)
            #expect(r.size == size)
            #expect(r.limit == space)
            #expect(r.segments == [.init(id: 0, kind: "sysmem", length: segment)])
            #expect(r.mappings.map { [$0.gpa, $0.length, $0.offset] } == maps.map { [$0.0, $0.1, $0.2] })
            #expect(r.mappings.map { GuestLayoutReport.region(of: $0) } == (maps.count == 1 ? ["lowmem"] : ["lowmem", "highmem"]))
            #expect(r.pciHole == hole)
            #expect(r.reservation.count == Int(space + 2 * GuestMemory.guardSize))
            #expect(r.reservation.lowerBound % (2 << 20) == 0)
            #expect(r.guards == [r.reservation.lowerBound ..< r.hostWindow.lowerBound,
                                 r.hostWindow.upperBound ..< r.reservation.upperBound])
            #expect(r.guards.allSatisfy { $0.count == 4 << 20 })
            #expect(r.hostWindow.count == Int(space))

            let json = r.json()
            func hex(_ v: UInt64) -> String { "\"0x" + String(v, radix: 16) + "\"" }
            #expect(json.hasPrefix("{\n") && json.hasSuffix("}\n"))
            #expect(json.contains("\"size\": \(hex(size)),"))
            #expect(json.contains("\"guestSpace\": \(hex(space)),"))
            #expect(json.contains("{\"id\": 0, \"kind\": \"sysmem\", \"length\": \(hex(segment))}"))
            for m in maps {
                #expect(json.contains("\"gpa\": \(hex(m.0)), \"end\": \(hex(m.0 + m.1)), \"length\": \(hex(m.1)), \"segment\": 0, \"offset\": \(hex(m.2))"))
            }
            #expect(json.contains("\"pciHole\": " + (hole.map { "{\"start\": \(hex($0.lowerBound)), \"end\": \(hex($0.upperBound)), \"size\": \(hex(1 << 30))}" } ?? "null")))
            #expect(json.contains("\"hostBase\": \(hex(r.hostWindow.lowerBound)),"))
            #expect(json.contains("\"reservation\": {\"start\": \(hex(r.reservation.lowerBound))"))
            #expect(json.components(separatedBy: "\"size\": \"0x400000\"").count == 3, "two 4 MiB guards")

            let table = r.table()
            #expect(table.contains("  lowmem   0x0            \("0x" + String(maps[0].1, radix: 16))"))
            #expect(table.contains("highmem") == (maps.count == 2))
            #expect(table.contains("pci-hole 0xc0000000     0x100000000    1 GiB") == (hole != nil))
            #expect(table.contains("  guard         ") && table.contains("  guest window  "))
        }
    }
}
