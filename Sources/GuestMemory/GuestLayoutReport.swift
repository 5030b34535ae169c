/// What `vmkit guest layout` prints: a guest's segments, its mappings as
/// guest-physical ranges (lowmem below the 32-bit PCI hole, highmem from
/// 4 GiB), the host reservation, the guest window in it and the two guard
/// regions — as a table or as one JSON object (addresses and sizes as
/// `"0x…"` strings).
public struct GuestLayoutReport: Sendable {
    public struct Segment: Hashable, Sendable {
        public let id: Int
        /// `sysmem`, or the devmem name.
        public let kind: String
        public let length: UInt64
        public init(id: Int, kind: String, length: UInt64) {
            self.id = id
            self.kind = kind
            self.length = length
        }
    }

    /// The RAM asked for (the sum of the mappings' lengths for a standard guest).
    public let size: UInt64
    public let segments: [Segment]
    public let mappings: [GuestMapping]
    /// The guest-physical space `[0, limit)`.
    public let limit: UInt64
    /// The whole host reservation: guard, guest window, guard.
    public let reservation: Range<UInt64>
    /// Host `[hostBase, hostBase + limit)`: guest-physical 0 onwards.
    public let hostWindow: Range<UInt64>
    public let guards: [Range<UInt64>]

    public init(_ memory: GuestMemory) {
        segments = memory.segments.map { Segment(id: $0.id, kind: $0.name ?? "sysmem", length: $0.length) }
        mappings = memory.mappings
        size = mappings.reduce(0) { $0 + $1.length }
        limit = memory.limit
        reservation = memory.reservation.base ..< memory.reservation.base + memory.reservation.size
        hostWindow = memory.hostWindow
        guards = memory.guardRegions
    }

    /// `lowmem` below the PCI hole, `highmem` from 4 GiB.
    public static func region(of mapping: GuestMapping) -> String {
        mapping.gpa < GuestMemory.highmemBase ? "lowmem" : "highmem"
    }

    /// The unmapped guest-physical range between lowmem and highmem, if the guest has highmem.
    public var pciHole: Range<UInt64>? {
        guard let high = mappings.first(where: { $0.gpa >= GuestMemory.highmemBase }) else { return nil }
        let lowEnd = mappings.filter { $0.gpa < GuestMemory.highmemBase }.map { $0.gpa + $0.length }.max() ?? 0
        return lowEnd < high.gpa ? lowEnd ..< high.gpa : nil
    }

    static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

    /// `3 GiB`, `9224 MiB`, `4 KiB`: the largest unit that divides the value exactly, or bytes.
    static func human(_ v: UInt64) -> String {
        for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")]
        where v >= 1 << shift && v & ((1 << shift) - 1) == 0 {
            return "\(v >> shift) \(unit)"
        }
        return "\(v) B"
    }

    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }

    /// The layout as a table.
    public func table() -> String {
        var out = "guest memory: \(Self.human(size)) of RAM (\(size) bytes), guest-physical space [0x0, \(Self.hex(limit)))\n"
        out += "\nsegments\n"
        out += "  " + Self.pad("ID", 4) + Self.pad("KIND", 14) + Self.pad("LENGTH", 16) + "SIZE\n"
        for s in segments {
            out += "  " + Self.pad("\(s.id)", 4) + Self.pad(s.kind, 14) + Self.pad(Self.hex(s.length), 16) + Self.human(s.length) + "\n"
        }
        out += "\nmappings (guest-physical)\n"
        out += "  " + Self.pad("REGION", 9) + Self.pad("GPA START", 15) + Self.pad("GPA END", 15) + Self.pad("LENGTH", 10)
            + Self.pad("SEG", 5) + Self.pad("OFFSET", 15) + Self.pad("PROT", 6) + "WIRED\n"
        var rows: [(UInt64, String)] = mappings.map { m in
            (m.gpa, "  " + Self.pad(Self.region(of: m), 9) + Self.pad(Self.hex(m.gpa), 15) + Self.pad(Self.hex(m.gpa + m.length), 15)
                + Self.pad(Self.human(m.length), 10) + Self.pad("\(m.segmentID)", 5) + Self.pad(Self.hex(m.offset), 15)
                + Self.pad(m.protection.word, 6) + (m.wired ? "yes" : "no") + "\n")
        }
        if let hole = pciHole {
            rows.append((hole.lowerBound, "  " + Self.pad("pci-hole", 9) + Self.pad(Self.hex(hole.lowerBound), 15)
                         + Self.pad(Self.hex(hole.upperBound), 15) + Self.pad(Self.human(UInt64(hole.count)), 10) + "(unmapped)\n"))
        }
        for r in rows.sorted(by: { $0.0 < $1.0 }) { out += r.1 }
        out += "\nhost reservation (2 MiB aligned, PROT_NONE where unmapped)\n"
        out += "  " + Self.pad("PART", 14) + Self.pad("START", 17) + Self.pad("END", 17) + "SIZE\n"
        var parts: [(String, Range<UInt64>)] = [("reservation", reservation)]
        if guards.count == 2 {
            parts += [("guard", guards[0]), ("guest window", hostWindow), ("guard", guards[1])]
        }
        for (name, r) in parts {
            out += "  " + Self.pad(name, 14) + Self.pad(Self.hex(r.lowerBound), 17) + Self.pad(Self.hex(r.upperBound), 17)
                + Self.human(UInt64(r.count)) + "\n"
        }
        return out
    }

    /// The layout as one JSON object, on several lines.
    public func json() -> String {
        func q(_ s: String) -> String { "\"" + s + "\"" }
        func h(_ v: UInt64) -> String { q(Self.hex(v)) }
        func range(_ r: Range<UInt64>) -> String {
            "{\"start\": \(h(r.lowerBound)), \"end\": \(h(r.upperBound)), \"size\": \(h(UInt64(r.count)))}"
        }
        var out = "{\n"
        out += "  \"size\": \(h(size)),\n"
        out += "  \"guestSpace\": \(h(limit)),\n"
        out += "  \"lowmemLimit\": \(h(GuestMemory.defaultLowmemLimit)),\n"
        out += "  \"highmemBase\": \(h(GuestMemory.highmemBase)),\n"
        out += "  \"segments\": [\n" + segments.map { s in
            "    {\"id\": \(s.id), \"kind\": \(q(s.kind)), \"length\": \(h(s.length))}"
        }.joined(separator: ",\n") + "\n  ],\n"
        out += "  \"mappings\": [\n" + mappings.map { m in
            "    {\"region\": \(q(Self.region(of: m))), \"gpa\": \(h(m.gpa)), \"end\": \(h(m.gpa + m.length)), "
                + "\"length\": \(h(m.length)), \"segment\": \(m.segmentID), \"offset\": \(h(m.offset)), "
                + "\"protection\": \(q(m.protection.word)), \"wired\": \(m.wired)}"
        }.joined(separator: ",\n") + "\n  ],\n"
        out += "  \"pciHole\": \(pciHole.map(range) ?? "null"),\n"
        out += "  \"reservation\": \(range(reservation)),\n"
        out += "  \"hostBase\": \(h(hostWindow.lowerBound)),\n"
        out += "  \"guestWindow\": \(range(hostWindow)),\n"
        out += "  \"guards\": [\n" + guards.map { "    " + range($0) }.joined(separator: ",\n") + "\n  ]\n"
        out += "}\n"
        return out
    }
}
