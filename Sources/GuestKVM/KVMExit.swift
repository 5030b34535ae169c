/// Why `KVM_RUN` came back to user space (`kvm_run.exit_reason`), with what
/// the VMM needs to act on it.
public enum KVMExit: Hashable, Sendable, CustomStringConvertible {
    /// Port I/O direction.
    public enum Direction: String, Hashable, Sendable { case `in`, out }

    /// `KVM_EXIT_IO` (2): `count` accesses of `size` bytes at `port`; for
    /// `out`, `data` is what the guest wrote; for `in`, what it will read
    /// (all ones: no device answers).
    case io(port: UInt16, size: UInt8, direction: Direction, count: UInt32, data: [UInt8])
    /// `KVM_EXIT_MMIO` (6): an access to a GPA with no memslot, or a write
    /// to a read-only one. For a read, `data` is what the guest gets (all ones).
    case mmio(gpa: UInt64, length: UInt32, isWrite: Bool, data: [UInt8])
    /// `KVM_EXIT_HLT` (5): the guest halted (no in-kernel irqchip).
    case hlt
    /// `KVM_EXIT_SHUTDOWN` (8): a triple fault.
    case shutdown
    /// `KVM_EXIT_FAIL_ENTRY` (9): VM entry failed; the hardware's reason.
    case failEntry(hardwareReason: UInt64, cpu: UInt32)
    /// `KVM_EXIT_INTERNAL_ERROR` (17): KVM could not go on (emulation
    /// failure is suberror 1); its diagnostic words.
    case internalError(suberror: UInt32, data: [UInt64])
    /// `KVM_EXIT_DIRTY_RING_FULL` (31): this vCPU's dirty ring must be
    /// harvested before it runs again.
    case dirtyRingFull
    /// `KVM_EXIT_UNKNOWN` (0) with the hardware exit reason.
    case unknown(hardwareReason: UInt64)
    /// Any other reason, raw.
    case other(reason: UInt32)

    /// The short name `--json` prints: `io`, `mmio`, `hlt`, `shutdown`,
    /// `fail-entry`, `internal-error`, `dirty-ring-full`, `unknown`, `other`.
    public var reason: String {
        switch self {
        case .io: "io"
        case .mmio: "mmio"
        case .hlt: "hlt"
        case .shutdown: "shutdown"
        case .failEntry: "fail-entry"
        case .internalError: "internal-error"
        case .dirtyRingFull: "dirty-ring-full"
        case .unknown: "unknown"
        case .other: "other"
        }
    }

    /// Whether the vCPU can run on after this exit.
    public var isFinal: Bool {
        switch self {
        case .hlt, .shutdown, .failEntry, .internalError, .unknown, .other: true
        case .io, .mmio, .dirtyRingFull: false
        }
    }

    public var description: String {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        switch self {
        case let .io(port, size, dir, count, data):
            return "io \(dir.rawValue) port \(hex(UInt64(port))) size \(size)\(count == 1 ? "" : " count \(count)") data \(KVMExit.hexBytes(data))"
        case let .mmio(gpa, len, w, data):
            return "mmio \(w ? "write" : "read") gpa \(hex(gpa)) len \(len) data \(KVMExit.hexBytes(data))"
        case .hlt: return "hlt"
        case .shutdown: return "shutdown (triple fault)"
        case let .failEntry(r, cpu): return "fail-entry hardware reason \(hex(r)) cpu \(cpu)"
        case let .internalError(s, d): return "internal-error suberror \(s) data [\(d.map(hex).joined(separator: " "))]"
        case .dirtyRingFull: return "dirty-ring-full"
        case let .unknown(r): return "unknown hardware reason \(hex(r))"
        case let .other(r): return "exit reason \(r)"
        }
    }

    /// Bytes as lowercase hex, two digits each, in memory order (`42`, `78563412`).
    public static func hexBytes(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
