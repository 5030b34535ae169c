// The consistency check and the statistics snapshot of a quantum cache. Both
// stop the cache (every lock held) so that no object is seen in transit.

extension QuantumCache {
    /// Runs `body` with the slab lock, every CPU lock (in index order) and
    /// the depot lock held: the lock order of the cache, so this cannot
    /// deadlock with the fast paths, which hold at most one CPU lock.
    func withEveryLock<R>(_ body: () -> R) -> R {
        slabLock.lock()
        for i in 0..<cpus.count { cpus[i].pointee.lock.lock() }
        depot.pointee.lock.lock()
        defer {
            depot.pointee.lock.unlock()
            for i in 0..<cpus.count { cpus[i].pointee.lock.unlock() }
            slabLock.unlock()
        }
        return body()
    }

    /// A consistent snapshot of the cache's counters.
    var statistics: QuantumCacheStatistics {
        withEveryLock {
            var s = QuantumCacheStatistics()
            s.objectSize = geometry.objectSize
            s.slabSize = geometry.slabSize
            s.objectsPerSlab = geometry.objectsPerSlab
            s.magazineRounds = magazineRounds
            s.cpuCount = cpus.count
            for i in 0..<cpus.count {
                let c = cpus[i]
                s.allocs &+= c.pointee.allocs
                s.frees &+= c.pointee.frees
                s.objectsInCPUMagazines += c.pointee.loadedRounds + c.pointee.previousRounds
            }
            s.allocFailures = allocFailures.load(ordering: .relaxed)
            s.badFrees = badFrees.load(ordering: .relaxed)
            s.objectsInUse = Int(truncatingIfNeeded: s.allocs &- s.frees)
            s.depotFullMagazines = depot.pointee.fullCount
            s.depotEmptyMagazines = depot.pointee.emptyCount
            s.objectsInDepot = depot.pointee.fullCount * magazineRounds
            s.magazines = depot.pointee.magazines
            s.depotFullExchanges = depot.pointee.fullExchanges
            s.depotCrossCPUExchanges = depot.pointee.crossCPUExchanges
            s.depotEmptyExchanges = depot.pointee.emptyExchanges
            s.slabs = slabs.pointee.slabCount
            s.slabsCreated = slabs.pointee.slabsCreated
            s.slabsReleased = slabs.pointee.slabsReleased
            s.objectsFreeInSlabs = slabs.pointee.freeObjects
            s.slabFills = slabs.pointee.fills
            s.metadataBytes = metadataBytesLocked()
            return s
        }
    }

    /// See ``QuantumCacheStatistics/metadataBytes``; every lock held.
    private func metadataBytesLocked() -> Int {
        let magazineBytes = ((1 + 2 * magazineRounds) * 8 + 63) & ~63
        var bytes = cpus.count * CPUCacheTable.slotStride
        bytes += depot.pointee.magazines * magazineBytes
        bytes += MemoryLayout<Depot>.stride + 2 * depot.pointee.listCount * MemoryLayout<Magazine?>.stride
        bytes += MemoryLayout<SlabLayer>.stride
        bytes += slabs.pointee.chunks.count * slabs.pointee.chunkBytes
        bytes += slabs.pointee.directory.tableBytes
        return bytes
    }

    /// Checks every invariant of the three layers; nil when all hold,
    /// otherwise a sentence naming the first broken one and where.
    ///
    /// * each CPU: `loaded == nil` implies no rounds and no previous magazine;
    ///   `0 <= loadedRounds <= magazineRounds`; the previous magazine is full
    ///   or empty;
    /// * depot: list lengths equal the counts; no magazine is in two places;
    ///   the magazines found equal the magazines in existence;
    /// * every cached round is an object of a slab of this cache, neither
    ///   free in its slab nor with a user, and cached once;
    /// * every slab: bitmaps within range and disjoint; on the partial list
    ///   exactly when it has a free object; its objects are all accounted
    ///   for (with a user, cached, or free);
    /// * totals: the slab layer's free count, the directory's count, and
    ///   `allocs - frees` agree with the bitmaps.
    func verify() -> String? {
        withEveryLock { verifyLocked() }
    }

