import Synchronization

/// Every live arena, in creation order (illumos `vmem_list`), so that
/// inspectors can print the whole tree the way mdb's `::vmem` walks it.
public final class ArenaRegistry: @unchecked Sendable {
    public static let shared = ArenaRegistry()

    private let lock = ArenaLock()
    private let counter = Atomic<Int>(0)
    private var arenas: [Int: Weak] = [:]

    private struct Weak { weak var arena: Arena? }

    func nextSequence() -> Int { counter.add(1, ordering: .relaxed).newValue }

    func register(_ a: Arena) { lock.withLock { arenas[a.sequence] = Weak(arena: a) } }
    func unregister(_ a: Arena) { lock.withLock { _ = arenas.removeValue(forKey: a.sequence) } }

    /// Live arenas in creation order.
    public var all: [Arena] {
        lock.withLock { arenas.keys.sorted().compactMap { arenas[$0]?.arena } }
    }
}
