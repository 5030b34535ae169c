import Testing
import HostTestSupport
#if canImport(Glibc)
import Glibc
#endif
import HostMemory

private typealias Kit = HostMemTestKit

/// Memory objects: a memfd that grows and shrinks, seals that take rights
/// away (a write seal makes a shared writable mapping a typed refusal), exec
/// refused for a memfd made without it, a file opened read-only that
/// refuses a shared write but allows a private one, and ranges past an
/// object's end.
@Suite("MemoryObject: memfds, files, seals and rights")
struct MemoryObjectTests {
    @Test func memfdResizesAndKeepsItsBytes() throws {
        try Kit.gated {
            let m = try MemoryObject.memfd(name: "vmk-resize", size: 0)
            #expect(m.kind == .memfd)
            #expect(m.name == "memfd \"vmk-resize\"")
            #expect(m.fd >= 0 && m.writable)
            #expect(m.size == 0)
            try m.resize(to: 3 * Kit.page)
            #expect(m.size == 3 * Kit.page)
            var st = stat()
            #expect(fstat(m.fd, &st) == 0)
            #expect(UInt64(st.st_size) == 3 * Kit.page)
            let bytes = Kit.patternBytes(pages: 1, seed: 9)
            try m.write(bytes, offset: Kit.page)
            #expect(try m.read(offset: Kit.page, count: bytes.count) == bytes)
            #expect(try m.read(offset: 0, count: 16) == [UInt8](repeating: 0, count: 16))
            // Shrinking drops the tail: reads there come back short.
            try m.resize(to: Kit.page + 100)
            #expect(m.size == Kit.page + 100)
            #expect(try m.read(offset: Kit.page, count: 4096) == Array(bytes[0..<100]))
            // A write past the end grows the object.
            try m.write([1, 2, 3], offset: 5 * Kit.page)
            #expect(m.size == 5 * Kit.page + 3)
            #expect(throws: HostMemoryError.invalidArgument(name: "size", value: UInt64.max,
                                                            reason: "larger than a file can be")) {
                try m.resize(to: UInt64.max)
            }
            // A mapping sees what was written through the descriptor, and the other way round.
            let r = try HostReservation(size: 2 << 20)
            defer { r.destroy() }
            try m.resize(to: 2 * Kit.page)
            try m.write(bytes, offset: 0)
            try r.map(m, offset: 0, at: r.base, length: 2 * Kit.page, protection: .readWrite, shared: true)
            #expect(Kit.bytes(at: r.base, count: 4096) == bytes)
            r.pointer(r.base + Kit.page + 7).storeBytes(of: 0x77, as: UInt8.self)
            #expect(try m.read(offset: Kit.page + 7, count: 1) == [0x77])
        }
    }

    @Test func writeSealRefusesASharedWritableMapping() throws {
        try Kit.gated {
            let m = try MemoryObject.memfd(name: "vmk-seal", size: 2 * Kit.page, sealable: true)
            let r = try HostReservation(size: 2 << 20)
            defer { r.destroy() }
            try m.write(Kit.patternBytes(pages: 2, seed: 3), offset: 0)
            #expect(m.allowedProtection(shared: true).contains(.write))
            // While a shared writable mapping exists the kernel refuses the seal.
            try r.map(m, offset: 0, at: r.base, length: 2 * Kit.page, protection: .readWrite, shared: true)
            do {
                try m.seal([.write])
                Issue.record("F_SEAL_WRITE must be refused while a shared writable mapping exists")
            } catch let error as HostMemoryError {
                guard case .system(let call, let e, _) = error else { Issue.record("\(error)"); return }
                #expect(call == "fcntl(F_ADD_SEALS)")
                #expect(e == EBUSY)
            }
            try r.release(at: r.base, length: 2 * Kit.page)
            try m.seal([.write, .shrink, .grow])
            let seals = try m.seals()
            #expect(seals.isSuperset(of: [.write, .shrink, .grow]))
            #expect(!m.allowedProtection(shared: true).contains(.write))
            #expect(m.allowedProtection(shared: false).contains(.write))

            let allowed = m.allowedProtection(shared: true)
            #expect(throws: HostMemoryError.protectionExceedsObject(requested: .readWrite, allowed: allowed, object: m.name)) {
                try r.map(m, offset: 0, at: r.base, length: Kit.page, protection: .readWrite, shared: true)
            }
            #expect(ProcessMaps.perms(at: r.base) == "---p", "a refused map leaves the window alone")
            // Read-only shared and private writable mappings still work; the
            // private write stays private.
            try r.map(m, offset: 0, at: r.base, length: Kit.page, protection: .read, shared: true)
            #expect(Kit.bytes(at: r.base, count: 64) == Array(Kit.patternBytes(pages: 1, seed: 3)[0..<64]))
            #expect(ProcessMaps.perms(at: r.base) == "r--s")
            try r.map(m, offset: Kit.page, at: r.base + Kit.page, length: Kit.page, protection: .readWrite, shared: false)
            r.pointer(r.base + Kit.page).storeBytes(of: 0xEE, as: UInt8.self)
            #expect(try m.read(offset: Kit.page, count: 1) != [0xEE])
            // The object itself cannot change any more.
            #expect(throws: HostMemoryError.self) { try m.resize(to: Kit.page) }
            #expect(throws: HostMemoryError.self) { try m.resize(to: 4 * Kit.page) }
            #expect(throws: HostMemoryError.self) { try m.write([1], offset: 0) }
            #expect(m.size == 2 * Kit.page)
            // A memfd made without sealing refuses seals.
            let plain = try MemoryObject.memfd(name: "vmk-noseal", size: Kit.page, sealable: false)
            #expect(throws: HostMemoryError.self) { try plain.seal([.write]) }
        }
    }

    @Test func execIsRefusedForANonExecutableMemfd() throws {
        try Kit.gated {
            let m = try MemoryObject.memfd(name: "vmk-noexec", size: Kit.page)
            #expect(!m.executable)
            #expect(!m.allowedProtection(shared: true).contains(.execute))
            #expect(!m.allowedProtection(shared: false).contains(.execute))
            let rx: HostProtection = [.read, .execute]
            let r = try HostReservation(size: 2 << 20)
            defer { r.destroy() }
            for shared in [false, true] {
                #expect(throws: HostMemoryError.protectionExceedsObject(requested: rx,
                                                                       allowed: m.allowedProtection(shared: shared),
                                                                       object: m.name)) {
                    try r.map(m, offset: 0, at: r.base, length: Kit.page, protection: rx, shared: shared)
                }
            }
            #expect(ProcessMaps.perms(at: r.base) == "---p")
            let x = try MemoryObject.memfd(name: "vmk-exec", size: Kit.page, executable: true)
            #expect(x.allowedProtection(shared: true).contains(.execute))
            try x.checkMappable(offset: 0, length: Kit.page, protection: rx, shared: true)
        }
    }

    @Test func readOnlyFileRefusesSharedWriteButAllowsPrivateWrite() throws {
        try Kit.gated {
            let content = Kit.patternBytes(pages: 3, seed: 41)
            let path = Kit.temporaryFile(content, tag: "ro")
            defer { unlink(path) }
            let f = try MemoryObject.file(path: path, writable: false)
            #expect(f.kind == .file && !f.writable && f.size == 3 * Kit.page)
            #expect(f.name == "file \(path)")
            #expect(!f.allowedProtection(shared: true).contains(.write))
            #expect(f.allowedProtection(shared: false).isSuperset(of: .readWrite))
            let r = try HostReservation(size: 2 << 20)
            defer { r.destroy() }
            #expect(throws: HostMemoryError.protectionExceedsObject(requested: .readWrite,
                                                                   allowed: f.allowedProtection(shared: true),
                                                                   object: f.name)) {
                try r.map(f, offset: 0, at: r.base, length: Kit.page, protection: .readWrite, shared: true)
            }
            // Private: copy-on-write, the file is untouched.
            try r.map(f, offset: Kit.page, at: r.base, length: 2 * Kit.page, protection: .readWrite, shared: false)
            #expect(Kit.bytes(at: r.base, count: 4096) == Array(content[4096..<8192]))
            r.pointer(r.base + 10).storeBytes(of: ~content[4096 + 10], as: UInt8.self)
            #expect(Kit.bytes(at: r.base + 10, count: 1) == [~content[4096 + 10]])
            #expect(try f.read(offset: 0, count: content.count) == content)
            // The descriptor itself refuses writes.
            do {
                try f.write([1], offset: 0)
                Issue.record("a read-only file must refuse pwrite")
            } catch let error as HostMemoryError {
                guard case .system(let call, let e, _) = error else { Issue.record("\(error)"); return }
                #expect(call == "pwrite" && e == EBADF)
            }
        }
    }

    @Test func rangesPastTheEndAreObjectTooShort() throws {
        try Kit.gated {
            let m = try MemoryObject.memfd(name: "vmk-short", size: 2 * Kit.page)
            #expect(throws: HostMemoryError.objectTooShort(object: m.name, objectSize: 2 * Kit.page, offset: Kit.page,
                                                          length: 2 * Kit.page)) {
                try m.checkMappable(offset: Kit.page, length: 2 * Kit.page, protection: .read, shared: true)
            }
            #expect(throws: HostMemoryError.objectTooShort(object: m.name, objectSize: 2 * Kit.page,
                                                          offset: UInt64.max - 4095, length: 2 * Kit.page)) {
                try m.checkMappable(offset: UInt64.max - 4095, length: 2 * Kit.page, protection: .read, shared: false)
            }
            #expect(throws: HostMemoryError.notAligned(what: "offset in \(m.name)", value: 100, alignment: 4096)) {
                try m.checkMappable(offset: 100, length: Kit.page, protection: .read, shared: true)
            }
            try m.checkMappable(offset: Kit.page, length: Kit.page, protection: .readWrite, shared: true)
            let r = try HostReservation(size: 2 << 20)
            defer { r.destroy() }
            #expect(throws: HostMemoryError.objectTooShort(object: m.name, objectSize: 2 * Kit.page, offset: 0,
                                                          length: 3 * Kit.page)) {
                try r.map(m, offset: 0, at: r.base, length: 3 * Kit.page, protection: .read, shared: true)
            }
            // A view: the same checks, and the bytes when it fits.
            #expect(throws: HostMemoryError.objectTooShort(object: m.name, objectSize: 2 * Kit.page, offset: 0,
                                                          length: 3 * Kit.page)) {
                _ = try ObjectView(m, offset: 0, length: 3 * Kit.page)
            }
            #expect(throws: HostMemoryError.zeroLength(address: 0)) { _ = try ObjectView(m, offset: 0, length: 0) }
            #expect(throws: HostMemoryError.self) { _ = try ObjectView(.anonymous(size: Kit.page), offset: 0, length: Kit.page) }
            try m.write([5, 6, 7], offset: Kit.page)
            let view = try ObjectView(m, offset: Kit.page, length: Kit.page)
            #expect(Array(UnsafeRawBufferPointer(start: view.base, count: 3)) == [5, 6, 7])
            // Opening what is not a regular file, or nothing at all.
            #expect(throws: HostMemoryError.self) { _ = try MemoryObject.file(path: "/tmp") }
            do {
                _ = try MemoryObject.file(path: "/tmp/vmkit-no-such-file-\(getpid())")
                Issue.record("opening a missing file must fail")
            } catch let error as HostMemoryError {
                #expect(error == .system(call: "open", errno: ENOENT, detail: "of /tmp/vmkit-no-such-file-\(getpid())"))
            }
            // Anonymous memory has no end to reach past.
            let anon = MemoryObject.anonymous(size: Kit.page)
            #expect(anon.fd == -1 && anon.kind == .anonymous)
            try anon.checkMappable(offset: 0, length: 1 << 30, protection: .all, shared: true)
        }
    }
}
