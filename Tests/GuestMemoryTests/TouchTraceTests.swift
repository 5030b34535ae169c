import Testing
import GuestMemory

/// §7's `touch` and `dirty` after touches: golden replays in every
/// `vm ad=... format=...` combination.
@Suite("Guest trace replay: touch and dirty (§7)")
struct TouchTraceTests {
    static func replay(_ text: String) -> [String] {
        GuestKit.gated { GuestTraceRunner.replay(text) }
    }

    static let vmLines = ["", "vm", "vm ad=hardware format=ept", "vm ad=emulated format=ept",
                          "vm ad=hardware format=rvi", "vm ad=emulated format=rvi", "vm format=rvi ad=emulated"]

    /// One mapping of each protection word, then a touch of each kind on each.
    static func rightsTrace(_ vm: String) -> String {
        let words = ["r", "w", "x", "rw", "rx", "wx", "rwx"]
        var lines = [vm, "memseg 0 32K"]
        for (i, w) in words.enumerated() { lines.append("memmap \(i * 4096) 0 \(i * 4096) 4K \(w)") }
        for i in 0..<words.count { for a in ["r", "w", "x"] { lines.append("touch \(i * 4096 + 16) \(a)") } }
        lines.append("touch 0x7000 r")    // unmapped
        lines.append("dirty 0 32K")
        return lines.joined(separator: "\n")
    }

    @Test func touchRightsWithEPT() {
        let expected = [
            "touch 0x10 ok", "touch 0x10 fault", "touch 0x10 fault",          // r
            "touch 0x1010 fault", "touch 0x1010 ok", "touch 0x1010 fault",    // w
            "touch 0x2010 fault", "touch 0x2010 fault", "touch 0x2010 ok",    // x
            "touch 0x3010 ok", "touch 0x3010 ok", "touch 0x3010 fault",       // rw
            "touch 0x4010 ok", "touch 0x4010 fault", "touch 0x4010 ok",       // rx
            "touch 0x5010 fault", "touch 0x5010 ok", "touch 0x5010 ok",       // wx
            "touch 0x6010 ok", "touch 0x6010 ok", "touch 0x6010 ok",          // rwx
            "touch 0x7000 fault",
            "dirty 0x0 1 3 5 6",
        ]
        for vm in Self.vmLines where !vm.contains("rvi") {
            #expect(Self.replay(Self.rightsTrace(vm)) == expected, "\(vm)")
        }
    }

    @Test func touchRightsWithRVI() {
        let expected = [
            "touch 0x10 ok", "touch 0x10 fault", "touch 0x10 fault",          // r
            "touch 0x1010 ok", "touch 0x1010 ok", "touch 0x1010 fault",       // w: readable too
            "touch 0x2010 ok", "touch 0x2010 fault", "touch 0x2010 ok",       // x: readable too
            "touch 0x3010 ok", "touch 0x3010 ok", "touch 0x3010 fault",       // rw
            "touch 0x4010 ok", "touch 0x4010 fault", "touch 0x4010 ok",       // rx
            "touch 0x5010 ok", "touch 0x5010 ok", "touch 0x5010 ok",          // wx
            "touch 0x6010 ok", "touch 0x6010 ok", "touch 0x6010 ok",          // rwx
            "touch 0x7000 fault",
            "dirty 0x0 1 3 5 6",
        ]
        for vm in Self.vmLines where vm.contains("rvi") {
            #expect(Self.replay(Self.rightsTrace(vm)) == expected, "\(vm)")
        }
    }

    /// `dirty` after touches and writes: the union, through aliases, cleared
    /// by the report (only what was reported), kept across munmap and reset,
    /// the same in every mode.
    @Test func dirtyAfterTouches() {
        let body = """
            memseg 0 64K
            memseg 1 8K name=framebuffer
            memmap 0 0 0 64K rw
            memmap 0x100000 0 0 8K rw
            memmap 0x200000 1 0 8K rw
            touch 0x1000 w
            touch 0x2000 r
            write 0x3000 aa
            touch 0x100000 w
            touch 0x4000 x
            dirty 0x1000 4K
            dirty 0 64K
            dirty 0x100000 8K
            touch 0x5000 w
            touch 0x5008 w
            write 0x5010 bb
            dirty 0x5000 1
            dirty 0x5000 1
            touch 0x101000 w
            munmap 0x100000 8K
            dirty 0 8K
            touch 0x200000 w
            reset
            dirty 0 0x300000
            touch 0x200000 w
            touch 0xf000 w
            dirty 0xf000 0xffffffffffff1000
            dirty 0xf000 0xffffffffffff1001
            """
        let expected = [
            "touch 0x1000 ok", "touch 0x2000 ok", "touch 0x100000 ok", "touch 0x4000 fault",
            "dirty 0x1000 1",
            "dirty 0x0 0 3",
            "dirty 0x100000 -",
            "touch 0x5000 ok", "touch 0x5008 ok",
            "dirty 0x5000 5",
            "dirty 0x5000 -",
            "touch 0x101000 ok",
            "dirty 0x0 1",
            "touch 0x200000 ok",
            "dirty 0x0 -",
            "touch 0x200000 fault", "touch 0xf000 ok",
            "dirty 0xf000 15",
            "dirty 0xf000 fault",
        ]
        for vm in Self.vmLines {
            #expect(Self.replay(vm + "\n" + body) == expected, "\(vm)")
        }
    }

    /// Bad touch lines are line errors; a touch before any memseg or past
    /// every mapping is a fault; the vm line's mode is the guest's.
    @Test func touchLineErrors() {
        #expect(Self.replay("touch 0 w\ntouch 0x10\ntouch 0 rw\ntouch 0x1z r\ntouch 0xffffffffffffffff r\n") == [
            "touch 0x0 fault",
            "line 2: error: usage: touch GPA r|w|x",
            "line 3: error: access rw: expected r, w or x",
            "line 4: error: GPA 0x1z: not a number",
            "touch 0xffffffffffffffff fault",
        ])
    }
}
