import KernelLayout
import PhysicalMemory
import Vmem

/// Where an arena's memory comes from.
public enum ArenaBacking: Hashable, Sendable {
    /// Its own span, given at creation (`heap`, `zfs_file_data`, `kvmm_arena`, ...).
    case span
    /// VA only, from its source with `vmem_alloc` / `vmem_free` (`kmem_va`,
    /// `vmem_metadata`, `static_alloc`, i386 `segkp`).
    case vmem
    /// VA from its source backed by pages on a kernel vnode: `segkmem_alloc`
    /// (`kvps[KV_KVP]`), `segkmem_zio_alloc` (`KV_ZVP`), bhyve's
    /// `segkmem_xalloc(..., &kvps[KV_VVP])`.
    case pages(Vnode)
    /// `segkmem_alloc_permanent`: pages on `KV_KVP` that are never relocated.
    case permanentPages
}

/// The model kernel's arena tree: the arenas of `KernelLayout.Layout.arenaSpecs`
/// (the same names, sources, quanta and quantum caches as
/// `KernelLayout.ArenaTree`), but with segkmem's import functions where
/// illumos uses them, so that allocating from `kmem_default`,
/// `zfs_file_data_buf` or `vmm_alloc_arena` creates, maps and locks pages,
/// and freeing destroys them.
public struct KernelArenas: Sendable {
    public let specs: [ArenaSpec]
    /// In creation order, parents first.
    public let arenas: [Arena]
    public let backings: [String: ArenaBacking]

    /// The backing illumos gives the arena called `name` (given its spec).
    public static func backing(of spec: ArenaSpec) -> ArenaBacking {
        guard spec.source != nil else { return .span }
        switch spec.name {
        case "static": return .permanentPages
        case "kmem_default", "vmem_seg", "vmem_hash", "vmem_vmem": return .pages(.kvp)
        case "zfs_file_data_buf": return .pages(.zvp)
        case "vmm_alloc_arena": return .pages(.vvp)
        default: return .vmem
        }
    }

    public subscript(name: String) -> Arena? { arenas.first { $0.name == name } }

    static func build(layout: Layout, memory: KernelMemory, audit: Bool = false) throws(ModelKernelError) -> KernelArenas {
        let specs = layout.arenaSpecs
        var made: [String: Arena] = [:]
        var arenas: [Arena] = []
        var backings: [String: ArenaBacking] = [:]
        for spec in specs {
            let backing = backing(of: spec)
            var source: ArenaSource?
            if let name = spec.source {
                guard let parent = made[name] else {
                    throw .invalidArgument(name: "arena \(spec.name) source \(name)", value: 0,
                                           reason: "the source is not created before it")
                }
                source = Self.source(for: spec.name, parent: parent, backing: backing, memory: memory)
            }
            let arena: Arena
            do {
                arena = try Arena(name: spec.name, base: spec.base, size: spec.size, quantum: spec.quantum,
                                  source: source, quantumCacheMax: spec.qcacheMax,
                                  debugging: ArenaDebugging(audit: audit))
                if spec.preallocated != 0 { _ = try arena.allocExact(at: spec.base, size: spec.preallocated) }
            } catch {
                throw .vmem(error, arena: spec.name)
            }
            made[spec.name] = arena
            arenas.append(arena)
            backings[spec.name] = backing
        }
        return KernelArenas(specs: specs, arenas: arenas, backings: backings)
    }

    /// The import and release functions of one arena.
    static func source(for name: String, parent: Arena, backing: ArenaBacking, memory: KernelMemory) -> ArenaSource {
        let vnode: Vnode
        switch backing {
        case .span, .vmem: return .arena(parent)
        case .pages(let v): vnode = v
        case .permanentPages: vnode = .kvp
        }
        return .arena(parent, import: { (size, align) throws(VmemError) in
            let va = try parent.allocSpan(size, align: align)
            do throws(ModelKernelError) {
                try memory.createPages(va: va, size: size, vnode: vnode)
            } catch {
                memory.failures.record(error)
                parent.freeSpan(va, size: size)
                throw .importFailed(arena: name, size: size)
            }
            return (va, size)
        }, release: { base, size in
            do throws(ModelKernelError) {
                try memory.destroyPages(va: base, size: size, vnode: vnode)
            } catch {
                // Pages that cannot be destroyed keep their VA: handing the
                // range out again would alias live pages.
                memory.failures.record(error)
                return
            }
            parent.freeSpan(base, size: size)
        })
    }

    /// Each arena with its depth in the import tree, depth first in pre-order
    /// (the order `::vmem` prints).
    public var preorder: [(arena: Arena, depth: Int)] {
        var children: [ObjectIdentifier: [Arena]] = [:]
        var roots: [Arena] = []
        for a in arenas {
            if let p = a.parent { children[ObjectIdentifier(p), default: []].append(a) } else { roots.append(a) }
        }
        var out: [(Arena, Int)] = []
        func visit(_ a: Arena, _ d: Int) {
            out.append((a, d))
            for c in children[ObjectIdentifier(a)] ?? [] { visit(c, d + 1) }
        }
        for r in roots { visit(r, 0) }
        return out
    }
}
