import Testing
@testable import Vmem
import VmemWorkloads

/// Random traces, half of their numbers hostile (zero, 2^64 - 1, values
/// past 64 bits, non-powers of two, unaligned bases, overflowing ranges),
/// replayed in process. Nothing may trap (a trap ends the test run), every
/// `verify` must pass, and every command prints exactly the lines vmem.md §5
/// gives it: one for an allocation, none or one for a free, and so on.
/// A trace like these once found `qcache=N` overflowing on a 2^64 - 1 quantum.
@Suite struct TraceReplayFuzzTests {
    static let sizes = ["4K", "8K", "12K", "16K", "32K", "64K", "1M", "0", "1", "0x1000", "3K", "5K",
                        "0xffffffffffffffff", "0x7ffffffffffff000", "18446744073709551616", "abc", "-1"]
    static let numbers = ["0", "4K", "8K", "64K", "1M", "0x1000", "0x2000", "0x10000", "1G", "3", "7", "16",
                          "0xffffffffffffffff", "0x8000000000000000", "0x", "99999999999999999999"]
    static let policies = ["", "", "instant", "best", "first", "next", "end", "best end", "next end", "first end",
                           "instant best", "bogus"]

    struct Generator {
        var rng: SplitMix64
        mutating func pick(_ a: [String]) -> String { a[Int(rng.next() % UInt64(a.count))] }
        mutating func chance(_ percent: UInt64) -> Bool { rng.next() % 100 < percent }

        mutating func trace() -> [String] {
            var lines = [
                "create a base=\(pick(["0x1000", "0", "1G", "0xfffffffffff00000"])) size=\(pick(["1M", "16M", "64K"])) quantum=4K"
                    + pick(["", " qcache=8", " qcache=16K", " qcache=4", " qcache=17"]),
                "create b quantum=4K source=a" + pick(["", " minimport=64K", " minimport=1M", " qcache=2",
                                                       " minimport=0xffffffffffff0000"]),
                "create c base=1 size=1000 quantum=1" + pick(["", " qcache=4"]),
            ]
            if chance(60) {
                lines.append("create d base=\(pick(TraceReplayFuzzTests.numbers)) size=\(pick(TraceReplayFuzzTests.numbers)) quantum=\(pick(TraceReplayFuzzTests.numbers))"
                             + (chance(50) ? " qcache=\(pick(TraceReplayFuzzTests.numbers))" : "") + (chance(30) ? " source=\(pick(["a", "d", "zz"]))" : ""))
            }
            let tags = (0..<10).map { "t\($0)" }
            for _ in 0..<(20 + Int(rng.next() % 120)) {
                let a = pick(["a", "a", "b", "b", "c", "d"])
                switch rng.next() % 11 {
                case 0...3: lines.append("alloc \(a) \(pick(tags)) \(pick(TraceReplayFuzzTests.sizes)) \(pick(TraceReplayFuzzTests.policies))")
                case 4:
                    lines.append("xalloc \(a) \(pick(tags)) \(pick(TraceReplayFuzzTests.sizes)) align=\(pick(TraceReplayFuzzTests.numbers)) phase=\(pick(TraceReplayFuzzTests.numbers)) "
                                 + "nocross=\(pick(TraceReplayFuzzTests.numbers)) min=\(pick(TraceReplayFuzzTests.numbers)) max=\(pick(TraceReplayFuzzTests.numbers)) \(pick(TraceReplayFuzzTests.policies))")
                case 5: lines.append("xalloc \(a) \(pick(tags)) \(pick(TraceReplayFuzzTests.sizes)) align=\(pick(["4K", "8K", "64K"])) \(pick(TraceReplayFuzzTests.policies))")
                case 6, 7: lines.append("free \(a) \(pick(tags))" + (chance(20) ? " \(pick(TraceReplayFuzzTests.sizes))" : ""))
                case 8: lines.append("add \(a) \(pick(TraceReplayFuzzTests.numbers)) \(pick(TraceReplayFuzzTests.numbers))")
                case 9: lines.append(pick(["stats \(a)", "walk \(a)", "verify \(a)", "", "# note", "alloc", "free \(a)",
                                           "create", "xalloc \(a) t", "bogus \(a)", "create \(a) =4"]))
                default: lines.append(pick(["destroy \(a)", "verify \(a)", "create \(a) base=0x1000 size=1M quantum=4K qcache=8"]))
                }
            }
            lines += ["verify a", "verify b", "verify c", "verify d"]
            return lines
        }
    }

    @Test func randomTracesNeverTrapAndAlwaysVerify() {
        var g = Generator(rng: SplitMix64(seed: 0xF022))
        var allocated = 0, failed = 0, errors = 0, verified = 0
        for _ in 0..<300 {
            let lines = g.trace()
            var replayer: TraceReplayer
            var out: [String] = []
            replayer = TraceReplayer { out.append($0) }
            for line in lines {
                let before = out.count
                replayer.run(line: line)
                let printed = out[before...]
                let words = line.split(separator: " ")
                #expect(printed.count <= 1 || words.first == "walk", "\(line) printed \(Array(printed))")
                if let o = printed.first {
                    if o.hasPrefix("line ") { errors += 1; continue }
                    if o.hasPrefix("verify") {
                        #expect(o.hasSuffix(" ok"), "\(line) -> \(o)")
                        verified += 1
                    }
                    if o.hasSuffix(" fail") { failed += 1 } else if o.contains(" 0x") && (words.first == "alloc" || words.first == "xalloc") { allocated += 1 }
                }
                if words.first == "alloc" || words.first == "xalloc" {
                    #expect(printed.count == 1, "\(line) printed nothing")
                }
            }
        }
        // The traces exercised every outcome.
        #expect(allocated > 1_000 && failed > 500 && errors > 1_000 && verified > 500)
    }
}
