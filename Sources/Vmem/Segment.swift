/// What a boundary tag records, as the public API reports it (illumos
/// `vmem_seg_t` types `VMEM_SPAN`, `VMEM_FREE`, `VMEM_ALLOC`, `VMEM_ROTOR`,
/// `VMEM_WALKER`).
public enum SegmentKind: UInt8, Sendable, Hashable, CaseIterable {
    case span = 1, free = 2, allocated = 3, rotor = 4, walker = 5

    /// The four-letter type mdb's `::vmem_seg` prints.
    public var mdbName: String {
        switch self {
        case .span: return "SPAN"
        case .free: return "FREE"
        case .allocated: return "ALLC"
        case .rotor: return "ROTR"
        case .walker: return "WLKR"
        }
    }

    /// The word `vmkit replay`'s `walk` prints.
    public var traceName: String {
        switch self {
        case .span: return "span"
        case .free: return "free"
        case .allocated: return "alloc"
        case .rotor: return "rotor"
        case .walker: return "walker"
        }
    }
}

/// One segment of an arena, as seen by ``Arena/walk(_:_:)``.
public struct Segment: Sendable, Hashable {
    public var kind: SegmentKind
    public var start: UInt64
    public var end: UInt64
    /// For spans: whether the span was imported from the source (and so will
    /// be given back when wholly free).
    public var imported: Bool
    /// A stable identity of the boundary tag (what mdb prints in the ADDR column).
    public var tagAddress: UInt64
    /// The audit record of an allocated segment, when auditing is enabled.
    public var audit: AuditRecord?

    public var size: UInt64 { end &- start }

    public init(kind: SegmentKind, start: UInt64, end: UInt64, imported: Bool = false,
                tagAddress: UInt64 = 0, audit: AuditRecord? = nil) {
        self.kind = kind; self.start = start; self.end = end
        self.imported = imported; self.tagAddress = tagAddress; self.audit = audit
    }
}

/// Which segments a walk visits (illumos `VMEM_ALLOC | VMEM_FREE | VMEM_SPAN`).
public struct WalkMask: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let allocated = WalkMask(rawValue: 1)
    public static let free = WalkMask(rawValue: 2)
    public static let spans = WalkMask(rawValue: 4)
    /// Rotor and walker markers, normally invisible.
    public static let markers = WalkMask(rawValue: 8)
    /// Allocated and free segments and span markers, in list order.
    public static let all: WalkMask = [.allocated, .free, .spans]
}

/// Which total ``Arena/size(_:)`` reports (illumos `vmem_size`).
public enum SizeKind: Sendable, Hashable {
    case allocated, free, total
}

/// What an allocation was, when auditing is on (illumos `KMF_AUDIT` fields of
/// `vmem_seg_t`).
public struct AuditRecord: Sendable, Hashable {
    /// The kernel thread id of the allocating thread.
    public var thread: UInt64
    /// Nanoseconds on the monotonic clock at allocation.
    public var timestamp: UInt64
    /// Return addresses, innermost first (at most ``maximumDepth``).
    public var stack: [UInt]
    public static let maximumDepth = 20
    public init(thread: UInt64, timestamp: UInt64, stack: [UInt]) {
        self.thread = thread; self.timestamp = timestamp; self.stack = stack
    }
}

/// The result of ``Arena/destroy()``: what was still allocated.
public struct LeakReport: Sendable, Hashable, CustomStringConvertible {
    public var arena: String
    public var leakedBytes: UInt64
    public var leakedSegments: UInt64
    /// The arena counts identifiers, not bytes (``ArenaFlags/identifier``).
    public var identifiers: Bool
    public var isClean: Bool { leakedSegments == 0 }
    public init(arena: String, leakedBytes: UInt64, leakedSegments: UInt64, identifiers: Bool = false) {
        self.arena = arena; self.leakedBytes = leakedBytes; self.leakedSegments = leakedSegments
        self.identifiers = identifiers
    }
    /// The warning illumos prints, with the segment count added.
    public var description: String {
        isClean ? "vmem_destroy('\(arena)'): clean"
            : "vmem_destroy('\(arena)'): leaked \(leakedBytes) \(identifiers ? "identifiers" : "bytes") in \(leakedSegments) segments"
    }
}
