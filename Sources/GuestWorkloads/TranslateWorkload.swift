import CGuestWorkloads
import GuestMemory
import HostWorkloads

/// GPA → host translation (`GuestMemory.translate`, bhyve's `vm_map_gpa`)
/// of random 8-byte reads inside a map of ``mappings`` mappings, against a
/// C baseline over the same map (`vgw_translate`: a read lock, a linear
/// scan up to 8 mappings and a binary search above, the range and rights
/// checked). Mapping `i` is `mappingLength` bytes of one memfd segment at
/// GPA `i × 2 × mappingLength` (a gap between each), nothing populated.
public final class TranslateWorkload {
    public static let mappingLength: UInt64 = 2 << 20

    public let mappings: Int
    public let lookups: Int
    public let memory: GuestMemory
    /// The GPAs looked up, the same for both arms.
    public let gpas: [UInt64]
    private let map: OpaquePointer
    /// Where the pointers go, so that no lookup is optimised away.
    public private(set) var sink: UInt64 = 0

    /// `mappings` from 1 to 32; `lookups` per repeat from 1 to 10^9.
    public init(mappings: Int, lookups: Int, seed: UInt64 = 42) throws(GuestWorkloadError) {
        try GuestWorkloadError.checkCount("mappings", mappings, maximum: GuestMemory.maxMappings)
        try GuestWorkloadError.checkCount("lookups", lookups, maximum: 1_000_000_000)
        self.mappings = mappings
        self.lookups = lookups
        let len = Self.mappingLength
        do throws(GuestMemoryError) {
            memory = try GuestMemory(limit: UInt64(mappings) * 2 * len)
            try memory.allocateSegment(id: 0, length: UInt64(mappings) * len)
            for i in 0..<UInt64(mappings) {
                try memory.map(gpa: i * 2 * len, segment: 0, offset: i * len, length: len, protection: .readWrite)
            }
        } catch {
            throw .guest(error)
        }
        let table = memory.mappings
        guard let m = vgw_map_create(table.map(\.gpa), table.map(\.length), table.map(\.hostAddress),
                                     table.map(\.protection.rawValue), Int32(table.count)) else {
            throw .wrongResult(workload: "translate", detail: "the C map refused the table")
        }
        map = m
        var rng = SplitMix64(seed: seed)
        let n = min(lookups, 1 << 16)
        gpas = (0..<n).map { _ in
            UInt64.random(in: 0..<UInt64(mappings), using: &rng) * 2 * len
                + UInt64.random(in: 0..<(len / 8), using: &rng) * 8
        }
    }

    deinit { vgw_map_destroy(map) }

    /// `lookups` translations through GuestMemory; the nanoseconds, and misses.
    public func translateOurs() -> (ns: UInt64, misses: Int) {
        var sum: UInt64 = 0
        var misses = 0
        let memory = memory
        let t0 = vgw_now_ns()
        gpas.withUnsafeBufferPointer { b in
            var left = lookups
            while left > 0 {
                for g in b.prefix(left) {
                    if let p = memory.translate(g, 8, .read) { sum &+= UInt64(UInt(bitPattern: p)) } else { misses += 1 }
                }
                left -= min(left, b.count)
            }
        }
        let ns = vgw_now_ns() &- t0
        sink &+= sum
        return (ns, misses)
    }

    /// The same translations through the C baseline.
    public func translateBaseline() -> (ns: UInt64, misses: Int) {
        var sum: UInt64 = 0
        var ns: UInt64 = 0
        var misses = 0
        gpas.withUnsafeBufferPointer { b in
            var left = lookups
            while left > 0 {
                let n = min(left, b.count)
                var m: UInt64 = 0
                ns &+= vgw_translate_loop(map, b.baseAddress!, n, 8, GuestProtection.read.rawValue, &sum, &m)
                misses += Int(m)
                left -= n
            }
        }
        sink &+= sum
        return (ns, misses)
    }

    /// Ours and C turn about.
    public func run(repeats: Int, warmup: Int = 1,
                    progress: (Int, Int) -> Void = { _, _ in }) throws(GuestWorkloadError) -> Comparison {
        let name = "translate.\(mappings)"
        let stash = Stash()
        func arm(_ label: String, _ body: @escaping () -> (ns: UInt64, misses: Int)) -> InterleavedRounds.Arm {
            .init(label, opsPerRepeat: lookups) { () throws(HostWorkloadError) -> UInt64 in
                let r = body()
                guard r.misses == 0 else {
                    throw stash.fail(.wrongResult(workload: label, detail: "\(r.misses) of \(self.lookups) GPAs inside a mapping were refused"))
                }
                return r.ns
            }
        }
        let s = try GuestWorkloadError.rounds([arm(name, translateOurs), arm(name + ".c", translateBaseline)],
                                              repeats: repeats, warmup: warmup, stash: stash, progress: progress)
        return Comparison(ours: s[0], baseline: s[1])
    }
}
