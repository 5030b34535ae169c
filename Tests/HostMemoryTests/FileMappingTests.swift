import Testing
import HostTestSupport
#if canImport(Glibc)
import Glibc
#endif
import HostMemory

private typealias Kit = HostMemTestKit

/// Shared mappings of a descriptor: a read-only one sees the file's bytes
/// and offers no writable pointer, a read-write one writes through to the
/// file, and lengths the file cannot back are refused before `mmap`.
@Suite("FileMapping: shared mappings of a descriptor")
struct FileMappingTests {
    @Test func aReadOnlyMappingSeesTheFilesBytes() throws {
        try Kit.gated {
            let pattern = Kit.patternBytes(pages: 2, seed: 11) + [1, 2, 3]
            let path = Kit.temporaryFile(pattern, tag: "fm-ro")
            defer { unlink(path) }
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            try #require(fd >= 0)
            defer { close(fd) }
            let m = try FileMapping(fd: fd, length: UInt64(pattern.count), access: .readOnly)
            #expect(m.access == .readOnly && m.length == UInt64(pattern.count))
            #expect(m.writableBase == nil)
            #expect(Array(UnsafeRawBufferPointer(start: m.base, count: pattern.count)) == pattern)
            #expect(ProcessMaps.perms(at: UInt64(UInt(bitPattern: m.base))).hasPrefix("r--s"))
            // A write mapping of a read-only descriptor is the kernel's refusal, with its errno.
            do throws(HostMemoryError) {
                _ = try FileMapping(fd: fd, length: 4096, access: .readWrite)
                Issue.record("a read-only descriptor was mapped for writing")
            } catch {
                guard case let .system(call, e, _) = error else { Issue.record("\(error)"); return }
                #expect(call == "mmap" && e == EACCES)
            }
        }
    }

    @Test func aMappingAtAnOffsetSeesThoseBytes() throws {
        try Kit.gated {
            let pattern = Kit.patternBytes(pages: 3, seed: 17)
            let path = Kit.temporaryFile(pattern, tag: "fm-off")
            defer { unlink(path) }
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            try #require(fd >= 0)
            defer { close(fd) }
            let m = try FileMapping(fd: fd, length: 8192, offset: 4096, access: .readOnly)
            #expect(m.offset == 4096)
            #expect(Array(UnsafeRawBufferPointer(start: m.base, count: 8192)) == Array(pattern[4096..<12288]))
            #expect(throws: HostMemoryError.notAligned(what: "file offset", value: 100, alignment: HostReservation.pageSize)) {
                _ = try FileMapping(fd: fd, length: 4096, offset: 100, access: .readOnly)
            }
            // The file ends before offset + length: refused, naming both.
            #expect(throws: HostMemoryError.objectTooShort(object: "fd \(fd)", objectSize: 12288, offset: 8192, length: 8192)) {
                _ = try FileMapping(fd: fd, length: 8192, offset: 8192, access: .readOnly)
            }
        }
    }

    @Test func aReadWriteMappingWritesThroughToTheFile() throws {
        try Kit.gated {
            let path = Kit.temporaryFile([UInt8](repeating: 0, count: 2 * Int(Kit.page)), tag: "fm-rw")
            defer { unlink(path) }
            let fd = open(path, O_RDWR | O_CLOEXEC)
            try #require(fd >= 0)
            defer { close(fd) }
            let pattern = Kit.patternBytes(pages: 2, seed: 17)
            do {
                let m = try FileMapping(fd: fd, length: 2 * Kit.page, access: .readWrite)
                let w = try #require(m.writableBase)
                #expect(UnsafeRawPointer(w) == m.base)
                UnsafeMutableRawBufferPointer(start: w, count: pattern.count).copyBytes(from: pattern)
                // Shared: the descriptor sees the write at once, through the page cache.
                var back = [UInt8](repeating: 0, count: 16)
                #expect(back.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 16, off_t(Kit.page)) } == 16)
                #expect(back == Array(pattern[Int(Kit.page) ..< Int(Kit.page) + 16]))
            }
            // And the file keeps it once the mapping is gone.
            let again = open(path, O_RDONLY | O_CLOEXEC)
            try #require(again >= 0)
            defer { close(again) }
            var all = [UInt8](repeating: 0, count: pattern.count)
            #expect(all.withUnsafeMutableBytes { pread(again, $0.baseAddress, pattern.count, 0) } == pattern.count)
            #expect(all == pattern)
        }
    }

    @Test func aMemfdMappingSharesTheObjectsBytes() throws {
        try Kit.gated {
            let object = try MemoryObject.memfd(name: "vmk-filemapping", size: Kit.page)
            let m = try FileMapping(fd: object.fd, length: Kit.page, access: .readWrite)
            m.writableBase!.storeBytes(of: 0x5A, toByteOffset: 123, as: UInt8.self)
            #expect(try object.read(offset: 123, count: 1) == [0x5A])
        }
    }

    @Test func badLengthsAndDescriptorsAreRefusedNamingTheValue() throws {
        try Kit.gated {
            let path = Kit.temporaryFile([UInt8](repeating: 1, count: 100), tag: "fm-bad")
            defer { unlink(path) }
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            try #require(fd >= 0)
            defer { close(fd) }
            #expect(throws: HostMemoryError.invalidArgument(name: "length", value: 0, reason: "a mapping of no bytes")) {
                _ = try FileMapping(fd: fd, length: 0, access: .readOnly)
            }
            #expect(throws: HostMemoryError.invalidArgument(name: "length", value: .max,
                                                            reason: "more bytes than an address space holds")) {
                _ = try FileMapping(fd: fd, length: .max, access: .readOnly)
            }
            // Past the end of the file: a touch there would be SIGBUS, so no mapping is made.
            #expect(throws: HostMemoryError.objectTooShort(object: "fd \(fd)", objectSize: 100, offset: 0, length: 101)) {
                _ = try FileMapping(fd: fd, length: 101, access: .readOnly)
            }
            #expect(throws: HostMemoryError.system(call: "fstat", errno: EBADF, detail: "of fd -1")) {
                _ = try FileMapping(fd: -1, length: 4096, access: .readOnly)
            }
        }
    }
}
