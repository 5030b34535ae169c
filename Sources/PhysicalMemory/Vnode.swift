/// The identity of an object whose pages are named by `(vnode, offset)`.
///
/// illumos compares `p_vnode` pointers; VMKit compares small integers. A
/// ``Vnode`` is only meaningful inside the ``PhysicalMemory`` that made it,
/// except for the four well-known kernel vnodes, which every instance has.
public struct Vnode: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The vnode number; 0 is never a vnode (it stands for "no identity").
    public let id: UInt32

    @inlinable
    public init(id: UInt32) { self.id = id }

    /// `kvps[KV_KVP]`: the kernel heap's pages (`segkmem` outside zio and vmm).
    public static let kvp = Vnode(id: 1)
    /// `kvps[KV_ZVP]`: the pages of `zfs_file_data_buf` (segzio).
    public static let zvp = Vnode(id: 2)
    /// `kvps[KV_VVP]`: the pages of `kvmm_arena` / `vmm_alloc_arena` (post-12608).
    public static let vvp = Vnode(id: 3)
    /// `unused_pages_vp`: frames excluded when `physmem` is below `total_pages`.
    public static let unusedPages = Vnode(id: 4)

    /// The first number handed out by ``PhysicalMemory/makeVnode(_:name:)``.
    public static let firstUserID: UInt32 = 5

    public static func < (lhs: Vnode, rhs: Vnode) -> Bool { lhs.id < rhs.id }

    public var description: String {
        switch self {
        case .kvp: return "kvps[KV_KVP]"
        case .zvp: return "kvps[KV_ZVP]"
        case .vvp: return "kvps[KV_VVP]"
        case .unusedPages: return "unused_pages_vp"
        default: return "vnode#\(id)"
        }
    }
}

/// The index of a kernel vnode in illumos's `kvps[]` array.
public enum KernelVnodeIndex: Int, CaseIterable, Sendable {
    /// `KV_KVP`
    case kvp = 0
    /// `KV_ZVP`
    case zvp = 1
    /// `KV_VVP`
    case vvp = 2

    /// The vnode that sits at this index.
    public var vnode: Vnode {
        switch self {
        case .kvp: return .kvp
        case .zvp: return .zvp
        case .vvp: return .vvp
        }
    }
}

/// What kind of object a vnode is, which decides its `::memstat` row.
public enum VnodeKind: Hashable, Sendable, CustomStringConvertible {
    /// One of the `kvps[]` kernel vnodes.
    case kernel(KernelVnodeIndex)
    /// `unused_pages_vp`; its pages are not counted at all.
    case unusedPages
    /// A swapfs vnode (`IS_SWAPFSVP`): anonymous memory. Row "Anon".
    case swapfs
    /// A file mapped for execution (`VVMEXEC` set). Row "Exec and libs".
    case exec
    /// Any other file. Row "Page cache".
    case file

    public var description: String {
        switch self {
        case .kernel(let index): return "kernel(\(index))"
        case .unusedPages: return "unusedPages"
        case .swapfs: return "swapfs"
        case .exec: return "exec"
        case .file: return "file"
        }
    }
}

/// The kinds of vnode a caller may create (the kernel ones exist already).
public enum VnodeType: Hashable, Sendable {
    /// Anonymous memory's backing store (`swapfs`).
    case swapfs
    /// An executable or library (`VVMEXEC`).
    case exec
    /// An ordinary file.
    case file

    var kind: VnodeKind {
        switch self {
        case .swapfs: return .swapfs
        case .exec: return .exec
        case .file: return .file
        }
    }
}

/// What ``PhysicalMemory`` knows about one vnode.
public struct VnodeInfo: Hashable, Sendable {
    public let vnode: Vnode
    public let kind: VnodeKind
    public let name: String
    /// Pages named on this vnode, in use or on the cache list.
    public let pageCount: UInt64
}

/// The table of vnodes: kind, name and page count by vnode number.
///
/// A dense array indexed by `Vnode.id` because vnode numbers are handed out
/// consecutively and the hot paths (page create / destroy) bump a count.
struct _VnodeTable {
    struct Entry {
        var kind: VnodeKind
        var name: String
        var pageCount: UInt64
        var live: Bool
    }

    private(set) var entries: [Entry]

    init() {
        entries = [
            Entry(kind: .unusedPages, name: "(none)", pageCount: 0, live: false),
            Entry(kind: .kernel(.kvp), name: "kvps[KV_KVP]", pageCount: 0, live: true),
            Entry(kind: .kernel(.zvp), name: "kvps[KV_ZVP]", pageCount: 0, live: true),
            Entry(kind: .kernel(.vvp), name: "kvps[KV_VVP]", pageCount: 0, live: true),
            Entry(kind: .unusedPages, name: "unused_pages_vp", pageCount: 0, live: true),
        ]
    }

    @inline(__always)
    func isLive(_ id: UInt32) -> Bool {
        Int(id) < entries.count && entries[Int(id)].live
    }

    mutating func make(kind: VnodeKind, name: String) -> Vnode? {
        guard entries.count < Int(UInt32.max) else { return nil }
        entries.append(Entry(kind: kind, name: name, pageCount: 0, live: true))
        return Vnode(id: UInt32(entries.count - 1))
    }

    mutating func retire(_ id: UInt32) { entries[Int(id)].live = false }

    @inline(__always) func kind(_ id: UInt32) -> VnodeKind { entries[Int(id)].kind }
    @inline(__always) func pageCount(_ id: UInt32) -> UInt64 { entries[Int(id)].pageCount }
    @inline(__always) mutating func addPages(_ id: UInt32, _ n: UInt64) { entries[Int(id)].pageCount &+= n }
    @inline(__always) mutating func removePages(_ id: UInt32, _ n: UInt64) { entries[Int(id)].pageCount &-= n }

    func info(_ id: UInt32) -> VnodeInfo {
        let e = entries[Int(id)]
        return VnodeInfo(vnode: Vnode(id: id), kind: e.kind, name: e.name, pageCount: e.pageCount)
    }

    var liveIDs: [UInt32] {
        entries.indices.filter { entries[$0].live }.map { UInt32($0) }
    }
}
