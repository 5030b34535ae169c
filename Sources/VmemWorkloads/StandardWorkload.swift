import Vmem

/// The standard vmem workloads of vmem.md §6.
public enum StandardWorkload: String, CaseIterable, Sendable {
    case instant, best, small
    case smallNoCache = "small-nocache"
    case threads

    public static let base: UInt64 = 0x1000
    public static let size: UInt64 = 1 << 40
    public static let quantum: UInt64 = 4096
    /// N of vmem.md §6, a literal that inlined code can fold.
    @inlinable public static var liveSlots: Int { 10_000 }
    public static let warmupOps = 200_000
    public static let timedOps = 2_000_000

    /// Sizes are `(1 + r % K)` pages.
    public var k: UInt64 {
        switch self {
        case .instant, .best: return 64
        case .small, .smallNoCache, .threads: return 8
        }
    }

    public var policy: AllocationPolicy { self == .best ? .bestFit : .instantFit }

    public var quantumCacheMax: UInt64 {
        switch self {
        case .small, .threads: return 8 * Self.quantum
        case .instant, .best, .smallNoCache: return 0
        }
    }

    /// Thread counts the workload runs with.
    public var threadCounts: [Int] { self == .threads ? [1, 2] : [1] }

    public func makeArena(debugging: ArenaDebugging = .init()) throws(VmemError) -> Arena {
        try Arena(name: "bench_\(rawValue)", base: Self.base, size: Self.size, quantum: Self.quantum,
                  quantumCacheMax: quantumCacheMax, debugging: debugging)
    }
}
