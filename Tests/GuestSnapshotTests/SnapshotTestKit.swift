#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
import GuestMemory
import HostTestSupport
import GuestSnapshot
import HostMemory

/// What the snapshot tests share: the host-test gate (HostSegmentsTests'
/// leak test holds it exclusively and must not count our memfds), scratch
/// directories, a seeded generator, and a guest with every kind of segment
/// checked against a reference byte model.
enum SnapKit {
    static let page = GuestMemory.pageSize

    /// Runs `body` holding the shared side of the host-test gate (``HostTestGate``).
    static func gated<R>(_ body: () throws -> R) rethrows -> R { try HostTestGate.run(body) }

    /// A fresh directory under /dev/shm (page cache, no disk), removed by `body`'s end.
    static func withScratch<R>(_ body: (String) throws -> R) throws -> R {
        var template = Array("/dev/shm/vmkit-snap-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        defer { _ = system("rm -rf '\(dir)'") }
        return try body(dir)
    }

    /// The refusal, or nil when `body` succeeded.
    static func error<R>(_ body: () throws -> R) -> GuestSnapshotError? {
        do {
            _ = try body()
            return nil
        } catch let e as GuestSnapshotError {
            return e
        } catch {
            Issue.record("not a GuestSnapshotError: \(error)")
            return nil
        }
    }

    /// Allocated bytes of every segment's memfd (a refused restore must not change them).
    static func allocated(_ memory: GuestMemory) -> [UInt64] {
        memory.segments.map { s in
            var st = stat()
            guard s.object.fd >= 0, fstat(s.object.fd, &st) == 0 else { return 0 }
            return UInt64(st.st_blocks)
        }
    }
}

/// SplitMix64: small, seeded, reproducible.
struct SnapRNG {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: UInt64) -> UInt64 { next() % n }
}

/// A guest with sysmem (aliased: segment 0's second MiB is also mapped at
/// 16 MiB), a devmem ROM mapped read-only, a devmem framebuffer, and an
/// anonymous sysmem segment; and the bytes each segment should hold.
final class ModelGuest {
    static let limit: UInt64 = 64 << 20
    let memory: GuestMemory
    /// Segment id -> expected bytes (empty for no segment).
    var model: [[UInt8]] = Array(repeating: [], count: GuestMemory.maxSegments)
    /// Segment pages written since the last `clearWritten()` (segment id, page).
    var written: Set<[UInt64]> = []

    /// The layout, built in a fresh memory.
    init() throws {
        memory = try GuestMemory(limit: Self.limit)
        try memory.allocateSegment(id: 0, length: 4 << 20)
        try memory.allocateSegment(id: 1, length: 64 << 10, name: "bootrom")
        try memory.allocateSegment(id: 2, length: 1 << 20, name: "framebuffer")
        try memory.allocateSegment(id: 3, length: 1 << 20, backing: .anonymous)
        try memory.map(gpa: 0, segment: 0, offset: 0, length: 4 << 20, protection: .all)
        try memory.map(gpa: 16 << 20, segment: 0, offset: 1 << 20, length: 1 << 20, protection: .readWrite)
        try memory.map(gpa: 32 << 20, segment: 2, offset: 0, length: 1 << 20, protection: .readWrite)
        try memory.map(gpa: 40 << 20, segment: 3, offset: 0, length: 1 << 20, protection: .readWrite)
        try memory.map(gpa: 48 << 20, segment: 1, offset: 0, length: 64 << 10, protection: [.read, .execute])
        for s in memory.segments { model[s.id] = [UInt8](repeating: 0, count: Int(s.length)) }
    }

    /// A memory made from a snapshot file's tables, with the model to compare against.
    init(memory: GuestMemory, model: [[UInt8]]) {
        self.memory = memory
        self.model = model
    }

    /// Loads the ROM as a VMM does: into its memfd (the guest sees it read-only).
    func loadROM(seed: UInt64) throws {
        var rng = SnapRNG(seed: seed)
        var bytes = [UInt8](repeating: 0, count: 64 << 10)
        for i in 0 ..< 8192 { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
        try memory.segment(1)!.object.write(bytes, offset: 0)
        model[1] = bytes
    }

    /// `count` VMM writes of random bytes at random writable places (some
    /// crossing pages, some through the alias), mirrored in the model.
    func randomWrites(_ count: Int, rng: inout SnapRNG) throws {
        let writable = memory.mappings.filter { $0.protection.contains(.write) }
        for _ in 0 ..< count {
            let m = writable[Int(rng.below(UInt64(writable.count)))]
            let len = Int(1 + rng.below(6000))
            let off = rng.below(m.length - UInt64(len))
            var bytes = [UInt8](repeating: 0, count: len)
            bytes.withUnsafeMutableBytes { b in
                var i = 0
                while i < len {
                    var w = rng.next() | 0x0101_0101_0101_0101
                    for k in 0 ..< min(8, len - i) { b[i + k] = UInt8(truncatingIfNeeded: w); w >>= 8 }
                    i += 8
                }
            }
            try memory.write(m.gpa + off, bytes)
            record(segment: m.segmentID, offset: m.offset + off, bytes)
        }
    }

    /// Mirrors a write of `bytes` at `offset` of segment `id` in the model.
    func record(segment id: Int, offset: UInt64, _ bytes: [UInt8]) {
        model[id].withUnsafeMutableBytes { m in
            bytes.withUnsafeBytes { (m.baseAddress! + Int(offset)).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
        for p in offset / SnapKit.page ... (offset + UInt64(bytes.count) - 1) / SnapKit.page { written.insert([UInt64(id), p]) }
    }

    /// Every mapping's bytes, read through `GuestMemory.read`, against the model.
    /// Returns the first mismatch, or nil.
    func mismatch() throws -> String? {
        for m in memory.mappings {
            let bytes = try memory.read(m.gpa, count: Int(m.length))
            let same = bytes.withUnsafeBytes { b in
                model[m.segmentID].withUnsafeBytes { memcmp(b.baseAddress!, $0.baseAddress! + Int(m.offset), b.count) == 0 }
            }
            if !same {
                let want = model[m.segmentID]
                let i = (0 ..< bytes.count).first { bytes[$0] != want[Int(m.offset) + $0] } ?? 0
                return "\(m): first difference at +0x\(String(i, radix: 16)): \(bytes[i]) against \(want[Int(m.offset) + i])"
            }
        }
        return nil
    }
}
