/// An entry format a ``NestedPageTable`` can use: a ``PTEFormat`` that also
/// says what the processor's nested walk allows and whether accessed/dirty
/// bits are set by the hardware or emulated by the fault handler.
///
/// Conformers: ``EPTFormat`` and ``RVIFormat`` (hardware A/D) and
/// ``EPTEmulatedADFormat`` (FreeBSD's A/D emulation for EPT without A/D).
public protocol NestedPTEFormat: PTEFormat {
    /// True when the hardware never sets A/D: leaves keep their hardware
    /// rights clear until the nested-fault handler grants them.
    static var emulatesAccessedDirty: Bool { get }
    /// Whether the processor's walk lets `access` through a present leaf
    /// (only hardware bits count; software bits are invisible to it).
    static func permits(_ entry: UInt64, _ access: MemoryAccess) -> Bool
    /// The leaf `entry` after the A/D emulation of `access` (A set, D on a
    /// write, the hardware rights granted), computed on the bits; nil when
    /// the format has no such shortcut (the handler then decodes and
    /// re-encodes the attributes).
    static func emulatedAccess(_ entry: UInt64, _ access: MemoryAccess) -> UInt64?
}

extension NestedPTEFormat {
    public static var emulatesAccessedDirty: Bool { false }
    @inlinable
    public static func emulatedAccess(_ entry: UInt64, _ access: MemoryAccess) -> UInt64? { nil }
}

extension EPTFormat: NestedPTEFormat {
    @inlinable
    public static func permits(_ e: UInt64, _ access: MemoryAccess) -> Bool {
        switch access {
        case .read: return e & read != 0
        case .write: return e & write != 0
        case .execute: return e & execute != 0
        }
    }
}

extension RVIFormat: NestedPTEFormat {
    /// An x86 entry: present means readable; W needs RW, X needs NX clear.
    @inlinable
    public static func permits(_ e: UInt64, _ access: MemoryAccess) -> Bool {
        guard e & X86PTEFormat.present != 0 else { return false }
        switch access {
        case .read: return true
        case .write: return e & X86PTEFormat.writable != 0
        case .execute: return e & X86PTEFormat.noExecute == 0
        }
    }
}
