/// Runs a guest-memory trace (guest-memory.md §7) on real host memory and
/// reports each result as a line, in §7's shapes:
///
/// - `memseg ID error KIND`, `memmap 0xGPA error KIND`, `munmap 0xGPA error KIND`
///   for a refusal (KIND: `invalid`, `exists`, `nospace`, `fault`); nothing
///   when they, or `reset`, or `write`, succeed;
/// - `translate 0xGPA seg=ID off=0xOFF` or `translate 0xGPA fault`;
/// - `read 0xGPA HEXBYTES` or `read 0xGPA fault`; `write 0xGPA fault`;
/// - `touch 0xGPA ok` or `touch 0xGPA fault` (a guest access through the
///   nested table, in the `vm` line's format and A/D mode);
/// - `dirty 0xGPA P1 P2 ...` or `dirty 0xGPA -` (VMM writes and guest
///   writes, one committed harvest);
/// - `map 0xGPA 0xLEN seg=ID off=0xOFF prot=PROT[ wired]` per mapping for `maps`;
/// - `line N: error: MESSAGE` for a line that cannot be parsed, breaks §7's
///   limits, or that the host refuses.
///
/// A bad line never stops the replay. The guest is created on first use
/// with a guest-physical space of ``guestSpace`` bytes (memmaps past it but
/// below 2^47 answer `unsupported`; ``replay(_:)`` sizes the space from the
/// trace so that none does), in one host window when the host can reserve
/// it, otherwise packed (``GuestMemory/HostLayout/packed(windowBytes:)``):
/// then only the mapped bytes need host address space, so a trace may map
/// pages anywhere up to 2^47.
public struct GuestTraceRunner {
    /// The size of the guest-physical space (reserved on the host in one
    /// piece when it can be, else packed; see the type's overview).
    public private(set) var guestSpace: UInt64
    private var guest: GuestMemory?
    private var guestFailure: String?
    private var vmMode: (ad: GuestTraceCommand.AccessDirtyMode, format: GuestTraceCommand.TableFormat) = (.hardware, .ept)
    private var commandsSeen = 0
    private var lineNumber = 0
    private let emit: (String) -> Void

    /// 1 TiB: the window when none is given.
    public static let defaultGuestSpace: UInt64 = 1 << 40

    /// `emit` receives every output line, without its newline.
    public init(guestSpace: UInt64 = GuestTraceRunner.defaultGuestSpace, emit: @escaping (String) -> Void) {
        let align: UInt64 = 2 << 20
        let clamped = min(max(guestSpace, align), GuestMemory.addressLimit)
        self.guestSpace = (clamped + align - 1) & ~(align - 1)
        self.emit = emit
    }

    /// Replays `text` in a window sized for it and returns the output lines.
    public static func replay(_ text: String) -> [String] {
        var out: [String] = []
        var runner = GuestTraceRunner(guestSpace: GuestTrace.guestSpace(for: text)) { out.append($0) }
        runner.run(text)
        runner.finish()
        return out
    }

    /// Runs every line of `text`.
    public mutating func run(_ text: String) {
        for line in GuestTrace.lines(text) { run(line: line) }
    }

    /// Runs one line (lines are numbered from 1 across calls).
    public mutating func run(line: some StringProtocol) {
        lineNumber += 1
        do {
            guard let command = try GuestTrace.parse(line) else { return }
            commandsSeen += 1
            try execute(command)
        } catch {
            emit("line \(lineNumber): error: \(GuestTrace.printable(error.message))")
        }
    }

    /// Releases the guest's host memory (also done when the runner goes).
    public mutating func finish() {
        try? guest?.destroy()
        guest = nil
    }

    private static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

