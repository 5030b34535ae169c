import Foundation
import Testing
@testable import KernelLayout

private let GiB: UInt64 = 1 << 30

@Suite("JSON, table and SVG renderings")
struct RenderingTests {
    static func parse(_ text: String) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
        return try #require(object as? [String: Any])
    }

    @Test("JSON fields of §3, for the 512 GiB example")
    func jsonFields() throws {
        let layout = try Layout.compute(model: .post12608, physmem: 512 * GiB)
        let json = try Self.parse(layout.json())
        #expect(json["model"] as? String == "post-12608")
        #expect(json["physmem"] as? String == "0x8000000000")
        #expect(json["kernelbase"] as? String == "0xfffffa8000000000")
        #expect(json["userlimit"] as? String == "0xfffffa7fffe00000")
        let regions = try #require(json["regions"] as? [[String: Any]])
        #expect(regions.map { $0["name"] as? String } == [
            "redzone", "segkpm", "valloc", "segkp", "segkvmm", "segzio", "device", "segmap", "heap",
            "heap_core", "heaptext", "misc", "kernel_text", "kernel_data", "debugger",
        ])
        for region in regions {
            #expect(Set(region.keys) == ["name", "base", "size", "end"])
            for key in ["base", "size", "end"] {
                let text = try #require(region[key] as? String)
                #expect(text.hasPrefix("0x") && text == text.lowercased())
            }
        }
        let heap = try #require(regions.first { $0["name"] as? String == "heap" })
        #expect(heap["base"] as? String == "0xfffffe44a4200000")
        #expect(heap["size"] as? String == "0x1bb1be00000")
        #expect(heap["end"] as? String == "0xffffffffc0000000")

        let arenas = try #require(json["arenas"] as? [[String: Any]])
        for arena in arenas {
            #expect(Set(arena.keys) == ["name", "source", "base", "size", "quantum", "qcacheMax"])
        }
        let names = arenas.compactMap { $0["name"] as? String }
        #expect(names == ["heap", "heap_core", "heaptext", "static", "static_alloc", "kmem_metadata", "kmem_va",
                          "kmem_default", "vmem_metadata", "vmem_seg", "vmem_hash", "vmem_vmem", "zfs_file_data",
                          "zfs_file_data_buf", "kvmm_arena", "vmm_alloc_arena", "device", "segkp"])
        let first = try #require(arenas.first)
        #expect(first["source"] is NSNull)
        #expect(first["quantum"] as? String == "0x1000")
        #expect(first["qcacheMax"] as? String == "0x0")
        let kvmm = try #require(arenas.first { $0["name"] as? String == "kvmm_arena" })
        #expect(kvmm["quantum"] as? String == "0x100000")
        #expect(kvmm["base"] as? String == "0xfffffb8460200000")
        #expect(kvmm["size"] as? String == "0x20000000000")
        let vmm = try #require(arenas.first { $0["name"] as? String == "vmm_alloc_arena" })
        #expect(vmm["source"] as? String == "kvmm_arena")
        let kmemVA = try #require(arenas.first { $0["name"] as? String == "kmem_va" })
        #expect(kmemVA["qcacheMax"] as? String == "0x8000")
        let zio = try #require(arenas.first { $0["name"] as? String == "zfs_file_data" })
        #expect(zio["qcacheMax"] as? String == "0x8000")
        #expect(zio["base"] as? String == "0xfffffd8460200000")
        let segkp = try #require(arenas.first { $0["name"] as? String == "segkp" })
        #expect(segkp["qcacheMax"] as? String == "0x5000")
        #expect(segkp["source"] is NSNull)

        let checks = try #require(json["checks"] as? [[String: Any]])
        #expect(checks.compactMap { $0["name"] as? String } == [
            "regions-ordered-no-overlap", "aligned-2m", "kpm-below-valloc", "heap-nonempty",
            "heap-at-least-1.5x-physmem", "segkpm-base-above-default", "kernelbase-above-hole", "no-wrap",
        ])
        #expect(checks.allSatisfy { $0["ok"] as? Bool == true && !($0["detail"] as? String ?? "").isEmpty })
    }

    @Test("pre-12608 JSON has no segkvmm; a failing check says ok false")
    func jsonPre() throws {
        let layout = try Layout.compute(model: .pre12608, physmem: 320 * GiB)
        let json = try Self.parse(layout.json())
        let regions = try #require(json["regions"] as? [[String: Any]])
        #expect(!regions.contains { $0["name"] as? String == "segkvmm" })
        let checks = try #require(json["checks"] as? [[String: Any]])
        let above = try #require(checks.first { $0["name"] as? String == "segkpm-base-above-default" })
        #expect(above["ok"] as? Bool == false)
        let arenas = try #require(json["arenas"] as? [[String: Any]])
        #expect(!arenas.contains { $0["name"] as? String == "kvmm_arena" })
    }

    @Test("warnings are valid JSON strings")
    func jsonWarnings() throws {
        let layout = try Layout(LayoutConfiguration(physmem: 4 * GiB, segkpSize: 100 << 20, eepromKernelbase: 0xC000_0000))
        let json = try Self.parse(layout.json())
        let warnings = try #require(json["warnings"] as? [String])
        #expect(warnings.count == 2)
    }

    @Test("i386 JSON")
    func jsonI386() throws {
        let json = try Self.parse(try Layout.compute(model: .i386, physmem: 4 * GiB).json())
        #expect(json["kernelbase"] as? String == "0xc9800000")
        #expect(json["userlimit"] as? String == "0xc9800000")
    }

    @Test("the table lists every region top down with base, size, end and human size")
    func table() throws {
        let text = try Layout.compute(model: .post12608, physmem: 4 * GiB).table()
        let lines = text.split(separator: "\n").map(String.init)
        let order = ["debugger", "kernel_data", "kernel_text", "misc", "heaptext", "heap_core", "heap ", "segmap",
                     "device", "segzio", "segkvmm", "segkp ", "valloc", "(unused)", "segkpm", "redzone"]
        var last = -1
        for name in order {
            let index = try #require(lines.firstIndex { $0.contains("| " + name) }, "\(name) missing")
            #expect(index > last, "\(name) out of order")
            last = index
        }
        let heap = try #require(lines.first { $0.contains("| heap ") })
        #expect(heap.contains("0xFFFFFE064BE00000") && heap.contains("0x1F974200000")
                && heap.contains("0xFFFFFFFFC0000000") && heap.contains("1.974 TiB"))
        let gap = try #require(lines.first { $0.contains("(unused)") })
        #expect(gap.contains("0xFF00000000") && gap.contains("1020 GiB"))
        #expect(text.contains("0xFFFFFC80.00000000 -|"))
        #expect(text.contains("_userlimit"))
        #expect(text.contains("check ok   heap-at-least-1.5x-physmem"))
    }

    @Test("the SVG labels every region with name, base and size and is well formed")
    func svg() throws {
        let layout = try Layout.compute(model: .post12608, physmem: 512 * GiB)
        let text = layout.svg()
        #expect(text.hasPrefix("<?xml"))
        #expect(text.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        for region in layout.regions {
            #expect(text.contains(">\(region.name.name)  size \(Hex.lower(region.size))"), "\(region.name)")
            #expect(text.contains("base \(Hex.padded(region.base, digits: 16).lowercased())"), "\(region.name)")
        }
        // Well formed enough for a browser: balanced text elements, one root, escaped text.
        #expect(text.components(separatedBy: "<text ").count == text.components(separatedBy: "</text>").count)
        #expect(text.components(separatedBy: "<svg ").count == 2 && text.hasSuffix("</svg>\n"))
        #expect(!text.contains("& "))
        #expect(Layout.xmlEscaped("a<b & \"c\"") == "a&lt;b &amp; &quot;c&quot;")
        // Heights are to scale: a larger region never gets a shorter band.
        #expect(Layout.svgHeight(2 << 40) > Layout.svgHeight(1 << 30))
        #expect(Layout.svgHeight(1 << 30) > Layout.svgHeight(0x15000))
    }

    @Test("human sizes")
    func human() {
        #expect(HumanSize.format(0x15000) == "84 KiB")
        #expect(HumanSize.format(0x377E_B000) == "887.918 MiB")
        #expect(HumanSize.format(0x3_E020_0000) == "15.502 GiB")
        #expect(HumanSize.format(512) == "512 B")
        #expect(HumanSize.format(1 << 40) == "1 TiB")
        #expect(HumanSize.format((1 << 30) - 1) == "1024 MiB")
        #expect(Hex.dotted(0xFFFF_FFFF_FB80_0000) == "0xFFFFFFFF.FB800000")
    }
}
