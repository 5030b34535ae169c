import Testing
import Inspect
import KernelLayout
import Vmem
@testable import ModelKernel

/// `::vmem_seg` on a kernel booted with audited arenas (`kmem_flags`
/// `KMF_AUDIT`): the `-v` layout of address-space.md §3.9, the audit filters
/// `-c`, `-e`, `-l`, `-t`, and `::vmem_seg` in the middle of a pipeline.
@Suite("::vmem_seg -v and its audit filters")
struct MdbVmemSegAuditTests {
    static func hex(_ v: UInt64) -> String { String(v, radix: 16) }
    static func right(_ s: String, _ w: Int = 16) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }

    static func setUp() throws -> (ModelKernel, MdbSession, Vmem.Segment, Vmem.Segment) {
        let config = ModelKernelConfiguration(layout: LayoutConfiguration(model: .post12608, physmem: GiB), auditArenas: true)
        let k = try ModelKernel(config)
        let a = try k.kmemAlloc(8192)
        let b = try k.kmemAlloc(4096)
        let arena = try #require(k.arenas["kmem_default"])
        let segs = arena.segments(.allocated)
        return (k, MdbSession(kernel: k), try #require(segs.first { $0.start == a }), try #require(segs.first { $0.start == b }))
    }

    @Test("-v: two header lines, the size in decimal, then thread, timestamp and the stack indented 17")
    func verbose() throws {
        let (_, s, sa, _) = try Self.setUp()
        let audit = try #require(sa.audit)
        #expect(!audit.stack.isEmpty)
        let lines = s.execute("\(Self.hex(sa.tagAddress))::vmem_seg -v").text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0] == "            ADDR TYPE            START              END             SIZE")
        #expect(lines[1] == "                                THREAD        TIMESTAMP                 ")
        #expect(lines[2] == Self.right(Self.hex(sa.tagAddress)) + " ALLC " + Self.right(Self.hex(sa.start)) + " "
                + Self.right(Self.hex(sa.end)) + " " + Self.right("8192"))
        #expect(lines[3] == String(repeating: " ", count: 22) + Self.right(Self.hex(audit.thread)) + " " + Self.right(Self.hex(audit.timestamp)))
        let stack = lines[4..<(4 + audit.stack.count)]
        #expect(stack.allSatisfy { $0.hasPrefix(String(repeating: " ", count: 17)) && $0.count > 17 && $0.dropFirst(17).first != " " })
        // A blank line after the stack, then nothing.
        #expect(Array(lines[(4 + audit.stack.count)...]) == ["", ""])
        // A segment without an audit record (a span) prints its row alone.
        let arenaAt = Self.hex(try #require(s.kernel.arenas["kmem_default"]).address)
        let span = s.execute("\(arenaAt)::vmem_seg -v -T SPAN").text.split(separator: "\n").map(String.init)
        #expect(span.count >= 3 && span.dropFirst(2).allSatisfy { $0.contains(" SPAN ") })
    }

    @Test("-t, -e, -l and -c keep audited segments that match, and only those")
    func filters() throws {
        let (k, s, sa, sb) = try Self.setUp()
        let arena = try #require(k.arenas["kmem_default"])
        let at = Self.hex(arena.address)
        func tags(_ args: String) -> [UInt64] {
            s.execute("\(at)::vmem_seg \(args)").text.split(separator: "\n").dropFirst().compactMap { UInt64($0.prefix(16), radix: 16) }
        }
        let (ta, tb) = (try #require(sa.audit), try #require(sb.audit))
        let audited = arena.segments([.allocated, .free, .spans, .markers]).filter { !($0.audit?.stack.isEmpty ?? true) }
        #expect(tags("-t \(Self.hex(ta.thread))") == audited.filter { $0.audit?.thread == ta.thread }.map(\.tagAddress))
        #expect(tags("-t 1").isEmpty)
        #expect(tb.timestamp >= ta.timestamp)
        let after = tags("-e \(Self.hex(ta.timestamp))")
        #expect(after.contains(sa.tagAddress) && after.contains(sb.tagAddress)
                && after == audited.filter { $0.audit!.timestamp >= ta.timestamp }.map(\.tagAddress))
        let before = tags("-l \(Self.hex(ta.timestamp))")
        #expect(before.contains(sa.tagAddress) && before == audited.filter { $0.audit!.timestamp <= ta.timestamp }.map(\.tagAddress))
        // -c with the address of one of the segment's own frames selects it; no FREE segment ever matches.
        let frame = try #require(ta.stack.last)
        let byCaller = tags("-c \(String(frame, radix: 16))")
        #expect(byCaller.contains(sa.tagAddress))
        #expect(tags("-c \(String(frame, radix: 16)) -T FREE").isEmpty)
        #expect(tags("-c no_such_function_anywhere").isEmpty)
        // Bad values are named.
        #expect(s.execute("\(at)::vmem_seg -t zz").text.hasPrefix("mdb: ::vmem_seg: bad thread \"zz\" for -t"))
        #expect(s.execute("\(at)::vmem_seg -e").text.hasPrefix("mdb: ::vmem_seg: option -e needs a value"))
    }

    @Test("in the middle of a pipeline ::vmem_seg passes on the addresses it selects")
    func pipeOut() throws {
        let (k, s, sa, _) = try Self.setUp()
        let thread = try #require(sa.audit).thread
        let expected = k.arenas.preorder.flatMap { $0.arena.segments(.allocated) }
            .filter { $0.audit?.thread == thread && !($0.audit?.stack.isEmpty ?? true) && $0.size >= 8192 }
        let out = s.execute("::walk vmem | ::vmem_seg -T ALLC -t \(Self.hex(thread)) | ::vmem_seg -m 0t8192 | ::vmem_seg -s").text
        let rows = out.split(separator: "\n").map(String.init)
        #expect(rows.first == "            ADDR TYPE            START             SIZE WHO")
        #expect(rows.dropFirst().compactMap { UInt64($0.prefix(16), radix: 16) } == expected.map(\.tagAddress))
        #expect(!expected.isEmpty)
        // The last stage may itself be a walk-free ::vmem_seg only; other dcmds still cannot feed one.
        #expect(s.execute("::vmem | ::vmem_seg").text.hasPrefix("mdb: ::vmem is a dcmd that does not feed a pipeline"))
        // Fed by nothing, it still needs an address.
        #expect(s.execute("::vmem_seg | ::vmem_seg").text.hasPrefix("mdb: ::vmem_seg: needs an address"))
    }
}
