import Testing
import PageTables

@Suite("Entry formats: x86-64, RVI, EPT bit encodings")
struct EntryFormatTests {
    @Test func x86LeafBitsAreTheArchitecturalOnes() throws {
        #expect(X86PTEFormat.present == 0x1 && X86PTEFormat.writable == 0x2 && X86PTEFormat.user == 0x4)
        #expect(X86PTEFormat.writeThrough == 0x8 && X86PTEFormat.cacheDisable == 0x10)
        #expect(X86PTEFormat.accessed == 0x20 && X86PTEFormat.dirty == 0x40 && X86PTEFormat.pageSize == 0x80)
        #expect(X86PTEFormat.global == 0x100 && X86PTEFormat.noExecute == 1 << 63)
        let pa: UInt64 = 0x1234_5000
        #expect(try X86PTEFormat.leafEntry(pa, size: .size4K, attributes: .kernelData) == 0x8000_0000_1234_5003)
        #expect(try X86PTEFormat.leafEntry(pa, size: .size4K, attributes: .userData) == 0x8000_0000_1234_5007)
        #expect(try X86PTEFormat.leafEntry(pa, size: .size4K, attributes: .kernelText) == 0x0000_0000_1234_5001)
        let all = PageAttributes(access: .all, user: true, global: true, cache: .uncacheable, accessed: true, dirty: true)
        #expect(try X86PTEFormat.leafEntry(pa, size: .size4K, attributes: all) == 0x1234_517F)
        #expect(try X86PTEFormat.leafEntry(0x4020_0000, size: .size2M, attributes: .kernelText) == 0x4020_0081)
        #expect(try X86PTEFormat.leafEntry(0x4000_0000, size: .size1G, attributes: .kernelText) == 0x4000_0081)
        #expect(X86PTEFormat.tableEntry(0x7000) == 0x7007)
        let wt = PageAttributes(access: .read, cache: .writeThrough)
        let ucm = PageAttributes(access: .read, cache: .uncacheableMinus)
        #expect(try X86PTEFormat.leafEntry(pa, size: .size4K, attributes: wt) == 0x8000_0000_1234_5009)
        #expect(try X86PTEFormat.leafEntry(pa, size: .size4K, attributes: ucm) == 0x8000_0000_1234_5011)
        // The frame field is bits 12..51.
        #expect(try X86PTEFormat.leafEntry(0x000F_FFFF_FFFF_F000, size: .size4K, attributes: .kernelText) == 0x000F_FFFF_FFFF_F001)
    }

    @Test func x86DecodingRoundTrips() throws {
        for attrs in [PageAttributes.kernelData, .kernelText, .userData,
                      PageAttributes(access: .read, global: true, cache: .uncacheable, accessed: true, dirty: true),
                      PageAttributes(access: .all, cache: .writeThrough)] {
            for size in PageSize.allCases {
                let e = try X86PTEFormat.leafEntry(0x4000_0000, size: size, attributes: attrs)
                #expect(X86PTEFormat.attributes(e, size: size) == attrs)
                #expect(X86PTEFormat.leafAddress(e, size: size) == 0x4000_0000)
                #expect(X86PTEFormat.isLargePage(e) == (size != .size4K))
            }
        }
        // Bit 12 of a large leaf is PAT, not part of the frame.
        #expect(X86PTEFormat.leafAddress(0x4020_1081, size: .size2M) == 0x4020_0000)
    }

