#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import GuestMemory

/// What the GuestMemory tests share: the host-test gate (so HostSegmentsTests'
/// leak test, which holds it exclusively, never counts our memfds and
/// windows), a seeded generator, and sizes.
enum GuestKit {
    static let page = GuestMemory.pageSize

    /// Runs `body` holding the shared side of the host-test gate.
    static func gated<R>(_ body: () throws -> R) rethrows -> R {
        let fd = open("/tmp/vmkit-host-tests.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o666)
        precondition(fd >= 0, "opening the test gate")
        defer { close(fd) }
        var lock = flock()
        lock.l_type = Int16(F_RDLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = off_t(getpid())
        lock.l_len = 1
        let setLockWait: Int32 = 38  // F_OFD_SETLKW
        while fcntl(fd, setLockWait, &lock) != 0 {
            precondition(errno == EINTR, "locking the test gate: errno \(errno)")
        }
        return try body()
    }

    /// The refusal's kind, or nil when `body` succeeded.
    static func kind(_ body: () throws(GuestMemoryError) -> Void) -> GuestMemoryError.Kind? {
        do { try body(); return nil } catch { return error.kind }
    }

    /// The refusal, or nil when `body` succeeded.
    static func error<R>(_ body: () throws(GuestMemoryError) -> R) -> GuestMemoryError? {
        do { _ = try body(); return nil } catch { return error }
    }
}

/// SplitMix64: small, seeded, reproducible.
struct GuestRNG {
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
