/// The 24 entries of `struct seg_ops`, in declaration order (raw value = position).
public enum SegmentOperation: Int, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case dup = 1
    case unmap
    case free
    case fault
    case faulta
    case setprot
    case checkprot
    case kluster
    case swapout
    case sync
    case incore
    case lockop
    case getprot
    case getoffset
    case gettype
    case getvp
    case advise
    case dump
    case pagelock
    case setpagesize
    case getmemid
    case getpolicy
    case capable
    case inherit

    /// The op's name, as in `SEGOP_<NAME>` lower-cased.
    public var description: String { String(describing: Self.names[rawValue - 1]) }

    private static let names = ["dup", "unmap", "free", "fault", "faulta", "setprot", "checkprot", "kluster",
                                "swapout", "sync", "incore", "lockop", "getprot", "getoffset", "gettype", "getvp",
                                "advise", "dump", "pagelock", "setpagesize", "getmemid", "getpolicy", "capable",
                                "inherit"]
}

/// A set of ``SegmentOperation``s: what a driver's ops table fills in.
public struct SegmentOperations: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public init(_ ops: [SegmentOperation]) {
        self.init(rawValue: ops.reduce(0) { $0 | 1 << UInt32($1.rawValue - 1) })
    }

    public func contains(_ op: SegmentOperation) -> Bool { rawValue & 1 << UInt32(op.rawValue - 1) != 0 }

    /// One operation each, so that tables read `[.fault, .dump, .capable]`.
    public static let dup = SegmentOperations([SegmentOperation.dup])
    public static let unmap = SegmentOperations([SegmentOperation.unmap])
    public static let free = SegmentOperations([SegmentOperation.free])
    public static let fault = SegmentOperations([SegmentOperation.fault])
    public static let faulta = SegmentOperations([SegmentOperation.faulta])
    public static let setprot = SegmentOperations([SegmentOperation.setprot])
    public static let checkprot = SegmentOperations([SegmentOperation.checkprot])
    public static let kluster = SegmentOperations([SegmentOperation.kluster])
    public static let swapout = SegmentOperations([SegmentOperation.swapout])
    public static let sync = SegmentOperations([SegmentOperation.sync])
    public static let incore = SegmentOperations([SegmentOperation.incore])
    public static let lockop = SegmentOperations([SegmentOperation.lockop])
    public static let getprot = SegmentOperations([SegmentOperation.getprot])
    public static let getoffset = SegmentOperations([SegmentOperation.getoffset])
    public static let gettype = SegmentOperations([SegmentOperation.gettype])
    public static let getvp = SegmentOperations([SegmentOperation.getvp])
    public static let advise = SegmentOperations([SegmentOperation.advise])
    public static let dump = SegmentOperations([SegmentOperation.dump])
    public static let pagelock = SegmentOperations([SegmentOperation.pagelock])
    public static let setpagesize = SegmentOperations([SegmentOperation.setpagesize])
    public static let getmemid = SegmentOperations([SegmentOperation.getmemid])
    public static let getpolicy = SegmentOperations([SegmentOperation.getpolicy])
    public static let capable = SegmentOperations([SegmentOperation.capable])
    public static let inherit = SegmentOperations([SegmentOperation.inherit])

    /// Every operation.
    public static let all = SegmentOperations(SegmentOperation.allCases)

    /// The operations in declaration order.
    public var operations: [SegmentOperation] { SegmentOperation.allCases.filter { contains($0) } }
}