    @Test func x86RefusesWhatItCannotSay() {
        #expect(throws: PageTableError.attributesNotRepresentable(format: "x86-64", reason: "a present page that is not readable (-w-)")) {
            try X86PTEFormat.leafEntry(0x1000, size: .size4K, attributes: PageAttributes(access: .write))
        }
        #expect(throws: PageTableError.attributesNotRepresentable(format: "x86-64", reason: "writeCombining without a PAT entry")) {
            try X86PTEFormat.leafEntry(0x1000, size: .size4K, attributes: PageAttributes(cache: .writeCombining))
        }
        #expect(throws: PageTableError.misalignedPhysicalAddress(0x1000, size: .size2M)) {
            try X86PTEFormat.leafEntry(0x1000, size: .size2M, attributes: .kernelData)
        }
        #expect(throws: PageTableError.physicalAddressOutOfRange(1 << 52)) {
            try X86PTEFormat.leafEntry(1 << 52, size: .size4K, attributes: .kernelData)
        }
        #expect(throws: PageTableError.nonCanonicalAddress(0x0000_8000_0000_0000)) {
            try X86PTEFormat.checkAddress(0x0000_8000_0000_0000)
        }
        #expect(throws: PageTableError.nonCanonicalAddress(0xFFFF_7FFF_FFFF_F000)) {
            try X86PTEFormat.checkAddress(0xFFFF_7FFF_FFFF_F000)
        }
    }

    @Test func eptBitsAreTheArchitecturalOnes() throws {
        #expect(EPTFormat.read == 1 && EPTFormat.write == 2 && EPTFormat.execute == 4)
        #expect(EPTFormat.memoryTypeMask == 0x38 && EPTFormat.ignorePAT == 0x40 && EPTFormat.largePage == 0x80)
        #expect(EPTFormat.accessed == 0x100 && EPTFormat.dirty == 0x200)
        #expect(EPTFormat.MemoryType.uncacheable.rawValue == 0 && EPTFormat.MemoryType.writeCombining.rawValue == 1)
        #expect(EPTFormat.MemoryType.writeThrough.rawValue == 4 && EPTFormat.MemoryType.writeProtected.rawValue == 5)
        #expect(EPTFormat.MemoryType.writeBack.rawValue == 6)
        let pa: UInt64 = 0x1234_5000
        #expect(try EPTFormat.leafEntry(pa, size: .size4K, attributes: PageAttributes(access: .all)) == 0x1234_5037)
        #expect(try EPTFormat.leafEntry(pa, size: .size4K, attributes: PageAttributes(access: .read, cache: .uncacheable)) == 0x1234_5001)
        #expect(try EPTFormat.leafEntry(pa, size: .size4K,
                                        attributes: PageAttributes(access: .readWrite, ignoreGuestPAT: true)) == 0x1234_5073)
        #expect(try EPTFormat.leafEntry(pa, size: .size4K,
                                        attributes: PageAttributes(access: .execute, cache: .writeCombining)) == 0x1234_500C)
        #expect(try EPTFormat.leafEntry(0x20_0000, size: .size2M,
                                        attributes: PageAttributes(access: .read, accessed: true, dirty: true)) == 0x20_03B1)
        #expect(try EPTFormat.leafEntry(0x4000_0000, size: .size1G,
                                        attributes: PageAttributes(access: .readWrite, cache: .writeProtected)) == 0x4000_00AB)
        #expect(EPTFormat.tableEntry(0x9000) == 0x9007)
        // Execute-only is present (any of R/W/X).
        #expect(EPTFormat.isPresent(0x1234_5004))
        #expect(!EPTFormat.isPresent(0x1234_5030))
    }

    @Test func eptDecodingRoundTripsAndRefusals() throws {
        for attrs in [PageAttributes(access: .all), PageAttributes(access: .read, cache: .uncacheable),
                      PageAttributes(access: [.read, .execute], cache: .writeThrough, accessed: true),
                      PageAttributes(access: .readWrite, cache: .writeProtected, dirty: true, ignoreGuestPAT: true),
                      PageAttributes(access: .execute, cache: .writeCombining)] {
            for size in PageSize.allCases {
                let e = try EPTFormat.leafEntry(0x4000_0000, size: size, attributes: attrs)
                #expect(EPTFormat.attributes(e, size: size) == attrs)
            }
        }
        #expect(throws: PageTableError.attributesNotRepresentable(format: "EPT", reason: "write without read (EPT misconfiguration)")) {
            try EPTFormat.leafEntry(0x1000, size: .size4K, attributes: PageAttributes(access: .write))
        }
        #expect(throws: PageTableError.attributesNotRepresentable(format: "EPT", reason: "a mapping with no access (it would be absent)")) {
            try EPTFormat.leafEntry(0x1000, size: .size4K, attributes: PageAttributes(access: []))
        }
        #expect(throws: PageTableError.attributesNotRepresentable(format: "EPT", reason: "user or global bits, which EPT lacks")) {
            try EPTFormat.leafEntry(0x1000, size: .size4K, attributes: .userData)
        }
        #expect(throws: PageTableError.attributesNotRepresentable(format: "EPT", reason: "UC-, which is a PAT type")) {
            try EPTFormat.leafEntry(0x1000, size: .size4K, attributes: PageAttributes(cache: .uncacheableMinus))
        }
        #expect(throws: PageTableError.addressOutOfRange(1 << 48, limit: 1 << 48)) { try EPTFormat.checkAddress(1 << 48) }
    }

    @Test func eptPointerEncodesTypeLevelsAndAccessedDirty() throws {
        #expect(try EPTFormat.eptPointer(root: 0x5000, accessedDirtyEnabled: true) == 0x505E)
        #expect(try EPTFormat.eptPointer(root: 0x5000, memoryType: .uncacheable, accessedDirtyEnabled: false) == 0x5018)
        #expect(throws: PageTableError.misalignedPhysicalAddress(0x5010, size: .size4K)) {
            try EPTFormat.eptPointer(root: 0x5010, accessedDirtyEnabled: false)
        }
    }

    @Test func rviIsX86WithUserAlwaysSet() throws {
        #expect(try RVIFormat.leafEntry(0x1234_5000, size: .size4K, attributes: .kernelData) == 0x8000_0000_1234_5007)
        #expect(try RVIFormat.leafEntry(0x20_0000, size: .size2M, attributes: .kernelText) == 0x20_0085)
        #expect(throws: PageTableError.attributesNotRepresentable(format: "RVI", reason: "a global nested mapping")) {
            try RVIFormat.leafEntry(0x1000, size: .size4K, attributes: PageAttributes(global: true))
        }
        #expect(throws: PageTableError.addressOutOfRange(0xFFFF_8000_0000_0000, limit: 1 << 48)) {
            try RVIFormat.checkAddress(0xFFFF_8000_0000_0000)
        }
    }

    @Test func geometry() {
        #expect(PageSize.size4K.bytes == 4096 && PageSize.size2M.bytes == 2 << 20 && PageSize.size1G.bytes == 1 << 30)
        #expect(PageTableGeometry.index(0xFFFF_FE00_0000_0000, level: 4) == 508)
        #expect(PageTableGeometry.index(0x0000_0000_4020_1000, level: 1) == 1)
        #expect(PageTableGeometry.index(0x0000_0000_4020_1000, level: 2) == 1)
        #expect(PageTableGeometry.index(0x0000_0000_4020_1000, level: 3) == 1)
        #expect(PageTableGeometry.frameMask == 0x000F_FFFF_FFFF_F000)
    }
}
