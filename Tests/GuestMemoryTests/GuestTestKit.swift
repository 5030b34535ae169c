#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import GuestMemory
import HostTestSupport

/// What the GuestMemory tests share: the host-test gate (so HostSegmentsTests'
/// leak test, which holds it exclusively, never counts our memfds and
/// windows), a seeded generator, and sizes.
enum GuestKit {
    static let page = GuestMemory.pageSize

    /// Runs `body` holding the shared side of the host-test gate (``HostTestGate``).
    static func gated<R>(_ body: () throws -> R) rethrows -> R { try HostTestGate.run(body) }

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
