import KernelLayout

/// Addresses of the kernel's static objects, as mdb would print them: `kas`,
/// the `kvps[]` vnodes, the statically allocated segments.
///
/// The model has no kernel image, so it lays these objects out at fixed
/// offsets in the kernel data region (`0xFFFFFFFFFBC00000` on amd64): each
/// address is stable from boot to boot and recognisably a kernel data
/// address in `::seg` and `::whatis` output. Objects the kernel allocates
/// at run time (segkmap's `struct seg`, driver private data) live in a page
/// of `kmem_default` instead; see ``ModelKernel``.
public struct KernelSymbols: Sendable, Hashable {
    /// `sizeof (struct seg)` on amd64 (the AVL node offset in the seed's
    /// `::print` is 0x20 and the tree's element size 0x60).
    public static let segmentStructSize: UInt64 = 0x60
    /// `sizeof (vnode_t)`, rounded.
    public static let vnodeStructSize: UInt64 = 0x200

    public let dataBase: UInt64
    /// `&kas`
    public let kas: UInt64
    /// `&kvps[0]`; `kvps[i]` is at `kvps + i × vnodeStructSize`.
    public let kvps: UInt64

    init(layout: Layout) {
        dataBase = layout.region(.kernelData)?.base ?? AMD64.kernelData
        kvps = dataBase + 0x3_E000
        kas = dataBase + 0x4_1000
    }

    /// `&kvps[index]`
    public func kvp(_ index: Int) -> UInt64 { kvps + UInt64(index) * Self.vnodeStructSize }

    /// The address of the `index`th statically allocated `struct seg`
    /// (ktextseg, kvalloc, kvseg, ... in the order `kvm_init` attaches them).
    func staticSegment(_ index: Int) -> UInt64 {
        dataBase + 0x4_2000 + UInt64(index) * Self.segmentStructSize
    }

    /// The symbol at exactly `address`, if any (for `::whatis`).
    public func symbol(at address: UInt64) -> String? {
        if address == kas { return "kas" }
        for i in 0..<3 where address == kvp(i) { return "kvps+0x\(String(UInt64(i) * Self.vnodeStructSize, radix: 16))" }
        return nil
    }
}
