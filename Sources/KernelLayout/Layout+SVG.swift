extension Layout {
    /// The fill colour of each region in the picture.
    static func svgFill(_ name: RegionName) -> String {
        switch name {
        case .redzone: return "#f4cccc"
        case .segkpm: return "#cfe2f3"
        case .valloc: return "#d9ead3"
        case .segkp: return "#fff2cc"
        case .segkvmm: return "#d9d2e9"
        case .segzio: return "#fce5cd"
        case .device: return "#ead1dc"
        case .segmap: return "#d0e0e3"
        case .heap: return "#b6d7a8"
        case .heapCore: return "#a2c4c9"
        case .heaptext: return "#ffe599"
        case .misc: return "#d9d9d9"
        case .kernelText, .kernelData: return "#b4a7d6"
        case .debugger: return "#e6b8af"
        }
    }

    /// log2 of `value` to within a few percent, without the C library: the
    /// exponent plus a linear reading of the mantissa.
    static func approximateLog2(_ value: UInt64) -> Double {
        guard value > 0 else { return 0 }
        let exponent = 63 - value.leadingZeroBitCount
        let base = UInt64(1) << UInt64(exponent)
        return Double(exponent) + Double(value - base) / Double(base)
    }

    /// The height of a band for `size` bytes: logarithmic, because a layout
    /// holds an 84 KiB MISC range next to a heap of terabytes.
    static func svgHeight(_ size: UInt64) -> Int {
        guard size > 0 else { return 30 }
        let log = approximateLog2(size)
        return 40 + Int(((log - 12) * 7).rounded(.down).clamped(0, 400))
    }

    /// The `--format svg` rendering: the layout top down, one band per
    /// region (and per unused gap), band heights on a log2 scale, each
    /// labelled with its name, base, size and end; addresses of the
    /// boundaries on the left.
    public func svg() -> String {
        let amd64 = model.isAMD64
        let width = 940
        let boxX = 180, boxWidth = 250, labelX = 445
        let top = 70
        let address: (UInt64) -> String = { amd64 ? Hex.dotted($0) : Hex.padded($0, digits: 8) }
        let digits = amd64 ? 16 : 8

        struct Band { var label: String; var fill: String; var base: UInt64; var size: UInt64; var gap: Bool; var symbol: String }
        var bands: [Band] = []
        var upper: UInt64?
        for region in regions.reversed() {
            if let upper, upper > region.end {
                bands.append(Band(label: "(unused)", fill: "#ffffff", base: region.end,
                                  size: upper - region.end, gap: true, symbol: ""))
            }
            bands.append(Band(label: region.name.name, fill: Self.svgFill(region.name), base: region.base,
                              size: region.size, gap: false, symbol: baseSymbol(of: region.name)))
            upper = region.base
        }

        let failures = svgFailures()
        var body: [String] = []
        var y = top
        if let first = bands.first {
            body.append(svgText(x: boxX - 8, y: y + 4, anchor: "end", address(first.base &+ first.size)))
        }
        for band in bands {
            let h = Self.svgHeight(band.size)
            let dash = band.gap ? " stroke-dasharray=\"6 4\"" : ""
            body.append("<rect x=\"\(boxX)\" y=\"\(y)\" width=\"\(boxWidth)\" height=\"\(h)\" fill=\"\(band.fill)\" stroke=\"#333333\"\(dash)/>")
            // A region a failed check concerns: outlined in red, with the
            // numbers of its checks in the legend below.
            let marks = band.gap ? [] : failures.indices.filter { failures[$0].regions.contains(band.label) }
            if !marks.isEmpty {
                body.append("<rect x=\"\(boxX + 2)\" y=\"\(y + 2)\" width=\"\(boxWidth - 4)\" height=\"\(h - 4)\" fill=\"none\" stroke=\"#cc0000\" stroke-width=\"3\" class=\"failed-check\"/>")
                body.append(svgText(x: boxX + boxWidth - 8, y: y + 16, anchor: "end",
                                    marks.map { "[\($0 + 1)]" }.joined(separator: " "), weight: "bold", fill: "#cc0000"))
            }
            body.append(svgText(x: boxX + boxWidth / 2, y: y + h / 2 + 5, anchor: "middle",
                                band.label, weight: "bold"))
            let mid = y + h / 2
            body.append(svgText(x: labelX, y: mid - 4,
                                "\(band.label)  size \(Hex.lower(band.size)) (\(HumanSize.format(band.size)))",
                                weight: band.gap ? nil : "bold"))
            body.append(svgText(x: labelX, y: mid + 12,
                                "base \(Hex.padded(band.base, digits: digits).lowercased())  end \(Hex.padded(band.base &+ band.size, digits: digits).lowercased())"))
            y += h
            let symbol = band.symbol.isEmpty ? "" : "  " + band.symbol
            body.append(svgText(x: boxX - 8, y: y + 4, anchor: "end", address(band.base)))
            if !symbol.isEmpty {
                body.append(svgText(x: 10, y: y + 16, band.symbol, size: 10, fill: "#555555"))
            }
        }
        let limitLabel = amd64 ? "_userlimit \(address(userlimit))" : "kernelbase = _userlimit \(address(kernelbase))"
        body.append(svgText(x: boxX, y: y + 34, limitLabel))
        var height = y + 60
        if !failures.isEmpty {
            body.append(svgText(x: 10, y: height, "Failed checks (regions outlined in red):", weight: "bold", fill: "#cc0000"))
            height += 18
            for (i, f) in failures.enumerated() {
                body.append(svgText(x: 10, y: height, "[\(i + 1)] \(f.check.name): \(f.detail)", size: 11, fill: "#cc0000"))
                height += 16
            }
            height += 10
        }

        var svg: [String] = []
        svg.append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        svg.append("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"12\">")
        svg.append("<title>Kernel VA layout \(model.name), physmem \(HumanSize.format(physmem))</title>")
        svg.append("<rect x=\"0\" y=\"0\" width=\"\(width)\" height=\"\(height)\" fill=\"#ffffff\"/>")
        svg.append(svgText(x: 10, y: 24, "Kernel virtual address layout, model \(model.name), physmem \(Hex.lower(physmem)) (\(HumanSize.format(physmem)))", size: 15, weight: "bold"))
        svg.append(svgText(x: 10, y: 46, "top down; band heights grow with log2(size); kernelbase \(Hex.lower(kernelbase)), heap \(HumanSize.format(heapSize))", size: 11, fill: "#555555"))
        svg += body
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }

    /// The failed checks, each with the regions (by name) it concerns.
    func svgFailures() -> [(check: LayoutCheck, detail: String, regions: Set<String>)] {
        let failed = failedChecks
        return applicableChecks.filter { failed.contains($0) }.map { check in
            var names: Set<RegionName> = []
            switch check {
            case .regionsOrderedNoOverlap:
                if let (a, b) = firstDisorder() { names = [a.name, b.name] }
            case .kpmBelowValloc: names = [.segkpm, .valloc]
            case .heapNonempty, .heapAtLeast1_5xPhysmem: names = [.heap]
            case .segkpmBaseAboveDefault, .kernelbaseAboveHole: names = [.segkpm]
            case .aligned2M, .noWrap: names = []
            }
            return (check, detail(of: check), Set(names.map(\.name)))
        }
    }

    private func svgText(x: Int, y: Int, anchor: String = "start", _ text: String, size: Int? = nil,
                         weight: String? = nil, fill: String? = nil) -> String {
        var attributes = "x=\"\(x)\" y=\"\(y)\""
        if anchor != "start" { attributes += " text-anchor=\"\(anchor)\"" }
        if let size { attributes += " font-size=\"\(size)\"" }
        if let weight { attributes += " font-weight=\"\(weight)\"" }
        if let fill { attributes += " fill=\"\(fill)\"" }
        return "<text \(attributes)>\(Self.xmlEscaped(text))</text>"
    }

    static func xmlEscaped(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}

extension Double {
    fileprivate func clamped(_ low: Double, _ high: Double) -> Double { Swift.min(Swift.max(self, low), high) }
}
