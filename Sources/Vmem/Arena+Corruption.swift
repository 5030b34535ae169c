// A test-only hook: breaks one structure of an arena on purpose, so that the
// tests can show `verify()` — the oracle of every fuzz and model test —
// catches each kind of damage. Nothing in the module calls it.

extension Arena {
    /// One kind of damage ``corruptForTesting(_:)`` can do.
    enum Corruption: CaseIterable {
        /// A boundary tag: an allocated segment's end moves up a quantum,
        /// into its neighbour.
        case tag
        /// A free list: a free segment's entry is dropped from its list
        /// (the list's live count kept).
        case freeList
        /// The freemap: the bit of a non-empty list is cleared.
        case freemap
        /// The allocated hash: an allocated segment is unlinked from its chain.
        case hash
        /// A span: a span marker's end moves down a quantum, so its last
        /// segment runs past it.
        case span
        /// A statistic: `memInUse` counts one quantum too many.
        case statistic
        /// A magazine: a round already cached is cached again in the same
        /// CPU magazine.
        case magazine
    }

    /// Does `damage` and returns true, or returns false when the arena has
    /// nothing to damage that way (no allocated segment, no free segment, no
    /// cached round). Test-only: the arena is broken afterwards.
    func corruptForTesting(_ damage: Corruption) -> Bool {
        lock.lock(); defer { lock.unlock() }
        let c = core
        func first(_ kind: UInt8) -> TagIndex? {
            var t = c.pointee.tags[Int(ReservedTag.seg0)].segNext
            while t != ReservedTag.seg0 {
                if c.pointee.tags[Int(t)].kind == kind { return t }
                t = c.pointee.tags[Int(t)].segNext
            }
            return nil
        }
        switch damage {
        case .tag:
            guard let t = first(kindAlloc) else { return false }
            c.pointee.tags[Int(t)].end &+= quantum
        case .freeList:
            guard let t = first(kindFree) else { return false }
            let i = freeListIndex(c.pointee.tags[Int(t)].size)
            guard let e = c.pointee.lists[i].entries else { return false }
            let p = Int(c.pointee.tags[Int(t)].prev)
            if p == c.pointee.lists[i].count - 1 {
                // The last slot may not be a tombstone: shorten the list instead.
                c.pointee.lists[i].count -= 1
            } else {
                e[p].tag = 0
            }
        case .freemap:
            guard c.pointee.freemap != 0 else { return false }
            c.pointee.freemap &= c.pointee.freemap &- 1
        case .hash:
            guard let t = first(kindAlloc) else { return false }
            let b = c.pointee.hashBucket(c.pointee.tags[Int(t)].start)
            if b.pointee == t {
                b.pointee = c.pointee.tags[Int(t)].next
            } else {
                var p = b.pointee
                while c.pointee.tags[Int(p)].next != t { p = c.pointee.tags[Int(p)].next }
                c.pointee.tags[Int(p)].next = c.pointee.tags[Int(t)].next
            }
        case .span:
            guard let t = first(kindSpan) else { return false }
            c.pointee.tags[Int(t)].end &-= quantum
        case .statistic:
            c.pointee.stats.memInUse &+= quantum
        case .magazine:
            for qc in qcaches {
                for i in 0..<qc.cpus.count {
                    let cpu = qc.cpus[i]
                    cpu.pointee.lock.lock(); defer { cpu.pointee.lock.unlock() }
                    let n = cpu.pointee.loadedRounds
                    guard let m = cpu.pointee.loaded, n > 0, n < qc.magazineRounds else { continue }
                    m.setRound(n, address: m[0], state: m.userState(0))
                    cpu.pointee.loadedRounds = n + 1
                    return true
                }
            }
            return false
        }
        return true
    }
}
