import Vmem

/// mdb's `::vmem`: every arena, depth first in pre-order, each name indented
/// two spaces per ancestor (address-space.md §3.9).
public enum VmemTable {
    static let nameWidth = 22

    /// The header line; `%-?s` is `addresses`' pointer width.
    public static func header(_ addresses: StructAddresses = .wide) -> String {
        MdbFormat.left("ADDR", addresses.pointerWidth) + " " + MdbFormat.left("NAME", nameWidth) + " "
            + MdbFormat.right("INUSE", 10) + " " + MdbFormat.right("TOTAL", 12) + " "
            + MdbFormat.right("SUCCEED", 9) + " " + MdbFormat.right("FAIL", 5)
    }

    /// One row for `arena` at `depth` ancestors, its ADDR as `addresses` number it.
    public static func row(_ arena: Arena, depth: Int, _ addresses: StructAddresses = .wide) -> String {
        let st = arena.statistics
        let indent = min(2 * depth, nameWidth - 1)
        let room = nameWidth - indent
        let name = String(arena.name.prefix(room - 1))
        return MdbFormat.pointer(addresses.display(arena.address), width: addresses.pointerWidth) + " " + String(repeating: " ", count: indent)
            + MdbFormat.left(name, room) + " "
            + MdbFormat.right(String(st.memInUse), 10) + " " + MdbFormat.right(String(st.memTotal), 12) + " "
            + MdbFormat.right(String(st.allocCount), 9) + " " + MdbFormat.right(String(st.failCount), 5)
    }

    /// The table for `arenas` (creation order), arranged as a tree through
    /// each arena's source; arenas whose parent is not listed are roots.
    /// With `kernelData`, the region of a 32-bit target, it prints them as
    /// mdb there would (``StructAddresses``).
    public static func render(_ arenas: [Arena], kernelData: (base: UInt64, size: UInt64)? = nil) -> String {
        let order = preorder(arenas)
        return render(order, StructAddresses(arenas: order.map(\.arena), kernelData: kernelData))
    }

    /// The table for arenas already in pre-order with their depths, numbered by `addresses`.
    public static func render(_ order: [(arena: Arena, depth: Int)], _ addresses: StructAddresses) -> String {
        ([header(addresses)] + order.map { row($0.arena, depth: $0.depth, addresses) }).joined(separator: "\n") + "\n"
    }

    /// `arenas` depth first in pre-order through each arena's source, with
    /// their depths; arenas whose parent is not listed are roots.
    public static func preorder(_ arenas: [Arena]) -> [(arena: Arena, depth: Int)] {
        var out: [(arena: Arena, depth: Int)] = []
        let listed = Set(arenas.map { ObjectIdentifier($0) })
        var children: [ObjectIdentifier: [Arena]] = [:]
        var roots: [Arena] = []
        for a in arenas {
            if let p = a.parent, listed.contains(ObjectIdentifier(p)) {
                children[ObjectIdentifier(p), default: []].append(a)
            } else {
                roots.append(a)
            }
        }
        func visit(_ a: Arena, _ depth: Int) {
            out.append((a, depth))
            for c in children[ObjectIdentifier(a)] ?? [] { visit(c, depth + 1) }
        }
        for r in roots { visit(r, 0) }
        return out
    }
}