    private static func hexBytes(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// The guest, created on first use: the direct layout when the host
    /// can reserve the whole guest space in one piece, else the packed
    /// layout over the same guest space in the largest window it can
    /// reserve (halving down to 2 MiB), so that every GPA below the space's
    /// end still maps.
    private mutating func memory() throws(GuestTraceError) -> GuestMemory {
        if let guest { return guest }
        if let guestFailure { throw GuestTraceError(guestFailure) }
        let mode = NestedTableMode(format: vmMode.format == .rvi ? .rvi : .ept,
                                   accessedDirty: vmMode.ad == .emulated ? .emulated : .hardware)
        var lastError: GuestMemoryError
        do {
            let g = try GuestMemory(limit: guestSpace, nested: mode)
            guest = g
            return g
        } catch {
            lastError = error
        }
        var window = min(guestSpace, Self.largestPackedWindow)
        while window >= 2 << 20 {
            do {
                let g = try GuestMemory(limit: guestSpace, nested: mode, hostLayout: .packed(windowBytes: window))
                guest = g
                return g
            } catch {
                lastError = error
                window /= 2
            }
        }
        guestFailure = "cannot create the guest: \(lastError)"
        throw GuestTraceError(guestFailure!)
    }

    /// The first packed window tried: 16 TiB of address space, reserved
    /// (`PROT_NONE`, no swap) but never backed unless mapped.
    static let largestPackedWindow: UInt64 = 1 << 44

    /// A host refusal is not one of §7's answers: it is a line error.
    private func hostCheck(_ error: GuestMemoryError) throws(GuestTraceError) {
        if case .host = error { throw GuestTraceError(error.description) }
        if case .destroyed = error { throw GuestTraceError(error.description) }
        if case .nestedTable = error { throw GuestTraceError(error.description) }
        if case .hostWindowFull = error { throw GuestTraceError(error.description) }
    }

    private mutating func execute(_ command: GuestTraceCommand) throws(GuestTraceError) {
        switch command {
        case let .vm(ad, format):
            guard commandsSeen == 1 else { throw GuestTraceError("vm must be the first command of the trace") }
            vmMode = (ad, format)

        case let .memseg(id, length, name):
            let g = try memory()
            guard id < UInt64(GuestMemory.maxSegments) else { emit("memseg \(id) error invalid"); return }
            do {
                try g.allocateSegment(id: Int(id), length: length, name: name)
            } catch {
                try hostCheck(error)
                emit("memseg \(id) error \(error.kind.rawValue)")
            }

        case let .memmap(gpa, id, offset, length, protection, wired):
            let g = try memory()
            let prefix = "memmap \(Self.hex(gpa)) error "
            // Everything that is `invalid` comes before `nospace` and `fault`.
            guard let protection, id < UInt64(GuestMemory.maxSegments) else {
                emit(prefix + "invalid"); return
            }
            do {
                try g.map(gpa: gpa, segment: Int(id), offset: offset, length: length, protection: protection, wired: wired)
            } catch {
                try hostCheck(error)
                if case .beyondGuestSpace = error, g.limit < GuestMemory.addressLimit {
                    let (end, o) = gpa.addingReportingOverflow(length)
                    if !o, end <= GuestMemory.addressLimit {
                        throw GuestTraceError("unsupported: [\(Self.hex(gpa)), +\(Self.hex(length))) is below 2^47 "
                                              + "but past this replay's host window of \(Self.hex(g.limit)) bytes")
                    }
                }
                emit(prefix + error.kind.rawValue)
            }

        case let .munmap(gpa, length):
            let g = try memory()
            do { try g.unmap(gpa: gpa, length: length) } catch {
                try hostCheck(error)
                emit("munmap \(Self.hex(gpa)) error \(error.kind.rawValue)")
            }

        case .reset:
            let g = try memory()
            do { try g.reset() } catch { throw GuestTraceError("reset refused: \(error)") }

        case let .translate(gpa, length, protection):
            let g = try memory()
            do {
                let t = try g.translation(gpa, length, protection)
                emit("translate \(Self.hex(gpa)) seg=\(t.segmentID) off=\(Self.hex(t.offset))")
            } catch {
                try hostCheck(error)
                emit("translate \(Self.hex(gpa)) fault")
            }

        case let .read(gpa, length):
            let g = try memory()
            do {
                let bytes = try g.read(gpa, count: Int(length))
                emit("read \(Self.hex(gpa)) \(Self.hexBytes(bytes))")
            } catch {
                try hostCheck(error)
                emit("read \(Self.hex(gpa)) fault")
            }

        case let .write(gpa, bytes):
            let g = try memory()
            do { try g.write(gpa, bytes) } catch {
                try hostCheck(error)
                emit("write \(Self.hex(gpa)) fault")
            }

        case let .touch(gpa, access):
            let g = try memory()
            do {
                try g.touch(gpa, access)
                emit("touch \(Self.hex(gpa)) ok")
            } catch {
                try hostCheck(error)
                emit("touch \(Self.hex(gpa)) fault")
            }

        case let .dirty(gpa, length):
            let g = try memory()
            // Nothing is mapped at or past 2^47: clamp there, so a range that
            // ends exactly at 2^64 is answered; one that passes it is `fault`.
            let (end, o) = gpa.addingReportingOverflow(length)
            if o && end != 0 { emit("dirty \(Self.hex(gpa)) fault"); return }
            let top = o ? GuestMemory.addressLimit : min(end, GuestMemory.addressLimit)
            var pages: [UInt64] = []
            if gpa < top {
                // §7: reporting clears them, so the harvest is committed at once.
                do {
                    let harvest = try g.harvestDirty(gpa ..< top)
                    pages = harvest.pages
                    harvest.commit()
                } catch {
                    try hostCheck(error)
                    emit("dirty \(Self.hex(gpa)) fault"); return
                }
            }
            emit("dirty \(Self.hex(gpa)) " + (pages.isEmpty ? "-" : pages.map { String($0) }.joined(separator: " ")))

        case .maps:
            let g = try memory()
            for m in g.mappings { emit(m.description) }
        }
    }
}
