extension Layout {
    /// The symbol `startup.c`'s layout comment writes at a region's base.
    func baseSymbol(of name: RegionName) -> String {
        switch name {
        case .redzone: return "kernelbase"
        case .segkpm: return "segkpm_base = kpm_vbase"
        case .valloc: return model == .i386 ? "valloc_base = ekernelheap" : "valloc_base"
        case .segkp: return "segkp_base"
        case .segkvmm: return "segkvmm_base"
        case .segzio: return "segzio_base"
        case .device: return "toxic_addr"
        case .segmap: return "segmap_start"
        case .heap: return "kernelheap"
        case .heapCore: return "core_base = ekernelheap"
        case .heaptext: return "heaptext"
        case .misc: return "MISC_VA_BASE"
        case .kernelText: return "KERNEL_TEXT"
        case .kernelData: return "kernel data"
        case .debugger: return "SEGDEBUGBASE"
        }
    }

    /// The `--format table` rendering: the layout top down, drawn like the
    /// comment at the top of illumos `startup.c`, with each region's base,
    /// size, end (exclusive) and size in binary units. Gaps between regions
    /// show as `(unused)`.
    public func table() -> String {
        let amd64 = model.isAMD64
        let addressWidth = amd64 ? 19 : 10
        let boxWidth = 26
        let address: (UInt64) -> String = { amd64 ? Hex.dotted($0) : Hex.padded($0, digits: 8) }
        let numberWidth = amd64 ? 18 : 10
        func pad(_ text: String, _ width: Int) -> String {
            text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
        }
        func leftPad(_ text: String, _ width: Int) -> String {
            text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
        }
        let margin = String(repeating: " ", count: addressWidth)
        let dashes = String(repeating: "-", count: boxWidth + 2)
        func boundary(_ value: UInt64, _ symbol: String) -> String {
            leftPad(address(value), addressWidth) + " -|" + dashes + "|-" + (symbol.isEmpty ? "" : " " + symbol)
        }
        func row(_ label: String, base: UInt64, size: UInt64) -> String {
            let hexBase = Hex.padded(base, digits: amd64 ? 16 : 8)
            let hexEnd = Hex.padded(base &+ size, digits: amd64 ? 16 : 8)
            return margin + "  | " + pad(label, boxWidth) + " |  " + pad(hexBase, numberWidth) + "  "
                + pad(Hex.upper(size), numberWidth - 2) + "  " + pad(hexEnd, numberWidth) + "  "
                + HumanSize.format(size)
        }

        var lines: [String] = []
        lines.append("Kernel virtual address layout, model \(model.name): physmem \(Hex.upper(physmem)) (\(HumanSize.format(physmem))), physmax \(Hex.upper(physmax)) (\(HumanSize.format(physmax)))")
        lines.append("")
        lines.append(margin + "  " + pad("", boxWidth + 4) + "  " + pad("base", numberWidth) + "  "
                     + pad("size", numberWidth - 2) + "  " + pad("end", numberWidth) + "  size")
        lines.append(margin + "  +" + dashes + "+")

        var upper: UInt64?
        for region in regions.reversed() {
            if let upper {
                if upper > region.end {
                    // A hole between two regions (kpm's unused room, alignment slack).
                    lines.append(row("(unused)", base: region.end, size: upper - region.end))
                    lines.append(boundary(region.end, ""))
                } else if upper < region.end {
                    lines.append(margin + "  | " + pad("(overlap!)", boxWidth) + " |")
                    lines.append(boundary(region.end, ""))
                }
            } else {
                lines.append(boundary(region.end, ""))
            }
            lines.append(row(region.name.name, base: region.base, size: region.size))
            lines.append(boundary(region.base, baseSymbol(of: region.name)))
            upper = region.base
        }
        if amd64 {
            lines.append(margin + "  |" + pad(" User stack, shared objects", boxWidth + 2) + "|")
            lines.append(boundary(userlimit, "_userlimit"))
            lines.append(margin + "  :" + String(repeating: " ", count: boxWidth + 2) + ":")
            lines.append(boundary(AMD64.vaHoleEnd, "AMD64_VA_HOLE_END"))
        } else {
            lines.append(margin + "  |" + pad(" (red zone)", boxWidth + 2) + "|")
            lines.append(boundary(kernelbase, "kernelbase = _userlimit"))
            lines.append(margin + "  :" + pad(" user space", boxWidth + 2) + ":")
        }
        lines.append("")
        lines.append("kernelbase \(Hex.upper(kernelbase))  userlimit \(Hex.upper(userlimit))  valloc_sz \(Hex.upper(vallocSize)) (\(HumanSize.format(vallocSize)))  heap \(Hex.upper(heapSize)) (\(HumanSize.format(heapSize)))")
        if adjustment.triggered {
            let clamp: String
            switch adjustment.clamp {
            case .none: clamp = "not clamped"
            case .toFloor: clamp = "clamped up to the floor \(Hex.upper(AMD64.segkpmFloor))"
            case .toDefault: clamp = "clamped down to SEGKPM_BASE \(Hex.upper(model.defaults.segkpmBase))"
            }
            lines.append("large-memory adjustment: computed segkpm_base \(Hex.upper(adjustment.candidateSegkpmBase)), \(clamp)")
        }
        for result in checkResults() {
            lines.append("check \(result.status + String(repeating: " ", count: 4 - result.status.count)) \(result.name): \(result.detail)")
        }
        for message in noteMessages { lines.append("note: \(message)") }
        return lines.joined(separator: "\n") + "\n"
    }
}
