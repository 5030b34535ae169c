import CHostMemory

/// Names the guard page or refused page a process touched before it dies.
///
/// A `SIGSEGV`/`SIGBUS` handler, installed once, looks the faulting address
/// up in a preallocated table of guarded ranges and writes one line to
/// standard error — `vmkit: stack overflow: touch of the red zone at 0x…
/// in [0x…, +0x1000) stack "worker-1" (SIGSEGV)` — then restores the default
/// action, so the process still dies of the signal (its exit status says so)
/// but no longer with a bare "Segmentation fault". illumos prints "kernel
/// stack overflow" from `segkp`'s red zone the same way.
///
/// The handler is C and async-signal-safe: it reads only the static table
/// (slots published with release stores, read with acquire loads) and calls
/// only `write` and `sigaction`. It runs on an alternate signal stack where
/// the faulting thread has one (``installAlternateStack()``), so an overflow
/// of that thread's own stack is reported too. Addresses outside the table
/// are left to the default action.
public enum GuardReporter {
    /// What kind of range a guard covers (the wording of the report).
    public enum Kind: Int32, Hashable, Sendable {
        case redZone = 1
        case hole = 2
        case refused = 3
        case guardRegion = 4
    }

    /// How many ranges the table can hold.
    public static let capacity = Int(VMK_GUARD_SLOTS)

    /// Installs the handler (once per process) and an alternate stack for the
    /// calling thread.
    public static func install() throws(HostMemoryError) {
        let r = vmk_guard_install()
        guard r == 0 else { throw .system(call: "sigaction", errno: -r, detail: "installing the guard reporter") }
    }

    /// Gives the calling thread an alternate signal stack (64 KiB), so that
    /// an overflow of its own stack can be reported.
    public static func installAlternateStack() throws(HostMemoryError) {
        let r = vmk_guard_altstack()
        guard r == 0 else { throw .system(call: "sigaltstack", errno: -r, detail: "for the calling thread") }
    }

    /// Records a guarded range; keep the registration and ``remove(_:)`` it
    /// when the range is unmapped. `label` names the segment (up to 95 bytes).
    public static func add(base: UInt64, length: UInt64, kind: Kind, label: String) throws(HostMemoryError) -> Registration {
        guard length > 0 else { throw .zeroLength(address: base) }
        let slot = vmk_guard_add(base, length, kind.rawValue, label)
        guard slot >= 0 else { throw .guardTableFull(capacity: capacity) }
        return Registration(slot: slot)
    }

    /// Forgets a guarded range.
    public static func remove(_ registration: Registration) { vmk_guard_remove(registration.slot) }

    /// Ranges in the table now.
    public static var count: Int { Int(vmk_guard_count()) }

    /// The report the handler would print for a touch of `address`, or nil
    /// when no guard covers it.
    public static func report(for address: UInt64, bus: Bool = false) -> String? {
        var buf = [CChar](repeating: 0, count: 320)
        let n = buf.withUnsafeMutableBufferPointer { vmk_guard_describe(address, bus ? 7 : 11, $0.baseAddress, 320) }
        guard n > 0 else { return nil }
        let bytes = buf.prefix(Int(n)).map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self).trimmingSuffixNewline
    }

    /// A slot in the table.
    public struct Registration: Hashable, Sendable {
        public let slot: Int32
    }
}

/// The outcome of touching memory from a second process.
public struct ChildTouch: Hashable, Sendable {
    /// What the child wrote to standard error.
    public let message: String
    /// The signal that ended it (0 when it exited).
    public let signal: Int32
    /// Its exit code when it exited.
    public let exitCode: Int32

    /// Forks a child that reads or writes one byte at `address`, gathering its
    /// standard error and how it ended: how a guard touch is shown without
    /// killing the caller.
    public static func touch(_ address: UInt64, write: Bool) throws(HostMemoryError) -> ChildTouch {
        var status: Int32 = 0
        var buf = [CChar](repeating: 0, count: 1024)
        let n = buf.withUnsafeMutableBufferPointer { vmk_fork_touch(address, write ? 1 : 0, &status, $0.baseAddress, 1024) }
        guard n >= 0 else { throw .system(call: "fork", errno: -n, detail: "for a touch of 0x\(String(address, radix: 16))") }
        let bytes = buf.prefix(Int(n)).map { UInt8(bitPattern: $0) }
        let signaled = status & 0x7f != 0 && status & 0x7f != 0x7f
        return ChildTouch(message: String(decoding: bytes, as: UTF8.self).trimmingSuffixNewline,
                          signal: signaled ? status & 0x7f : 0, exitCode: signaled ? 0 : (status >> 8) & 0xff)
    }

    /// Forks a child that maps `object` on its own (through the descriptor)
    /// and writes `length` bytes at `offset`: byte i is `seed + 7 i`. Returns
    /// the child's exit code (0 on success).
    public static func writeFromChild(_ object: MemoryObject, offset: UInt64, length: UInt64,
                                      seed: UInt8) throws(HostMemoryError) -> Int32 {
        guard object.fd >= 0 else {
            throw .invalidArgument(name: "object", value: 0, reason: "anonymous memory has no descriptor to share")
        }
        let status = vmk_fork_write_fd(object.fd, offset, length, seed)
        guard status >= 0 else { throw .system(call: "fork", errno: -status, detail: "for a write to \(object.name)") }
        return status & 0x7f != 0 ? 128 + (status & 0x7f) : (status >> 8) & 0xff
    }
}

extension String {
    var trimmingSuffixNewline: String {
        var s = self
        while s.last == "\n" { s.removeLast() }
        return s
    }
}
