import KernelLayout
import Testing

/// Once the layout arithmetic wraps past 2^64, the checks computed from the
/// wrapped numbers are skipped — never reported ok (issue 18: a "heap" of
/// 16383.996 PiB passed `heap-nonempty`).
@Suite("Checks after a wrap")
struct WrappedLayoutCheckTests {
    static let TiB: UInt64 = 1 << 40

    @Test func wrappedLayoutSkipsTheHeapChecks() throws {
        let layout = try Layout(LayoutConfiguration(physmem: 20 * Self.TiB))
        #expect(layout.wrapped)
        let results = layout.checkResults()
        let skipped = Set(results.filter(\.skipped).map(\.check))
        #expect(skipped == [.heapNonempty, .heapAtLeast1_5xPhysmem, .kpmBelowValloc])
        for r in results where r.skipped {
            #expect(!r.ok)
            #expect(r.status == "skip")
            #expect(!layout.failedChecks.contains(r.check), "a skipped check is not a failure either")
        }
        #expect(layout.failedChecks.contains(.noWrap))
        #expect(!layout.isSound)
        #expect(layout.table().contains("check skip heap-nonempty: skipped: the layout wrapped"))
        #expect(layout.json().contains("\"status\": \"skipped\""))
    }

    @Test func soundLayoutSkipsNothing() throws {
        let layout = try Layout(LayoutConfiguration(physmem: 1 << 36))
        #expect(!layout.wrapped)
        #expect(layout.skippedChecks.isEmpty)
        #expect(layout.checkResults().allSatisfy { $0.ok && !$0.skipped && $0.status == "ok" })
        #expect(!layout.json().contains("skipped"))
    }
}
