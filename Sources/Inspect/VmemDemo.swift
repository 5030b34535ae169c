import Vmem

/// The demo's arena hierarchy: a kernel-like heap, a child with a quantum
/// cache that imports from it, a constrained DMA-style child, and an
/// identifier arena handing out process ids.
public struct VmemDemo {
    public let heap: Arena
    public let kmemVA: Arena
    public let dma: Arena
    public let ids: Arena
    public var arenas: [Arena] { [heap, kmemVA, dma, ids] }

    public init(ops: Int, seed: UInt64 = 42) throws(VmemError) {
        heap = try Arena(name: "heap", base: 0xFFFF_FE06_4BE0_0000, size: 1 << 34, quantum: 0x1000)
        _ = try heap.alloc(0x1000)    // the first page is pre-allocated, as in illumos
        kmemVA = try Arena(name: "kmem_va", quantum: 0x1000, source: .arena(heap),
                           quantumCacheMax: 8 * 0x1000, minimumImport: 0x20_0000)
        dma = try Arena(name: "dma_32bit", quantum: 0x1000, source: .arena(heap), flags: .constrainedImport)
        ids = try Arena(name: "pid_ids", base: 1, size: 29_999, quantum: 1, flags: .identifier)
        var rng = seed
        func next() -> UInt64 {
            rng &+= 0x9E37_79B9_7F4A_7C15
            var z = rng
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        var live: [(Arena, UInt64, UInt64, Bool)] = []
        for _ in 0..<ops {
            let r = next()
            if r % 5 < 2 && !live.isEmpty {
                let i = Int(next() % UInt64(live.count))
                let (a, addr, size, x) = live.remove(at: i)
                if x { try a.xfree(addr, size: size) } else { try a.free(addr, size: size) }
                continue
            }
            switch (r >> 8) % 8 {
            case 0:
                let size = (1 + (r >> 16) % 64) * 0x1000
                live.append((heap, try heap.alloc(size, policy: .bestFit), size, false))
            case 1:
                let size = (1 + (r >> 16) % 4) * 0x1000
                if let a = try? dma.xalloc(size, align: 0x4000, nocross: 0x10000) { live.append((dma, a, size, true)) }
            case 2 where (r >> 16) % 16 == 0:
                if let pid = try? ids.alloc(1, policy: .nextFit) { live.append((ids, pid, 1, false)) }
            default:
                let size = (1 + (r >> 16) % 12) * 0x1000
                live.append((kmemVA, try kmemVA.alloc(size), size, false))
            }
        }
    }
}
