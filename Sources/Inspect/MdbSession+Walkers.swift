import AddressSpace
import ModelKernel
import PhysicalMemory
import class Vmem.Arena
import struct Vmem.WalkMask

// The walkers: each yields addresses that the dcmd of the same name (or a
// related one) takes, so that `::walk NAME | ::DCMD` works for all of them.
extension MdbSession {
    /// Every walker, in the order `::walkers` lists them.
    public static let walkers: [MdbWalker] = [
        MdbWalker(name: "as", address: .none, summary: "every address space: kas, then each process's struct as (| ::walk seg)",
                  walk: { s, _ in .success([s.kernel.kas.address] + s.kernel.processAddressSpaces.map(\.address)) }),
        MdbWalker(name: "dump", address: .none, summary: "the kernel addresses of the pages a crash dump would contain",
                  walk: { s, _ in .success(s.kernel.dumpPages().map(\.address)) }),
        MdbWalker(name: "memmap", address: .required, summary: "a guest's mappings, as their GPAs (ADDR a vm_t; | ::npt -g ADDR)",
                  walk: { s, a in s.hostedGuest(a, command: "walk memmap").map { $0.memory.mappings.map(\.gpa) } }),
        MdbWalker(name: "page", address: .optional, summary: "every page_t with an identity, or a kernel vnode's (kvps::walk page)",
                  walk: { s, a in s.pageWalk(a) }),
        MdbWalker(name: "seg", address: .required, summary: "the segments of an address space (kas::walk seg, or a struct as from ::walk as)",
                  walk: { s, a in
                      guard let space = s.addressSpace(at: a ?? 0) else {
                          return .failure(.init(MdbSession.error("\(String(a ?? 0, radix: 16)) is not an address space (try kas, or ::walk as)")))
                      }
                      return .success(space.segments.map(\.address))
                  }),
        MdbWalker(name: "vm", address: .none, summary: "the hosted guests' vm_t",
                  walk: { s, _ in .success(s.kernel.hostedGuests.map(\.address)) }),
        MdbWalker(name: "vmem", address: .optional, summary: "every arena depth first, or the arenas under ADDR",
                  walk: { s, a in s.arenaWalk(a) }),
        MdbWalker(name: "vmem_alloc", address: .required, summary: "an arena's allocated segments (ADDR from ::vmem)",
                  walk: { s, a in s.segmentWalk(a, .allocated, "vmem_alloc") }),
        MdbWalker(name: "vmem_free", address: .required, summary: "an arena's free segments",
                  walk: { s, a in s.segmentWalk(a, .free, "vmem_free") }),
        MdbWalker(name: "vmem_postfix", address: .optional, summary: "every arena, children before their source (post-order), or those under ADDR",
                  walk: { s, a in s.arenaWalk(a).map { s.postfix($0) } }),
        MdbWalker(name: "vmem_seg", address: .required, summary: "all of an arena's segments, spans and markers included",
                  walk: { s, a in s.segmentWalk(a, [.allocated, .free, .spans, .markers], "vmem_seg") }),
        MdbWalker(name: "vmem_span", address: .required, summary: "an arena's spans",
                  walk: { s, a in s.segmentWalk(a, .spans, "vmem_span") }),
    ]

    /// kas or a process's address space, by its `struct as` address.
    func addressSpace(at address: UInt64) -> AddressSpace? {
        if address == kernel.kas.address { return kernel.kas }
        return kernel.processAddressSpaces.first { $0.address == address }
    }

    /// The arenas in `::vmem`'s order; from an arena, it and its descendants.
    func arenaWalk(_ start: UInt64?) -> Result<[UInt64], Output.Failure> {
        let order = kernel.arenas.preorder
        guard let start else { return .success(order.map { addresses.display($0.arena.address) }) }
        guard let at = order.firstIndex(where: { addresses.display($0.arena.address) == start }) else {
            return .failure(.init(Self.error("\(String(start, radix: 16)) is not an arena")))
        }
        let depth = order[at].depth
        let rest = order[(at + 1)...].prefix { $0.depth > depth }
        return .success([start] + rest.map { addresses.display($0.arena.address) })
    }

    /// `preorder` (arena addresses in ``arenaWalk(_:)``'s order, one subtree)
    /// rearranged so that every arena follows the arenas that import from it.
    func postfix(_ preorder: [UInt64]) -> [UInt64] {
        let depth = Dictionary(kernel.arenas.preorder.map { (addresses.display($0.arena.address), $0.depth) },
                               uniquingKeysWith: { a, _ in a })
        var out: [UInt64] = [], open: [UInt64] = []
        for a in preorder {
            let d = depth[a] ?? 0
            // Everything open at this depth or deeper has no children left.
            while let last = open.last, depth[last] ?? 0 >= d { out.append(open.removeLast()) }
            open.append(a)
        }
        out.append(contentsOf: open.reversed())
        return out
    }

    /// The boundary tags of an arena's segments that `mask` selects, in address order.
    func segmentWalk(_ start: UInt64?, _ mask: WalkMask, _ name: String) -> Result<[UInt64], Output.Failure> {
        guard let start, let arena = kernel.arenas.arenas.first(where: { addresses.display($0.address) == start }) else {
            return .failure(.init(Self.error("\(String(start ?? 0, radix: 16)) is not an arena (\(Self.walkerHint(name)))")))
        }
        return .success(arena.segments(mask).map { addresses.display($0.tagAddress) })
    }

    /// Every page that has a `page_t` in use (in frame order), or the pages
    /// of the kernel vnode at `start`, in offset order.
    func pageWalk(_ start: UInt64?) -> Result<[UInt64], Output.Failure> {
        var pages: [Page] = []
        if let start {
            guard let vnode = kernel.kernelVnode(at: start) else {
                return .failure(.init(Self.error("\(String(start, radix: 16)) is not a kernel vnode (kvps, kvps+0x200, kvps+0x400)")))
            }
            pages = (try? kernel.physicalMemory.pages(of: vnode)) ?? []
        } else {
            kernel.physicalMemory.forEachPage { pages.append($0) }
            pages.sort { $0.pfn < $1.pfn }
        }
        return .success(pages.compactMap { kernel.pageStructAddress(of: $0.pfn) })
    }
}
