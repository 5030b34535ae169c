import GuestMemory
import ModelKernel
import PageTables

/// The guest dcmds: `::vm` (the hosted guests), `ADDR::memseg` (a guest's
/// memory segments), `ADDR::memmap` (its guest-physical mappings) and
/// `GPA::npt -g ADDR` (the nested-table walk of one guest-physical address,
/// level by level, as mdb's `::pte` decodes a walk). Tables have a header
/// line and one row per item, columns separated by spaces, addresses in hex
/// without `0x` as mdb prints them.
enum GuestRendering {
    // MARK: ::vm

    static let vmHeader = MdbFormat.right("ADDR", 16) + " " + MdbFormat.right("SIZE", 12) + " SEGS MAPS "
        + MdbFormat.left("NPT", 12) + " " + MdbFormat.right("GEN", 6) + " " + MdbFormat.right("VMMPAGES", 10)

    /// One row: the `vm_t`, RAM bytes, segments, mappings, nested format, TLB
    /// generation, and the pages its provider took from `vmm_alloc_arena`.
    static func vmRow(_ g: ModelGuest) -> String {
        let m = g.memory
        let pages = g.backings.reduce(0) { $0 + $1.length } / GuestMemory.pageSize
        let npt = m.nestedMode.format.rawValue + "/" + (m.nestedMode.effectiveAccessedDirty == .hardware ? "hw" : "emul")
        return MdbFormat.pointer(g.address) + " " + MdbFormat.hexRight(g.size, width: 12) + " "
            + MdbFormat.right(String(m.segments.count), 4) + " " + MdbFormat.right(String(m.mappings.count), 4) + " "
            + MdbFormat.left(npt, 12) + " " + MdbFormat.right(String(m.nestedGeneration), 6) + " "
            + MdbFormat.right(String(pages), 10)
    }

    static func vm(_ guests: [ModelGuest]) -> String {
        vmHeader + "\n" + guests.map { vmRow($0) + "\n" }.joined()
    }

    // MARK: ::memseg

    static let memsegHeader = MdbFormat.right("ID", 2) + " " + MdbFormat.left("KIND", 6) + " "
        + MdbFormat.left("NAME", 12) + " " + MdbFormat.right("LENGTH", 12) + " " + MdbFormat.left("BACKING", 16) + " "
        + MdbFormat.right("DIRTY", 8)

    /// One row per segment: id, sysmem/devmem, devmem name (`-`), bytes, the
    /// kernel VA of its `vmm_alloc_arena` pages (`-` for the guest's own
    /// memory), and pages the VMM has dirtied since the last harvest.
    static func memseg(_ g: ModelGuest) -> String {
        var out = memsegHeader + "\n"
        for s in g.memory.segments {
            out += MdbFormat.right(String(s.id), 2) + " " + MdbFormat.left(s.isSystem ? "sysmem" : "devmem", 6) + " "
                + MdbFormat.left(s.name ?? "-", 12) + " " + MdbFormat.hexRight(s.length, width: 12) + " "
                + MdbFormat.left(s.pageBacking.map { MdbFormat.pointer($0.address) } ?? "-", 16) + " "
                + MdbFormat.right(String(s.dirty.dirtyPages().count), 8) + "\n"
        }
        return out
    }

    // MARK: ::memmap

    static let memmapHeader = MdbFormat.right("GPA", 16) + " " + MdbFormat.right("LEN", 12) + " SEG "
        + MdbFormat.right("OFF", 12) + " PROT WIRED " + MdbFormat.right("HOST", 16)

