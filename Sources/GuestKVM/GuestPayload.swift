/// The tiny guest programs `vmkit guest run` can load, assembled here as
/// bytes (no assembler at build time). Every payload's code lives at
/// ``codeAddress`` (guest page 1); the long-mode ones find their page tables
/// at ``tableBase`` and up, and `pattern`/`checksum` work on
/// `[dataBase, dataBase + touch)`, above the payload's own pages.
public enum GuestPayload: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// Real mode (guest-memory.md §5.2): `mov al,0x42; mov [0x2000],al;
    /// mov byte [0x5000],0x99; out 0x10,al; hlt`.
    case realmode
    /// Long mode, page tables built with `PageTables` (1 GiB pages where
    /// CPUID offers them): writes 0x42 at 0x2000 and the quadword 0x99 at
    /// 0x5000, `out 0x10,al` with 0x42, `hlt`.
    case longmode
    /// Long mode: reads the boot ROM's first byte and reports it on port
    /// 0x10, writes 0x77 to the ROM (an MMIO exit; the ROM keeps its byte),
    /// reads the unmapped ``unmappedProbe`` (an MMIO exit, all ones) and
    /// reports what it got on port 0x11, `hlt`.
    case romWrite = "rom-write"
    /// Long mode: stores `address ^ seed` at every `stride` bytes of the
    /// touched range, then sums the low 32 bits of those words and reports
    /// the sum with `out 0x30,eax`.
    case pattern
    /// Long mode: the sum of `pattern`, without writing.
    case checksum

    public var description: String { rawValue }

    /// Where every payload's code is loaded: guest page 1.
    public static let codeAddress: UInt64 = 0x1000
    /// The long-mode page tables: PML4 at 0x9000, PDPT at 0xA000, page
    /// directories after (2 MiB pages only, one a GiB), up to 0x1FFFF.
    public static let tableBase: UInt64 = 0x9000
    public static let tableLimit: UInt64 = 0x20000
    /// `pattern` and `checksum` cover `[dataBase, dataBase + touch)`: 1 MiB,
    /// above the code and tables.
    public static let dataBase: UInt64 = 0x10_0000
    /// The word stride of `pattern` and `checksum`: one 8-byte word per 64
    /// bytes (a cache line), so every page is written and read while the
    /// loop stays short under nested KVM.
    public static let stride: UInt64 = 64
    /// The seed mixed into `pattern`'s words.
    public static let seed: UInt64 = 0x5A5A_0000_C3C3_0000
    /// A guest-physical address no mapping covers (the 32-bit PCI hole).
    public static let unmappedProbe: UInt64 = 0xD000_0000
    /// The value `rom-write` tries to store into the ROM.
    public static let romWriteValue: UInt8 = 0x77

    /// Whether the payload runs in long mode (and needs page tables).
    public var isLongMode: Bool { self != .realmode }

    /// Whether the payload works on a `--touch` range.
    public var usesTouch: Bool { self == .pattern || self == .checksum }

    /// The 32-bit sum `pattern` writes and `checksum` reports for
    /// `[base, base + length)`, computed on the host.
    public static func expectedPatternSum(base: UInt64 = dataBase, length: UInt64) -> UInt32 {
        var sum: UInt32 = 0
        var a = base
        while a < base + length {
            sum &+= UInt32(truncatingIfNeeded: a ^ seed)
            a += stride
        }
        return sum
    }

    /// The code bytes.
    var code: [UInt8] {
        switch self {
        case .realmode:
            return [0xB0, 0x42,                 // mov al, 0x42
                    0xA2, 0x00, 0x20,           // mov [0x2000], al
                    0xC6, 0x06, 0x00, 0x50, 0x99, // mov byte [0x5000], 0x99
                    0xE6, 0x10,                 // out 0x10, al
                    0xF4]                       // hlt
        case .longmode:
            return [0xC6, 0x04, 0x25, 0x00, 0x20, 0x00, 0x00, 0x42, // mov byte [0x2000], 0x42
                    0xB8, 0x99, 0x00, 0x00, 0x00,                   // mov eax, 0x99
                    0x48, 0x89, 0x04, 0x25, 0x00, 0x50, 0x00, 0x00, // mov [0x5000], rax
                    0xB0, 0x42,                                     // mov al, 0x42
                    0xE6, 0x10,                                     // out 0x10, al
                    0xF4]                                           // hlt
        case .romWrite:
            return [0x48, 0xBB] + le(KVMGuestMemory.romAddress)    // mov rbx, ROM
                + [0x8A, 0x03,                                      // mov al, [rbx]
                   0xE6, 0x10,                                      // out 0x10, al
                   0xC6, 0x03, Self.romWriteValue]                  // mov byte [rbx], 0x77
                + [0x48, 0xBB] + le(Self.unmappedProbe)             // mov rbx, probe
                + [0x8A, 0x03,                                      // mov al, [rbx]
                   0xE6, 0x11,                                      // out 0x11, al
                   0xF4]                                            // hlt
        case .pattern:
            // rdi = base, rsi = end, rdx = stride, r8 = seed, r9 = base.
            let fill: [UInt8] = [0x48, 0x89, 0xF8,      // mov rax, rdi
                                 0x4C, 0x31, 0xC0,      // xor rax, r8
                                 0x48, 0x89, 0x07,      // mov [rdi], rax
                                 0x48, 0x01, 0xD7,      // add rdi, rdx
                                 0x48, 0x39, 0xF7]      // cmp rdi, rsi
            return fill + [0x72, UInt8(bitPattern: Int8(-(fill.count + 2)))] // jb fill
                + [0x4C, 0x89, 0xCF]                    // mov rdi, r9
                + Self.checksum.code
        case .checksum:
            let sum: [UInt8] = [0x03, 0x07,             // add eax, [rdi]
                                0x48, 0x01, 0xD7,       // add rdi, rdx
                                0x48, 0x39, 0xF7]       // cmp rdi, rsi
            return [0x31, 0xC0]                          // xor eax, eax
                + sum + [0x72, UInt8(bitPattern: Int8(-(sum.count + 2)))] // jb sum
                + [0xE7, 0x30,                           // out 0x30, eax
                   0xF4]                                 // hlt
        }
    }

    private func le(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
}
