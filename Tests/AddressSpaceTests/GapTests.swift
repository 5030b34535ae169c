import Testing
import AddressSpace

@Suite("as_gap")
struct GapTests {
    let u: UInt64 = 0x1000_0000

    /// Segments at [u+0x10000, +0x10000) and [u+0x40000, +0x10000).
    func twoSegments() throws -> AddressSpace {
        let a = AddressSpace(name: "p", kind: .user(limit: 1 << 47), hat: try PageTableHAT(),
                             virtualHole: AddressSpace.amd64Hole)
        try a.map(address: u + 0x10000, size: 0x10000) { _ in .created(ScriptedDriver()) }
        try a.map(address: u + 0x40000, size: 0x10000) { _ in .created(ScriptedDriver()) }
        return a
    }

    @Test func lowAndHighHoles() throws {
        let a = try twoSegments()
        // Lowest hole that fits, clipped to the range.
        var g = try a.gap(minimumLength: 0x1000, base: u, length: 0x100000)
        #expect(g.base == u && g.length == 0x10000)
        g = try a.gap(minimumLength: 0x20000, base: u, length: 0x100000)
        #expect(g.base == u + 0x20000 && g.length == 0x20000)
        g = try a.gap(minimumLength: 0x20001, base: u, length: 0x100000)
        #expect(g.base == u + 0x50000 && g.length == 0xB0000)
        // Highest hole.
        g = try a.gap(minimumLength: 0x1000, base: u, length: 0x100000, direction: .high)
        #expect(g.base == u + 0x50000 && g.length == 0xB0000)
        // Holes that contain an address.
        g = try a.gap(minimumLength: 0x1000, base: u, length: 0x100000, containing: u + 0x30000)
        #expect(g.base == u + 0x20000 && g.length == 0x20000)
        #expect(throws: AddressSpaceError.noGap(minimumLength: 0x1000, base: u, length: 0x100000)) {
            try a.gap(minimumLength: 0x1000, base: u, length: 0x100000, containing: u + 0x18000)
        }
        #expect(throws: AddressSpaceError.noGap(minimumLength: 0x30000, base: u + 0x10000, length: 0x40000)) {
            try a.gap(minimumLength: 0x30000, base: u + 0x10000, length: 0x40000)
        }
        #expect(throws: AddressSpaceError.rangeWraps(address: UInt64.max, size: 2)) {
            try a.gap(minimumLength: 1, base: UInt64.max, length: 2)
        }
    }

    @Test func lastGapSteersLaterDownwardSearches() throws {
        let a = try twoSegments()
        // A high search whose hole lies below the second segment records it.
        let g = try a.gap(minimumLength: 0x1000, base: u, length: 0x40000, direction: .high)
        #expect(g.base == u + 0x20000 && g.length == 0x20000)
        let second = try #require(a.segat(u + 0x40000))
        #expect(a.lastGap === second)
        // A request at least as large as that segment starts below it, so
        // the (larger) hole above it is not considered.
        let h = try a.gap(minimumLength: 0x10000, base: u, length: 0x100000, direction: .high)
        #expect(h.base == u + 0x20000 && h.length == 0x20000)
        // A smaller request does not take the shortcut.
        let i = try a.gap(minimumLength: 0x1000, base: u, length: 0x100000, direction: .high)
        #expect(i.base == u + 0x50000)
    }

    @Test func emptyAddressSpaceAndTheVAHole() throws {
        let k = try makeKAS()
        var g = try k.gap(minimumLength: 0x1000, base: 0x1000, length: 0x10000, containing: 0x50_0000)
        #expect(g.base == 0x1000 && g.length == 0x10000)    // illumos skips AH_CONTAIN here
        g = try k.gap(minimumLength: 0x1000, base: 0x7FFF_FFFF_0000, length: 0xFFFF_0000_0002_0000, direction: .high)
        #expect(g.base == 0xFFFF_8000_0000_0000)
        try k.attach(base: 0xFFFF_8000_0000_0000, size: 0x1000, driver: ScriptedDriver())
        g = try k.gap(minimumLength: 0x1000, base: 0x7FFF_FFFF_0000, length: 0xFFFF_0000_0004_0000)
        #expect(g.base == 0x7FFF_FFFF_0000 && g.length == 0x1_0000)
        g = try k.gap(minimumLength: 0x2_0000, base: 0x7FFF_FFFF_0000, length: 0xFFFF_0000_0004_0000)
        #expect(g.base == 0xFFFF_8000_0000_1000)
    }
}
