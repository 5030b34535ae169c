extension Layout {
    /// The `vmkit layout --format json` object of `kernel-layout.md` §3:
    /// `model`, `physmem`, `physmax`, `kernelbase`, `userlimit`, `regions`
    /// (bottom up; `name`, `base`, `size`, `end`), `arenas` (``arenaSpecs``:
    /// `name`, `source`, `base`, `size`, `quantum`, `qcacheMax`), `checks`
    /// (`name`, `ok`, `detail`) and `warnings` (the kernel's notes).
    /// Addresses and sizes are `"0x…"` strings in lower case.
    public func json() -> String {
        let hex = JSONText.hex
        var lines: [String] = ["{"]
        lines.append("  \"model\": \(JSONText.string(model.name)),")
        lines.append("  \"physmem\": \(hex(physmem)),")
        lines.append("  \"physmax\": \(hex(physmax)),")
        lines.append("  \"kernelbase\": \(hex(kernelbase)),")
        lines.append("  \"userlimit\": \(hex(userlimit)),")
        lines.append("  \"regions\": [")
        let regionLines = regions.map { region in
            "    " + JSONText.object([
                ("name", JSONText.string(region.name.name)), ("base", hex(region.base)),
                ("size", hex(region.size)), ("end", hex(region.end)),
            ])
        }
        lines.append(regionLines.joined(separator: ",\n"))
        lines.append("  ],")
        lines.append("  \"arenas\": [")
        let arenaLines = arenaSpecs.map { spec in
            "    " + JSONText.object([
                ("name", JSONText.string(spec.name)),
                ("source", spec.source.map(JSONText.string) ?? "null"),
                ("base", hex(spec.base)), ("size", hex(spec.size)),
                ("quantum", hex(spec.quantum)), ("qcacheMax", hex(spec.qcacheMax)),
            ])
        }
        lines.append(arenaLines.joined(separator: ",\n"))
        lines.append("  ],")
        lines.append("  \"checks\": [")
        let checkLines = checkResults().map { result in
            "    " + JSONText.object([
                ("name", JSONText.string(result.name)), ("ok", result.ok ? "true" : "false"),
                ("status", JSONText.string(result.skipped ? "skipped" : result.ok ? "ok" : "fail")),
                ("detail", JSONText.string(result.detail)),
            ])
        }
        lines.append(checkLines.joined(separator: ",\n"))
        lines.append("  ],")
        let warnings = noteMessages.map(JSONText.string).joined(separator: ", ")
        lines.append("  \"warnings\": [\(warnings)]")
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }
}
