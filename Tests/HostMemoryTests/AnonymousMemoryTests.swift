import Testing
import HostTestSupport
#if canImport(Glibc)
import Glibc
#endif
import HostMemory

private typealias Kit = HostMemTestKit

/// Anonymous memory outside any reservation: zero-filled, writable, pages
/// given back read as zeros, and sizes and ranges it cannot take refused
/// with an error naming the value.
@Suite("AnonymousMemory: private zero-filled mappings")
struct AnonymousMemoryTests {
    @Test func isZeroFilledAndWritable() throws {
        try Kit.gated {
            let m = try AnonymousMemory(length: 3 * Kit.page)
            #expect(m.length == 3 * Kit.page)
            let address = UInt64(UInt(bitPattern: m.base))
            #expect(address % Kit.page == 0)
            #expect(ProcessMaps.perms(at: address).hasPrefix("rw-p"))
            let bytes = UnsafeMutableRawBufferPointer(start: m.base, count: Int(m.length))
            #expect(bytes.allSatisfy { $0 == 0 })
            let pattern = Kit.patternBytes(pages: 3, seed: 5)
            bytes.copyBytes(from: pattern)
            #expect(Array(bytes) == pattern)
        }
    }

    @Test func aLengthThatIsNoPageMultipleReachesTheEnd() throws {
        try Kit.gated {
            let m = try AnonymousMemory(length: 100)
            let bytes = UnsafeMutableRawBufferPointer(start: m.base, count: 100)
            #expect(bytes.allSatisfy { $0 == 0 })
            bytes[99] = 0xAB
            #expect(bytes[99] == 0xAB)
            // The whole (partial) mapping may be discarded: the range runs to the end.
            try m.discard(offset: 0, length: 100)
            #expect(bytes[99] == 0)
        }
    }

    @Test func discardGivesZerosBack() throws {
        try Kit.gated {
            let m = try AnonymousMemory(length: 4 * Kit.page)
            let bytes = UnsafeMutableRawBufferPointer(start: m.base, count: Int(m.length))
            let pattern = Kit.patternBytes(pages: 4, seed: 3)
            bytes.copyBytes(from: pattern)
            try m.discard(offset: Kit.page, length: 2 * Kit.page)
            let page = Int(Kit.page)
            #expect(Array(bytes[0 ..< page]) == Array(pattern[0 ..< page]))
            #expect(bytes[page ..< 3 * page].allSatisfy { $0 == 0 })
            #expect(Array(bytes[3 * page ..< 4 * page]) == Array(pattern[3 * page ..< 4 * page]))
            // Still writable after the discard.
            bytes[page + 1] = 9
            #expect(bytes[page + 1] == 9)
        }
    }

    @Test func badLengthsAreRefusedNamingTheValue() {
        Kit.gated {
            #expect(throws: HostMemoryError.invalidArgument(name: "length", value: 0, reason: "anonymous memory of no bytes")) {
                _ = try AnonymousMemory(length: 0)
            }
            #expect(throws: HostMemoryError.invalidArgument(name: "length", value: .max,
                                                            reason: "more bytes than an address space holds")) {
                _ = try AnonymousMemory(length: .max)
            }
            // Representable but more than the host gives: the system call's refusal, with its errno.
            do throws(HostMemoryError) {
                _ = try AnonymousMemory(length: 1 << 62)
                Issue.record("2^62 bytes were mapped")
            } catch {
                guard case let .system(call, e, detail) = error else { Issue.record("\(error)"); return }
                #expect(call == "mmap" && e == ENOMEM)
                #expect(detail.contains("\(UInt64(1) << 62)"))
                #expect(error.errnoValue == ENOMEM)
            }
        }
    }

    @Test func badDiscardRangesAreRefusedNamingTheValue() throws {
        try Kit.gated {
            let m = try AnonymousMemory(length: 2 * Kit.page)
            #expect(throws: HostMemoryError.zeroLength(address: Kit.page)) { try m.discard(offset: Kit.page, length: 0) }
            #expect(throws: HostMemoryError.notAligned(what: "offset", value: 100, alignment: Kit.page)) {
                try m.discard(offset: 100, length: Kit.page)
            }
            #expect(throws: HostMemoryError.rangeWraps(address: Kit.page, length: .max)) {
                try m.discard(offset: Kit.page, length: .max)
            }
            #expect(throws: HostMemoryError.outsideWindow(address: Kit.page, length: 2 * Kit.page,
                                                          windowBase: 0, windowSize: 2 * Kit.page)) {
                try m.discard(offset: Kit.page, length: 2 * Kit.page)
            }
            // Part of a page in the middle: the host would take the rest of the page too.
            #expect(throws: HostMemoryError.notAligned(what: "length", value: 100, alignment: Kit.page)) {
                try m.discard(offset: 0, length: 100)
            }
            // A refused discard touched nothing.
            m.base.storeBytes(of: 7, as: UInt8.self)
            #expect(throws: HostMemoryError.self) { try m.discard(offset: 0, length: 100) }
            #expect(m.base.load(as: UInt8.self) == 7)
            #expect(HostMemoryError.zeroLength(address: 0).errnoValue == EINVAL)
        }
    }
}
