/// The named ranges of a layout, in the bottom-up order the JSON lists them.
public enum RegionName: String, CaseIterable, Sendable, Hashable {
    case redzone
    case segkpm
    case valloc
    case segkp
    case segkvmm
    case segzio
    case device
    case segmap
    case heap
    case heapCore = "heap_core"
    case heaptext
    case misc
    case kernelText = "kernel_text"
    case kernelData = "kernel_data"
    case debugger

    /// The name in JSON, tables and pictures.
    public var name: String { rawValue }

    /// What the kernel calls it, for the table's right-hand notes.
    public var kernelName: String {
        switch self {
        case .redzone: return "Red Zone (kernelbase)"
        case .segkpm: return "segkpm (kpm_vbase)"
        case .valloc: return "page_t, memsegs, page hash (valloc_base)"
        case .segkp: return "segkp (segkp_base)"
        case .segkvmm: return "segkvmm / kvmm_arena (segkvmm_base)"
        case .segzio: return "segzio / zfs_file_data (segzio_base)"
        case .device: return "device mappings (toxic_addr)"
        case .segmap: return "segmap (segmap_start)"
        case .heap: return "kernel heap / heap_arena (kernelheap)"
        case .heapCore: return "core heap (core_base, ekernelheap)"
        case .heaptext: return "module text / heaptext"
        case .misc: return "TSS, LDT, IDT, GDT, debug info (MISC_VA_BASE)"
        case .kernelText: return "kernel text (KERNEL_TEXT)"
        case .kernelData: return "kernel data"
        case .debugger: return "debugger (SEGDEBUGBASE)"
        }
    }
}

/// One range `[base, base + size)` of a layout.
public struct Region: Sendable, Hashable {
    public var name: RegionName
    public var base: UInt64
    public var size: UInt64
    /// The exclusive end, `base + size` (wrapping only in a layout whose
    /// `no-wrap` check fails).
    public var end: UInt64 { base &+ size }

    public init(_ name: RegionName, base: UInt64, size: UInt64) {
        self.name = name
        self.base = base
        self.size = size
    }

    /// Whether `address` lies in `[base, end)`.
    public func contains(_ address: UInt64) -> Bool { address >= base && address - base < size }
}

extension Layout {
    /// Calls `body` with each region, bottom up, without allocating.
    @inlinable
    public func forEachRegion(_ body: (Region) -> Void) {
        switch model {
        case .post12608, .pre12608:
            body(Region(.redzone, base: kernelbase, size: segkpmBase &- kernelbase))
            body(Region(.segkpm, base: segkpmBase, size: kpmSize))
            body(Region(.valloc, base: vallocBase, size: valloc.total))
            body(Region(.segkp, base: segkpBase, size: segkpSize))
            if model == .post12608 {
                body(Region(.segkvmm, base: segkvmmBase, size: segkvmmSize))
            }
            body(Region(.segzio, base: segzioBase, size: segzioSize))
            body(Region(.device, base: toxicAddr, size: toxicSize))
            body(Region(.segmap, base: segmapStart, size: segmapSize))
            body(Region(.heap, base: kernelheap, size: heapSize))
            body(Region(.heapCore, base: heapCoreBase, size: heapCoreSize))
            body(Region(.heaptext, base: heaptextBase, size: heaptextSize))
            body(Region(.misc, base: miscBase, size: miscSize))
            body(Region(.kernelText, base: AMD64.kernelText, size: AMD64.kernelTextSize))
            body(Region(.kernelData, base: AMD64.kernelData, size: AMD64.segDebugBase - AMD64.kernelData))
            body(Region(.debugger, base: AMD64.segDebugBase, size: AMD64.segDebugSize))
        case .i386:
            body(Region(.segmap, base: segmapStart, size: segmapSize))
            body(Region(.heap, base: kernelheap, size: heapSize))
            body(Region(.heaptext, base: heaptextBase, size: heaptextSize))
            body(Region(.valloc, base: vallocBase, size: valloc.total))
            body(Region(.misc, base: miscBase, size: miscSize))
            body(Region(.kernelText, base: I386.kernelText, size: I386.kernelTextSize))
            body(Region(.kernelData, base: I386.kernelData, size: I386.segDebugBase - I386.kernelData))
            body(Region(.debugger, base: I386.segDebugBase, size: I386.segDebugSize))
        }
    }

    /// The regions, bottom up (amd64: redzone … debugger; i386: segmap … debugger).
    public var regions: [Region] {
        var list: [Region] = []
        list.reserveCapacity(15)
        forEachRegion { list.append($0) }
        return list
    }

    /// The region called `name`, if this model has it.
    public func region(_ name: RegionName) -> Region? {
        var found: Region?
        forEachRegion { if $0.name == name { found = $0 } }
        return found
    }
}