    private func verifyLocked() -> String? {
        let g = geometry
        var seenMagazines = Set<UnsafeMutablePointer<UInt64>>()
        var cachedPerSlab: [UInt64: Int] = [:]
        var seenRounds = Set<UInt64>()
        var allocs: UInt64 = 0, frees: UInt64 = 0

        func checkRounds(_ m: Magazine, _ count: Int, _ place: String) -> String? {
            if !seenMagazines.insert(m.storage).inserted {
                return "qcache \(hex(g.objectSize)): magazine \(m.storage) is in two places (again in \(place))"
            }
            for i in 0..<count {
                let a = m[i]
                guard let index = g.objectIndex(a),
                      let r = slabs.pointee.directory.lookup(base: g.slabBase(a)) else {
                    return "qcache \(hex(g.objectSize)): \(place) round \(i) = \(hex(a)) is not an object of a slab of this cache"
                }
                let bit: UInt64 = 1 << UInt64(index)
                if r.pointee.freeBits & bit != 0 {
                    return "qcache \(hex(g.objectSize)): \(place) round \(i) = \(hex(a)) is also free in its slab"
                }
                if r.isAllocated(index, lines: slabs.pointee.stateLines) {
                    return "qcache \(hex(g.objectSize)): \(place) round \(i) = \(hex(a)) is also allocated to a user"
                }
                // An unchecked cache's frees leave the pointer out; a checked
                // cache hands out through it, so it must be the object's own.
                if checked && m.userState(i) != r.userState(index) {
                    return "qcache \(hex(g.objectSize)): \(place) round \(i) = \(hex(a)) points at another object's user byte"
                }
                if !seenRounds.insert(a).inserted {
                    return "qcache \(hex(g.objectSize)): \(hex(a)) is cached twice (again in \(place) round \(i))"
                }
                cachedPerSlab[g.slabBase(a), default: 0] += 1
            }
            return nil
        }

        for c in 0..<cpus.count {
            let cpu = cpus[c]
            allocs &+= cpu.pointee.allocs
            frees &+= cpu.pointee.frees
            let lr = cpu.pointee.loadedRounds, pr = cpu.pointee.previousRounds
            guard let loaded = cpu.pointee.loaded else {
                if lr != 0 || cpu.pointee.previous != nil || pr != 0 {
                    return "qcache \(hex(g.objectSize)): cpu \(c) has no loaded magazine but \(lr) loaded rounds, previous \(cpu.pointee.previous == nil ? "none" : "present") with \(pr) rounds"
                }
                continue
            }
            if lr < 0 || lr > magazineRounds {
                return "qcache \(hex(g.objectSize)): cpu \(c) loaded rounds \(lr) outside 0...\(magazineRounds)"
            }
            if let e = checkRounds(loaded, lr, "cpu \(c) loaded") { return e }
            if let previous = cpu.pointee.previous {
                if pr != 0 && pr != magazineRounds {
                    return "qcache \(hex(g.objectSize)): cpu \(c) previous magazine holds \(pr) rounds, neither 0 nor \(magazineRounds)"
                }
                if let e = checkRounds(previous, pr, "cpu \(c) previous") { return e }
            } else if pr != 0 {
                return "qcache \(hex(g.objectSize)): cpu \(c) has no previous magazine but \(pr) previous rounds"
            }
        }

        // The depot's full lists, then its empty lists: one per CPU slot each.
        func checkDepotLists(_ kind: String, rounds: Int, count: Int, head: (Int) -> Magazine?) -> String? {
            var found = 0
            for list in 0..<depot.pointee.listCount {
                var m = head(list)
                while let cur = m {
                    found += 1
                    if found > count {
                        return "qcache \(hex(g.objectSize)): depot \(kind) lists are longer than their count \(count)"
                    }
                    if let e = checkRounds(cur, rounds, "depot \(kind) magazine \(found) (cpu \(list)'s list)") { return e }
                    m = cur.next
                }
            }
            if found != count {
                return "qcache \(hex(g.objectSize)): depot \(kind) lists have \(found) magazines, count says \(count)"
            }
            return nil
        }
        if let e = checkDepotLists("full", rounds: magazineRounds, count: depot.pointee.fullCount,
                                   head: { depot.pointee.fullList($0) }) { return e }
        if let e = checkDepotLists("empty", rounds: 0, count: depot.pointee.emptyCount,
                                   head: { depot.pointee.emptyList($0) }) { return e }
        if seenMagazines.count != depot.pointee.magazines {
            return "qcache \(hex(g.objectSize)): \(seenMagazines.count) magazines found, \(depot.pointee.magazines) exist"
        }

        // Slabs.
        var failure: String?
        var slabsFound = 0, partialExpected = 0, freeTotal = 0, userTotal = 0
        slabs.pointee.directory.forEach { base, r in
            guard failure == nil else { return }
            slabsFound += 1
            let free = r.pointee.freeBits
            let (user, twice) = r.userBits(count: SlabGeometry.maximumObjectsPerSlab, lines: slabs.pointee.stateLines)
            let cached = cachedPerSlab[base] ?? 0
            if r.key.pointee.load(ordering: .relaxed) != base | 1 {
                failure = "qcache \(hex(g.objectSize)): slab \(hex(base)) maps to a record of \(hex(r.base))"
            } else if (free | user) & ~g.allObjects != 0 {
                failure = "qcache \(hex(g.objectSize)): slab \(hex(base)) has bits beyond its \(g.objectsPerSlab) objects"
            } else if twice != 0 {
                failure = "qcache \(hex(g.objectSize)): slab \(hex(base)) has objects marked allocated in two CPU lines (bits \(hex(twice)))"
            } else if free & user != 0 {
                failure = "qcache \(hex(g.objectSize)): slab \(hex(base)) has objects both free and allocated (bits \(hex(free & user)))"
            } else if r.pointee.onPartialList != (free != 0) {
                failure = "qcache \(hex(g.objectSize)): slab \(hex(base)) with \(free.nonzeroBitCount) free objects is \(r.pointee.onPartialList ? "" : "not ")on the partial list"
            } else if checked && user.nonzeroBitCount + free.nonzeroBitCount + cached != g.objectsPerSlab {
                failure = "qcache \(hex(g.objectSize)): slab \(hex(base)) accounts for \(user.nonzeroBitCount) allocated + \(free.nonzeroBitCount) free + \(cached) cached objects, not \(g.objectsPerSlab)"
            } else if !checked && free.nonzeroBitCount + cached > g.objectsPerSlab {
                failure = "qcache \(hex(g.objectSize)): slab \(hex(base)) has \(free.nonzeroBitCount) free + \(cached) cached objects, more than \(g.objectsPerSlab)"
            }
            if free != 0 { partialExpected += 1 }
            freeTotal += free.nonzeroBitCount
            userTotal += user.nonzeroBitCount
        }
        if let failure { return failure }
        if cachedPerSlab.count > slabsFound { return "qcache \(hex(g.objectSize)): cached rounds belong to unregistered slabs" }
        if slabsFound != slabs.pointee.slabCount || slabs.pointee.directory.live != slabsFound {
            return "qcache \(hex(g.objectSize)): directory has \(slabsFound) slabs (live count \(slabs.pointee.directory.live)), slab layer counts \(slabs.pointee.slabCount)"
        }
        var partialFound = 0
        var prev: UnsafeMutablePointer<SlabRecord>? = nil
        var r = slabs.pointee.partialHead
        while let cur = r {
            partialFound += 1
            if partialFound > partialExpected || !cur.pointee.onPartialList || cur.pointee.prev != prev {
                return "qcache \(hex(g.objectSize)): partial list is broken at slab \(hex(cur.base))"
            }
            prev = cur
            r = cur.pointee.next
        }
        if partialFound != partialExpected {
            return "qcache \(hex(g.objectSize)): partial list has \(partialFound) slabs, \(partialExpected) have free objects"
        }
        if freeTotal != slabs.pointee.freeObjects {
            return "qcache \(hex(g.objectSize)): slab bitmaps show \(freeTotal) free objects, slab layer counts \(slabs.pointee.freeObjects)"
        }
        let inUse = Int(truncatingIfNeeded: allocs &- frees)
        if checked && userTotal != inUse {
            return "qcache \(hex(g.objectSize)): \(userTotal) objects marked allocated, but allocs - frees = \(inUse)"
        }
        let held = slabsFound * g.objectsPerSlab
        if held != inUse + seenRounds.count + freeTotal {
            return "qcache \(hex(g.objectSize)): \(slabsFound) slabs hold \(held) objects, but \(inUse) in use + \(seenRounds.count) cached + \(freeTotal) free = \(inUse + seenRounds.count + freeTotal)"
        }
        return nil
    }
}