    /// One row per mapping, in GPA order (bhyve's `vm_mmap_getnext` order).
    static func memmap(_ g: ModelGuest) -> String {
        var out = memmapHeader + "\n"
        for m in g.memory.mappings {
            out += MdbFormat.hexRight(m.gpa) + " " + MdbFormat.hexRight(m.length, width: 12) + " "
                + MdbFormat.right(String(m.segmentID), 3) + " " + MdbFormat.hexRight(m.offset, width: 12) + " "
                + MdbFormat.right(m.protection.description, 4) + " " + MdbFormat.right(m.wired ? "yes" : "no", 5) + " "
                + MdbFormat.hexRight(m.hostAddress) + "\n"
        }
        return out
    }

    // MARK: ::npt

    static let levelNames = [4: "PML4", 3: "PDPT", 2: "PD", 1: "PT"]

    /// The set bits of an entry, by name, in the guest's format: EPT
    /// (R W X, memory type, PS, A, D, and A/D emulation's EMUL_V / EMUL_RW)
    /// or RVI (an x86-64 entry: P RW US PWT PCD A D PS NX).
    static func bits(_ e: UInt64, _ mode: NestedTableMode) -> String {
        var out: [String] = []
        func bit(_ n: UInt64, _ name: String) { if e & (1 << n) != 0 { out.append(name) } }
        switch mode.format {
        case .ept:
            bit(0, "R"); bit(1, "W"); bit(2, "X")
            if e & 0x7 != 0 || e & (1 << 52) != 0 { out.append("MT=\((e >> 3) & 7)") }
            bit(7, "PS"); bit(8, "A"); bit(9, "D")
            if mode.effectiveAccessedDirty == .emulated { bit(52, "EMUL_V"); bit(53, "EMUL_RW") }
        case .rvi:
            bit(0, "P"); bit(1, "RW"); bit(2, "US"); bit(3, "PWT"); bit(4, "PCD"); bit(5, "A"); bit(6, "D")
            bit(7, "PS"); bit(63, "NX")
        }
        return out.isEmpty ? "-" : out.joined(separator: "|")
    }

    static let nptHeader = MdbFormat.left("LEVEL", 5) + " " + MdbFormat.right("TABLE", 16) + " "
        + MdbFormat.right("INDEX", 5) + " " + MdbFormat.right("ENTRY", 16) + " " + "DECODED"

    /// The walk of `gpa` in guest `g`: a line naming the guest, the address,
    /// the format and the generation, then one row per level (table, slot,
    /// raw entry, what it is and its bits), then what the walk means.
    static func npt(_ g: ModelGuest, gpa: UInt64, steps: [NestedWalkStep]) -> String {
        let mode = g.memory.nestedMode
        var out = "guest \(MdbFormat.pointer(g.address)) gpa \(String(gpa, radix: 16)) (\(mode)), generation \(g.memory.nestedGeneration)\n"
        out += nptHeader + "\n"
        for s in steps {
            let what: String
            if let size = s.leafSize, let host = s.hostAddress {
                what = "\(size) page host=\(String(host, radix: 16))"
            } else if let next = s.nextTable {
                what = "table=\(String(next, radix: 16))"
            } else {
                what = "not present"
            }
            out += MdbFormat.left(levelNames[s.level] ?? "L\(s.level)", 5) + " " + MdbFormat.pointer(s.tableAddress) + " "
                + MdbFormat.right(String(s.index), 5) + " " + MdbFormat.pointer(s.entry) + " " + what + " "
                + bits(s.entry, mode) + "\n"
        }
        if let leaf = steps.last, let size = leaf.leafSize, let host = leaf.hostAddress {
            let offset = gpa & size.offsetMask
            out += "gpa \(String(gpa, radix: 16)) -> host \(String(host + offset, radix: 16))\n"
        } else if let m = g.memory.mappings.first(where: { $0.range.contains(gpa) }) {
            out += "gpa \(String(gpa, radix: 16)) is mapped (segment \(m.segmentID), \(m.protection)) but not yet faulted in\n"
        } else {
            out += "gpa \(String(gpa, radix: 16)) is not mapped: a guest access is a nested-page fault (MMIO exit)\n"
        }
        return out
    }
}
