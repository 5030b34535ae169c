import ModelKernel
import PhysicalMemory

/// `::whatis ADDR` text for a `ModelKernel.WhatisReport`: one line per
/// layer that knows the address (symbol, segment, arenas, stack, page).
public enum WhatisRendering {
    static func hex(_ v: UInt64) -> String { String(v, radix: 16) }

    static func label(_ c: MemstatCategory) -> String {
        switch c {
        case .kernel: return "Kernel"
        case .bootPages: return "Boot pages"
        case .zfsFileData: return "ZFS File Data"
        case .vmmMemory: return "VMM Memory"
        case .anon: return "Anon"
        case .execAndLibs: return "Exec and libs"
        case .pageCache: return "Page cache"
        case .freeCachelist: return "Free (cachelist)"
        }
    }

    /// The report, arenas and boundary tags numbered as `addresses` number them.
    public static func render(_ r: WhatisReport, _ addresses: StructAddresses = .wide) -> String {
        let a = hex(r.address)
        var lines: [String] = []
        if let s = r.symbol { lines.append("\(a) is \(s)") }
        if let seg = r.segment {
            lines.append("\(a) is in \(seg.name) [\(hex(seg.base)), \(hex(seg.base &+ seg.size))) "
                         + "(\(seg.opsName), seg \(hex(seg.address)))")
        } else {
            lines.append("\(a) is not in any kernel segment")
        }
        for h in r.arenas {
            let kind = h.segment.kind == .allocated ? "allocated from" : "free in"
            lines.append(String(repeating: "  ", count: h.depth) + "\(a) is \(kind) \(h.arena) (vmem \(hex(addresses.display(h.arenaAddress)))): "
                         + "\(h.segment.kind.mdbName) [\(hex(h.segment.start)), \(hex(h.segment.end))) "
                         + "vmem_seg \(hex(addresses.display(h.segment.tagAddress)))")
        }
        if let k = r.stack {
            if r.inRedZone {
                lines.append("\(a) is the red-zone page of the segkp resource [\(hex(k.base)), +\(hex(k.length))) "
                             + "(\(k.flags)): touching it is a kernel stack overflow")
            } else {
                lines.append("\(a) is in the segkp resource [\(hex(k.mappedBase)), +\(hex(k.mappedLength))) (\(k.flags))")
            }
        }
        if let t = r.translation {
            var line = "\(a) is mapped to pfn \(hex(t.pfn)) (\(t.protection), \(t.pageSize >> 10)K page)"
            if let p = r.page {
                if let v = p.vnode {
                    line += ": page_t (\(v), \(hex(p.offset))) \(p.state) \(p.lock) p_lckcnt \(p.lockCount)"
                } else {
                    line += ": page_t without identity (\(p.state))"
                }
            } else {
                line += ": a free frame"
            }
            if let c = r.category { line += ", \(label(c))" }
            lines.append(line)
        } else {
            lines.append("\(a) is not mapped")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
