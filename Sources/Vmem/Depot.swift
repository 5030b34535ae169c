/// The depot of a quantum cache: the magazines no CPU holds, on two lists —
/// full ones and empty ones — under one lock (Bonwick & Adams 2001, §3.2).
///
/// A CPU comes here only when both of its magazines are unusable for the
/// operation at hand (both empty for an allocation, both full for a free),
/// and then trades one magazine for another in O(1): the depot lock is taken
/// at most once per magazine's worth of operations, which is what lets the
/// cache scale. The depot also creates and destroys magazines, so that the
/// count of magazines in existence is kept in one place.
///
/// **Affinity.** Full magazines are kept on one list per CPU slot: a CPU
/// pushes the magazines its frees filled onto its own list and, when it needs
/// a full one, pops its own first and takes another CPU's only when it has
/// none. Objects then tend to stay on the CPU that frees and reallocates
/// them. With one shared list, a magazine freed on one CPU was as likely to
/// be loaded by another.
///
/// Empty magazines are kept per CPU slot too, for their own lines: a CPU
/// that empties a magazine wrote its rounds, and the CPU that fills it next
/// writes them again. From one shared list about half the empty magazines
/// went to the other CPU, each costing its eight lines' trip between the
/// caches once per 31 frees: measured, shared ÷ control 0.957 with one list,
/// 0.993 with a list per CPU (9 runs each, interleaved; see the README).
///
/// Taking another CPU's magazine when a CPU has none of its own still mixes
/// objects: at the end of the two-thread `threads` benchmark, 57-69% of the
/// slabs with live objects hold objects of both threads (its `sharedSlabs`
/// figure). Never taking them brings that to 0-2%, but then a CPU that only
/// frees would pile up magazines that a CPU that only allocates never gets,
/// and takes new slabs instead: unbounded growth. Taking only from a list of
/// two or more measured 32-48%. Neither was kept. The mixing once cost a
/// third of the two-thread throughput, because every checked allocation and
/// free wrote its object's byte in one line per slab that both CPUs wrote;
/// the user bytes now have a line per CPU (see ``SlabRecord``), and the
/// mixing costs nothing measurable.
///
/// Invariants (checked by ``QuantumCache/verify()``): every magazine on a
/// full list holds exactly ``QuantumCache/magazineRounds`` rounds, every one on
/// an empty list holds none, and the counts equal the list lengths.
///
/// Lock order: slab-layer lock, then a CPU cache's lock, then the depot lock.
@usableFromInline
struct Depot: ~Copyable {
    // Layout note (thread sanitizer): Swift reports a mutating access to a
    // struct reached through a pointer (a mutating method, `+=`) as a write
    // of the struct's first byte. An atomic there would be "raced" by every
    // such write, so the atomics of this struct are declared after a plain
    // field (stored properties are laid out in declaration order).
    /// The full magazines, on a list per CPU slot of the cache.
    @usableFromInline var full: MagazineLists
    /// The empty magazines, on a list per CPU slot too: a magazine's lines
    /// stay in the cache of the CPU that last wrote its rounds.
    @usableFromInline var empty: MagazineLists
    /// Magazines in existence: on the depot lists or held by CPUs.
    @usableFromInline var magazines = 0
    /// Exchanges that gave a CPU a full magazine (allocation side) and an
    /// empty one (free side); kmem's `cache_depot_alloc` / `_free` counters.
    @usableFromInline var fullExchanges: UInt64 = 0
    @usableFromInline var emptyExchanges: UInt64 = 0
    /// Full magazines a CPU took from another CPU's list.
    @usableFromInline var crossCPUExchanges: UInt64 = 0
    @usableFromInline let lock: SpinLock

    /// A depot for a cache with `cpuCount` CPU slots (at least 1).
    @usableFromInline
    init(cpuCount: Int) {
        full = MagazineLists(listCount: max(cpuCount, 1))
        empty = MagazineLists(listCount: max(cpuCount, 1))
        lock = SpinLock()
    }

    deinit {
        full.deallocate()
        empty.deallocate()
    }

    /// CPU slots: the number of full lists and of empty lists.
    @usableFromInline var listCount: Int { full.listCount }
    /// Full magazines on all lists.
    @usableFromInline var fullCount: Int { full.count }
    /// Empty magazines on all lists.
    @usableFromInline var emptyCount: Int { empty.count }

    /// The head of full list `cpu`, in list order (verify walks it).
    func fullList(_ cpu: Int) -> Magazine? { full.head(cpu) }

    /// The head of empty list `cpu`, in list order (verify walks it).
    func emptyList(_ cpu: Int) -> Magazine? { empty.head(cpu) }

    /// A full magazine for CPU slot `cpu`: one it pushed if it has any, else
    /// another CPU's; nil when the depot has none.
    @inlinable
    mutating func popFull(preferring cpu: Int) -> Magazine? {
        if let m = full.pop(fromList: cpu) { return m }
        guard let m = full.popAny() else { return nil }
        crossCPUExchanges &+= 1
        return m
    }

    /// Any full magazine (reaps, drains).
    @inlinable
    mutating func popFull() -> Magazine? { full.popAny() }

    /// Puts a full magazine on the list of CPU slot `cpu`, whose frees filled it.
    @inlinable
    mutating func pushFull(_ m: Magazine, from cpu: Int) { full.push(m, onto: cpu) }

    /// An empty magazine, from CPU slot `cpu`'s list if it has one, else from
    /// any list; nil when the depot has none.
    @inlinable
    mutating func popEmpty(preferring cpu: Int) -> Magazine? {
        empty.pop(fromList: cpu) ?? empty.popAny()
    }

    /// Any empty magazine (drains).
    @inlinable
    mutating func popEmpty() -> Magazine? { empty.popAny() }

    /// Puts an empty magazine on the list of CPU slot `cpu`, which emptied it.
    @inlinable
    mutating func pushEmpty(_ m: Magazine, from cpu: Int) { empty.push(m, onto: cpu) }

    /// An empty magazine for CPU slot `cpu`: from the empty lists, its own
    /// first, or a new one when they are empty (the only place the cache
    /// allocates memory outside the slab layer; it stops once the working
    /// set of magazines exists).
    @usableFromInline
    mutating func takeEmpty(capacity: Int, for cpu: Int) -> Magazine {
        if let m = popEmpty(preferring: cpu) { return m }
        magazines += 1
        return Magazine.allocate(capacity: capacity)
    }

    /// Frees a magazine that holds no rounds.
    @usableFromInline
    mutating func destroy(_ m: Magazine) {
        magazines -= 1
        m.deallocate()
    }
}
