import Vmem

/// Why the arena tree could not be built on a layout.
public enum ArenaTreeError: Error, Hashable, Sendable {
    /// Creating, spanning or pre-allocating `arena` failed in Vmem.
    case vmem(arena: String, error: VmemError)
    /// A spec names a source that is not created before it.
    case unknownSource(arena: String, source: String)
    /// The layout fails a check that arenas cannot live with (`no-wrap`,
    /// `regions-ordered-no-overlap`, `heap-nonempty`): the kernel would have
    /// panicked before creating them.
    case unusableLayout(failedChecks: [LayoutCheck])
}

extension ArenaTreeError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .vmem(let arena, let error):
            return "arena \(arena): \(error)"
        case .unknownSource(let arena, let source):
            return "arena \(arena) imports from \(source), which does not exist"
        case .unusableLayout(let checks):
            return "the layout fails " + checks.map(\.name).joined(separator: ", ")
                + "; the kernel would not get as far as creating its arenas"
        }
    }
}

/// The model kernel's vmem arenas on a layout, as real `Vmem.Arena`s: what
/// `vmem_init`, `kernelheap_init`, `kmem_init`, `segkmem_zio_init`,
/// `segkmem_kvmm_init`, `startup_vm` and `segkp_create` create, built from
/// ``Layout/arenaSpecs``.
///
/// The `heap` arena spans `[kernelheap, ekernelheap)` with its first page
/// allocated, so that it never returns `kernelheap` itself. Importing arenas
/// start empty and take spans from their source on demand; `segkp` on i386
/// is such an arena over `heap` (seed 001).
public struct ArenaTree: Sendable {
    public let layout: Layout
    /// Checks whose failure leaves no sensible place for the arenas. The
    /// others (a heap below 1.5x physmem, a clamped base) describe a poor
    /// layout the kernel still boots with.
    public static let fatalChecks: Set<LayoutCheck> = [.noWrap, .regionsOrderedNoOverlap, .heapNonempty]

    /// The specs the arenas were made from, in creation order.
    public let specs: [ArenaSpec]
    /// The arenas, in creation order (parents before children).
    public let arenas: [Arena]

    /// The arena called `name`.
    public subscript(name: String) -> Arena? {
        arenas.first { $0.name == name }
    }

    /// Creates every arena of `layout.arenaSpecs`.
    public static func build(from layout: Layout) throws(ArenaTreeError) -> ArenaTree {
        let fatal = Array(layout.failedChecks).filter(Self.fatalChecks.contains)
        if !fatal.isEmpty { throw .unusableLayout(failedChecks: fatal) }
        let specs = layout.arenaSpecs
        var made: [String: Arena] = [:]
        var arenas: [Arena] = []
        arenas.reserveCapacity(specs.count)
        for spec in specs {
            var source: ArenaSource?
            if let name = spec.source {
                guard let parent = made[name] else {
                    throw .unknownSource(arena: spec.name, source: name)
                }
                source = .arena(parent)
            }
            let arena: Arena
            do {
                arena = try Arena(name: spec.name, base: spec.base, size: spec.size, quantum: spec.quantum,
                                  source: source, quantumCacheMax: spec.qcacheMax)
                if spec.preallocated != 0 {
                    _ = try arena.allocExact(at: spec.base, size: spec.preallocated)
                }
            } catch {
                throw .vmem(arena: spec.name, error: error)
            }
            made[spec.name] = arena
            arenas.append(arena)
        }
        return ArenaTree(layout: layout, specs: specs, arenas: arenas)
    }

    /// Builds the tree for `layout` (same as ``build(from:)``).
    public init(_ layout: Layout) throws(ArenaTreeError) {
        self = try Self.build(from: layout)
    }

    private init(layout: Layout, specs: [ArenaSpec], arenas: [Arena]) {
        self.layout = layout
        self.specs = specs
        self.arenas = arenas
    }

    /// Each arena with its depth in the import tree, depth first in
    /// pre-order (children in creation order): the order `::vmem` prints.
    public var preorder: [(arena: Arena, depth: Int)] {
        var children: [ObjectIdentifier: [Arena]] = [:]
        var roots: [Arena] = []
        for arena in arenas {
            if let parent = arena.parent {
                children[ObjectIdentifier(parent), default: []].append(arena)
            } else {
                roots.append(arena)
            }
        }
        var out: [(Arena, Int)] = []
        func visit(_ arena: Arena, _ depth: Int) {
            out.append((arena, depth))
            for child in children[ObjectIdentifier(arena)] ?? [] { visit(child, depth + 1) }
        }
        for root in roots { visit(root, 0) }
        return out
    }
}
