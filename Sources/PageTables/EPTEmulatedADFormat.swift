/// EPT leaves for processors without EPT accessed/dirty flags: FreeBSD's
/// `PMAP_EMULATE_AD_BITS` scheme.
///
/// The mapping's rights live in software bits the processor ignores — bit 52
/// ``valid`` (`EPT_PG_EMUL_V`: mapped, readable), bit 53 ``writable``
/// (`EPT_PG_EMUL_RW`) and, a VMKit addition, bit 54 ``executable`` — and the
/// hardware R/W/X bits stay clear until the first access, which is an EPT
/// violation. The nested-fault handler
/// (``NestedPageTable/handleFault(_:_:)``) then sets A (and D on a write) and
/// grants the hardware rights: R (and X if executable) once accessed, W once
/// dirty. So A and D are exact, like hardware A/D.
///
/// | bit | meaning |
/// |---|---|
/// | 0..2 | hardware R/W/X: R (X) granted when A is set, W when D is set |
/// | 3..7 | memory type, IPAT, large page (as ``EPTFormat``) |
/// | 8 | A, maintained by software (EPTP bit 6 is off) |
/// | 9 | D, maintained by software |
/// | 52 | valid: a mapping exists (readable) |
/// | 53 | writable |
/// | 54 | executable |
///
/// FreeBSD keeps A in the R bit and D in the W bit and leaves X set, so an
/// execute is never counted as an access there; VMKit keeps A/D in their
/// architectural places and X in bit 54 so that a protection reduction keeps
/// D and an execute sets A, giving the same A/D sets as hardware mode.
/// Execute-only and write-without-read mappings are refused (bit 52 means
/// readable).
public enum EPTEmulatedADFormat: NestedPTEFormat {
    public static let valid: UInt64 = 1 << 52
    public static let writable: UInt64 = 1 << 53
    public static let executable: UInt64 = 1 << 54
    static let hardwareRights: UInt64 = EPTFormat.read | EPTFormat.write | EPTFormat.execute

    public static var name: String { "EPT (A/D emulated)" }
    public static var emulatesAccessedDirty: Bool { true }
    @inlinable public static var accessedBit: UInt64 { EPTFormat.accessed }
    @inlinable public static var dirtyBit: UInt64 { EPTFormat.dirty }

    @inlinable
    public static func checkAddress(_ address: UInt64) throws(PageTableError) { try checkGuestPhysical(address) }

    /// Present to the software walker: any hardware right or the valid bit.
    @inlinable @inline(__always)
    public static func isPresent(_ e: UInt64) -> Bool { e & (EPTFormat.read | EPTFormat.write | EPTFormat.execute | valid) != 0 }

    @inlinable @inline(__always)
    public static func isLargePage(_ e: UInt64) -> Bool { e & EPTFormat.largePage != 0 }

    @inlinable @inline(__always)
    public static func tableEntry(_ physicalAddress: UInt64) -> UInt64 { EPTFormat.tableEntry(physicalAddress) }

    @inlinable
    public static func permits(_ e: UInt64, _ access: MemoryAccess) -> Bool { EPTFormat.permits(e, access) }

    public static func leafEntry(_ physicalAddress: UInt64, size: PageSize,
                                 attributes a: PageAttributes) throws(PageTableError) -> UInt64 {
        guard a.access.contains(.read) else {
            throw .attributesNotRepresentable(format: name, reason: "a mapping without read (\(a.access.rawValue)) under A/D emulation")
        }
        var plain = a
        plain.accessed = false
        plain.dirty = false
        // EPTFormat validates frame, size, user/global and cache type.
        var e = try EPTFormat.leafEntry(physicalAddress, size: size, attributes: plain) & ~hardwareRights
        e |= valid
        if a.access.contains(.write) { e |= writable }
        if a.access.contains(.execute) { e |= executable }
        if a.accessed {
            e |= EPTFormat.accessed | EPTFormat.read
            if a.access.contains(.execute) { e |= EPTFormat.execute }
            if a.dirty && a.access.contains(.write) { e |= EPTFormat.write }
        }
        if a.dirty { e |= EPTFormat.dirty }
        return e
    }

    /// The handler's update on the bits: A and hardware R (X when
    /// executable), and on a write D and hardware W — what ``leafEntry(_:size:attributes:)``
    /// writes for the same attributes with A (and D) set. Nil for a write to
    /// a leaf without the writable bit.
    @inlinable @inline(__always)
    public static func emulatedAccess(_ e: UInt64, _ access: MemoryAccess) -> UInt64? {
        var d = e | EPTFormat.accessed | EPTFormat.read
        if e & executable != 0 { d |= EPTFormat.execute }
        if access == .write {
            guard e & writable != 0 else { return nil }
            d |= EPTFormat.dirty | EPTFormat.write
        } else if e & EPTFormat.dirty != 0 && e & writable != 0 {
            d |= EPTFormat.write
        }
        return d
    }

    public static func attributes(_ e: UInt64, size: PageSize) -> PageAttributes {
        var a = EPTFormat.attributes(e, size: size)
        var access: PageAttributes.Access = []
        if e & valid != 0 { access.insert(.read) }
        if e & writable != 0 { access.insert(.write) }
        if e & executable != 0 { access.insert(.execute) }
        a.access = access
        return a
    }
}
