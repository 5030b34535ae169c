import Testing
#if canImport(Glibc)
import Glibc
#endif
import HostMemory

private typealias Kit = HostMemTestKit

/// The guard reporter: the line it would print names the address, the
/// guarded range, the kind and the label; a child that touches a guarded
/// range dies of SIGSEGV with exactly that line on its standard error.
@Suite("GuardReporter: named guard pages")
struct GuardReporterTests {
    @Test func reportNamesTheRangeTheKindAndTheLabel() throws {
        try Kit.gated {
            let r = try HostReservation(size: 2 << 20)
            defer { r.destroy() }
            let base = r.base + 2 * Kit.page
            let length = 3 * Kit.page
            let label = "stack \"t-\(r.base)\""
            let g = try GuardReporter.add(base: base, length: length, kind: .redZone, label: label)
            defer { GuardReporter.remove(g) }
            let address = base + Kit.page + 0x123
            let text = try #require(GuardReporter.report(for: address))
            #expect(text.contains("at \(Kit.hex(address)) "), "\(text)")
            #expect(text.contains("[\(Kit.hex(base)), +\(Kit.hex(length)))"), "\(text)")
            #expect(text.contains(label))
            #expect(text.contains("stack overflow"))
            #expect(text.hasPrefix("vmkit: "))
            #expect(text.hasSuffix("(SIGSEGV)"))
            #expect(GuardReporter.report(for: address, bus: true)?.hasSuffix("(SIGBUS)") == true)
            // The range is half-open.
            #expect(GuardReporter.report(for: base) != nil)
            #expect(GuardReporter.report(for: base + length - 1) != nil)
            #expect(GuardReporter.report(for: base - 1) == nil)
            #expect(GuardReporter.report(for: base + length) == nil)

            // Each kind has its own wording.
            let words: [(GuardReporter.Kind, String)] = [(.hole, "reserved hole"), (.refused, "refused"),
                                                          (.guardRegion, "guard region")]
            for (i, (kind, word)) in words.enumerated() {
                let at = r.base + UInt64(10 + i) * Kit.page
                let k = try GuardReporter.add(base: at, length: Kit.page, kind: kind, label: "k\(i)")
                #expect(GuardReporter.report(for: at + 1)?.contains(word) == true)
                #expect(GuardReporter.report(for: at + 1)?.contains("k\(i)") == true)
                GuardReporter.remove(k)
                #expect(GuardReporter.report(for: at + 1) == nil, "removed")
            }

            // Labels are cut to 95 bytes.
            let long = String(repeating: "a", count: 95) + "TAIL"
            let l = try GuardReporter.add(base: r.base + 20 * Kit.page, length: Kit.page, kind: .hole, label: long)
            let cut = try #require(GuardReporter.report(for: r.base + 20 * Kit.page))
            #expect(cut.contains(String(repeating: "a", count: 95)) && !cut.contains("TAIL"))
            GuardReporter.remove(l)

            #expect(throws: HostMemoryError.zeroLength(address: base)) {
                _ = try GuardReporter.add(base: base, length: 0, kind: .hole, label: "x")
            }
        }
    }

    @Test(arguments: [false, true])
    func childTouchingAGuardDiesWithTheReport(_ write: Bool) throws {
        try Kit.gated {
            try GuardReporter.install()
            let r = try HostReservation(size: 2 << 20)
            defer { r.destroy() }
            let g = try GuardReporter.add(base: r.base + Kit.page, length: 2 * Kit.page, kind: .guardRegion,
                                          label: "guard-test \(write)")
            defer { GuardReporter.remove(g) }
            let address = r.base + 2 * Kit.page + 0x40
            let child = try ChildTouch.touch(address, write: write)
            #expect(child.signal == SIGSEGV, "\(child)")
            #expect(child.exitCode == 0)
            let expected = try #require(GuardReporter.report(for: address))
            #expect(child.message == expected)
            #expect(child.message.contains("guard-test \(write)"))
            // Unguarded PROT_NONE: the same death, no report.
            let bare = try ChildTouch.touch(r.base + 8 * Kit.page, write: write)
            #expect(bare.signal == SIGSEGV && bare.message.isEmpty, "\(bare)")
            // Accessible memory: the child exits normally.
            try r.mapAnonymous(at: r.base + 9 * Kit.page, length: Kit.page, protection: .readWrite)
            let fine = try ChildTouch.touch(r.base + 9 * Kit.page, write: write)
            #expect(fine.signal == 0 && fine.exitCode == 0 && fine.message.isEmpty, "\(fine)")
            // The parent's memory is untouched by the child's write.
            #expect(r.pointer(r.base + 9 * Kit.page).load(as: UInt8.self) == 0)
        }
    }

    @Test func childWritesAMemfdTheParentReads() throws {
        try Kit.gated {
            let m = try MemoryObject.memfd(name: "vmk-child", size: 4 * Kit.page)
            #expect(try ChildTouch.writeFromChild(m, offset: Kit.page, length: 2 * Kit.page, seed: 11) == 0)
            let bytes = try m.read(offset: 0, count: Int(4 * Kit.page))
            for i in 0..<bytes.count {
                let expected: UInt8 = (4096..<12288).contains(i) ? UInt8(truncatingIfNeeded: 11 &+ (i - 4096) &* 7) : 0
                if bytes[i] != expected { Issue.record("byte \(i): \(bytes[i]) != \(expected)"); break }
            }
            // Anonymous memory has no descriptor to hand a child.
            #expect(throws: HostMemoryError.self) {
                _ = try ChildTouch.writeFromChild(.anonymous(size: Kit.page), offset: 0, length: 1, seed: 0)
            }
        }
    }
}
