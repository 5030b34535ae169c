import GuestMemory
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The guest memory `vmkit guest run` boots: libvmmapi's layout
/// (`GuestMemory.standard(size:lowmemLimit:backing:wired:nested:)`'s
/// sysmem, lowmem at 0 and highmem from 4 GiB) plus a 64 KiB boot ROM, a
/// devmem segment mapped read+execute just below 4 GiB where the reset
/// vector is. The guest space reaches at least 4 GiB so the ROM fits.
public enum KVMGuestMemory {
    /// The ROM: `[0xFFFF0000, 4 GiB)`.
    public static let romAddress: UInt64 = 0xFFFF_0000
    public static let romSize: UInt64 = 0x1_0000
    /// The ROM segment's id and devmem name.
    public static let romSegment = 1
    public static let romName = "bootrom"
    /// The ROM's first bytes; the rest is `hlt` (0xF4).
    public static let romSignature: [UInt8] = Array("VMKITROM".utf8)

    /// Creates the guest: `size` bytes of RAM (a non-zero multiple of
    /// 4 KiB) and the ROM, filled and marked dirty as the VMM's write.
    /// A size the host cannot reserve, or not page aligned, is refused.
    public static func make(size: UInt64) throws(KVMError) -> GuestMemory {
        guard size > 0, size % GuestMemory.pageSize == 0 else {
            throw .memory(.invalidSegmentLength(id: 0, length: size))
        }
        let lowmem = min(size, GuestMemory.defaultLowmemLimit)
        let highmem = size - lowmem
        let (top, o) = GuestMemory.highmemBase.addingReportingOverflow(highmem)
        guard !o, top <= GuestMemory.addressLimit else {
            throw .memory(.beyondGuestSpace(gpa: GuestMemory.highmemBase, length: highmem, limit: GuestMemory.addressLimit))
        }
        do throws(GuestMemoryError) {
            let memory = try GuestMemory(limit: top)
            let sysmem = highmem > 0 ? top : lowmem
            try memory.allocateSegment(id: 0, length: sysmem)
            try memory.map(gpa: 0, segment: 0, offset: 0, length: lowmem, protection: .all)
            if highmem > 0 {
                try memory.map(gpa: GuestMemory.highmemBase, segment: 0, offset: GuestMemory.highmemBase,
                               length: highmem, protection: .all)
            }
            let rom = try memory.allocateSegment(id: romSegment, length: romSize, name: romName)
            var image = [UInt8](repeating: 0xF4, count: Int(romSize))
            image.replaceSubrange(0..<romSignature.count, with: romSignature)
            // The ROM is read-only to the guest and to the VMM's view; the
            // VMM loads it through the segment's descriptor.
            let written = image.withUnsafeBytes { pwrite(rom.object.fd, $0.baseAddress, $0.count, 0) }
            guard written == Int(romSize) else {
                throw GuestMemoryError.host(.system(call: "pwrite", errno: errno, detail: "loading the boot ROM"))
            }
            try memory.map(gpa: romAddress, segment: romSegment, offset: 0, length: romSize,
                           protection: [.read, .execute])
            var ones = [UInt64](repeating: ~0, count: Int(romSize / GuestMemory.pageSize / 64))
            if ones.isEmpty { ones = [(1 << (romSize / GuestMemory.pageSize)) - 1] }
            ones.withUnsafeBufferPointer { _ = memory.markDirty(firstGuestPage: romAddress / GuestMemory.pageSize, words: $0) }
            return memory
        } catch {
            throw .memory(error)
        }
    }
    /// The RAM size of `memory` if its map is exactly the one
    /// ``make(size:)`` builds for that size (how a restored memory is
    /// recognised as a bootable guest); else the first difference.
    public static func ramSize(of memory: GuestMemory) throws(KVMError) -> UInt64 {
        let maps = memory.mappings.sorted { $0.gpa < $1.gpa }
        guard let low = maps.first, low.gpa == 0, low.segmentID == 0, low.offset == 0, low.protection == .all else {
            throw .notABootableGuest(detail: "no read-write-execute sysmem mapping at guest address 0")
        }
        var ram = low.length
        var expected = 2
        if let high = maps.first(where: { $0.gpa == GuestMemory.highmemBase }) {
            guard high.segmentID == 0, high.offset == GuestMemory.highmemBase, high.protection == .all,
                  low.length == GuestMemory.defaultLowmemLimit else {
                throw .notABootableGuest(detail: "highmem at 0x\(String(high.gpa, radix: 16)) is not libvmmapi's")
            }
            ram += high.length
            expected = 3
        }
        guard let rom = maps.first(where: { $0.gpa == romAddress }), rom.segmentID == romSegment,
              rom.length == romSize, rom.offset == 0, rom.protection == [.read, .execute],
              memory.segments.first(where: { $0.id == romSegment })?.name == romName else {
            throw .notABootableGuest(detail: "no \(romName) ROM of 64 KiB mapped read+execute at 0x\(String(romAddress, radix: 16))")
        }
        guard maps.count == expected, low.length == min(ram, GuestMemory.defaultLowmemLimit),
              memory.limit == GuestMemory.highmemBase + (ram - low.length) else {
            throw .notABootableGuest(detail: "\(maps.count) mappings, space 0x\(String(memory.limit, radix: 16)): "
                                     + "not the layout of a \(ram)-byte guest")
        }
        return ram
    }
}
