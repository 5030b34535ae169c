#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CVmemSupport

/// A return address as mdb's `%a` names it: `symbol+0xoffset`, with a Swift
/// symbol demangled to its qualified function name, or the bare address when
/// the process has no symbol for it (an executable linked without its
/// symbols exported, for instance).
///
/// Audit records keep raw addresses (``AuditRecord/stack``); this resolves
/// them when someone looks, so that recording stays cheap.
public struct StackSymbol: Sendable, Hashable, CustomStringConvertible {
    /// The return address.
    public let address: UInt
    /// The symbol as linked (mangled, for Swift), or nil.
    public let rawName: String?
    /// The symbol for people: a Swift one demangled down to
    /// `Module.Type.function`, a C one as it is; nil without a symbol.
    public let name: String?
    /// Bytes from the symbol's start to ``address``.
    public let offset: UInt

    /// Resolves `address` through the dynamic linker's symbol table.
    public init(_ address: UInt) {
        self.address = address
        var buffer = [CChar](repeating: 0, count: 512)
        var off: UInt = 0
        if cvmem_symbolize(address, &buffer, UInt(buffer.count), &off) != 0 {
            let raw = String(cString: buffer)
            rawName = raw
            name = Self.readable(raw)
            offset = off
        } else {
            rawName = nil
            name = nil
            offset = 0
        }
    }

    /// `name+0xoff`, or `0xaddress` without a symbol.
    public var description: String {
        guard let name else { return "0x" + String(address, radix: 16) }
        return name + "+0x" + String(offset, radix: 16)
    }

    /// Whether the frame is the allocator's own code, this module or its C
    /// shim: what mdb's WHO column skips (there, the `vmem_` functions). A
    /// frame without a symbol cannot be told apart and counts as not.
    public var isAllocator: Bool {
        guard let rawName else { return false }
        return rawName.hasPrefix("$s4Vmem") || rawName.hasPrefix("cvmem_")
    }

    /// The start of the function the address is in (`address - offset`),
    /// or nil without a symbol.
    public var functionStart: UInt? { rawName == nil ? nil : address &- offset }

    /// A Swift symbol demangled and cut to the function's qualified name
    /// (the signature dropped); anything else unchanged.
    static func readable(_ raw: String) -> String {
        guard raw.hasPrefix("$s") || raw.hasPrefix("_$s"),
              let demangled = raw.withCString({ _vmemSwiftDemangle($0, strlen($0), nil, nil, 0) }) else { return raw }
        defer { free(demangled) }
        var bytes = Array(String(cString: demangled).utf8)
        // "closure #1 (…) in Module.f(…)": name the enclosing function.
        let marker = Array(" in ".utf8)
        if bytes.count >= marker.count {
            var i = bytes.count - marker.count
            while i > 0 && !bytes[i ..< i + marker.count].elementsEqual(marker) { i -= 1 }
            if i > 0 { bytes = Array(bytes[(i + marker.count)...]) }
        }
        if let paren = bytes.firstIndex(of: UInt8(ascii: "(")) { bytes = Array(bytes[..<paren]) }
        return bytes.isEmpty ? raw : String(decoding: bytes, as: UTF8.self)
    }
}

/// The Swift runtime's demangler: a `malloc`ed C string, or nil.
@_silgen_name("swift_demangle")
private func _vmemSwiftDemangle(_ mangled: UnsafePointer<CChar>?, _ length: Int,
                                _ buffer: UnsafeMutablePointer<CChar>?, _ bufferSize: UnsafeMutablePointer<Int>?,
                                _ flags: UInt32) -> UnsafeMutablePointer<CChar>?

extension AuditRecord {
    /// The first frame outside the allocator, resolved (mdb's WHO column);
    /// nil for an empty stack.
    public var caller: StackSymbol? {
        for pc in stack {
            let s = StackSymbol(pc)
            if !s.isAllocator { return s }
        }
        return nil
    }
}
