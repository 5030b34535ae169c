import ArgumentParser
import AddressSpace
import HostMemory
import HostSegments
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `vmkit as`: a host-backed address space on real memory, one segment per
/// driver, its faults served through userfaultfd, `::seg`, and a guard-page
/// report from a child that touched a stack's red zone.
struct AsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "as",
        abstract: "Build an address space on real host memory with one segment per driver, touch it, and show how each fault was served.",
        discussion: """
            Reserves a window of host address space (mmap PROT_NONE, MAP_NORESERVE) and maps one \
            segment with each host segment driver: anonymous memory, a private and a shared \
            mapping of a file (segvn_ops), a memfd that a child process writes first (segdev_ops), \
            a reserved hole (seghole_ops), a thread stack with a red zone below it (segkp_ops) and \
            a segment filled lazily from a file (seglazy_ops), read by several threads at once. \
            Every byte read is checked against what was written.

            Missing-page faults of the anonymous memory, the memfd, the stack and the lazy fill \
            reach the driver of the segment holding the address through userfaultfd; file \
            mappings are served by the kernel from the page cache. Where userfaultfd cannot be \
            used (or with --no-userfaultfd) the output gives the reason in one line, and those \
            segments were populated when they were mapped.

            Prints the segments as mdb's ::seg, a table of each segment's driver, backing, \
            resident pages (mincore), faults served, bytes filled and time spent, the totals per \
            driver, the checks, and the guard report of a child process that wrote to the stack's \
            red zone: its message, and that it died of SIGSEGV. --json prints all of it as one \
            JSON object instead. Temporary files are made under /tmp and removed before exit.

            Exits 0 when every check passes; 1, with the failing check or the refused operation \
            on stderr, otherwise. SIZE accepts 4096, 0x1000, 64K, 8M, 1G (binary units).
            """)

    @Option(help: ArgumentHelp("Size of the reserved window (default 1G; a multiple of 2M).", valueName: "size"),
            transform: LayoutArguments.size)
    var window: UInt64?

    @Option(name: .customLong("lazy-size"),
            help: ArgumentHelp("Size of the lazy-fill segment and of the file it is filled from (default 8M; a multiple of 4K, at most 1G).",
                               valueName: "size"),
            transform: LayoutArguments.size)
    var lazySize: UInt64?

    @Option(name: .customLong("read-ahead"),
            help: ArgumentHelp("Bytes the lazy-fill driver copies per fault, the faulting page included (default 64K; a multiple of 4K).",
                               valueName: "size"),
            transform: LayoutArguments.size)
    var readAhead: UInt64?

    @Option(name: .customLong("touch-threads"),
            help: ArgumentHelp("Threads that read the lazy-fill segment at once (1 to 64).", valueName: "n"))
    var touchThreads: Int = 4

    @Option(name: .customLong("fault-threads"),
            help: ArgumentHelp("userfaultfd handler threads serving the faults (1 to 64).", valueName: "n"))
    var faultThreads: Int = 1

    @Flag(name: .customLong("no-userfaultfd"),
          help: "Do not use userfaultfd: demand-filled segments are populated when mapped (the fallback where it is not allowed).")
    var noUserfaultfd = false

    @Flag(name: .customLong("json"), help: "Print one JSON object (userfaultfd, segments, drivers, lazyFill, checks, guardReport, holeReport) instead of text.")
    var jsonFlag = false

    @Option(help: ResultFormat.help)
    var format: ResultFormat?

    /// JSON output, asked for with --json or --format json.
    var json: Bool { jsonFlag || format == .json }

    func validate() throws {
        let page = HostReservation.pageSize
        if let window, window == 0 || window % HostReservation.alignment != 0 || window >= 1 << 47 {
            throw ValidationError("--window \(window) must be a non-zero multiple of 2M below 128T")
        }
        if let lazySize, lazySize == 0 || lazySize % page != 0 || lazySize > 1 << 30 {
            throw ValidationError("--lazy-size \(lazySize) must be a non-zero multiple of 4K of at most 1G")
        }
        if let readAhead, readAhead < page || readAhead % page != 0 || readAhead > 1 << 30 {
            throw ValidationError("--read-ahead \(readAhead) must be a multiple of 4K from 4K to 1G")
        }
        if !(1...64).contains(touchThreads) {
            throw ValidationError("--touch-threads must be 1 to 64, got \(touchThreads)")
        }
        if !(1...64).contains(faultThreads) {
            throw ValidationError("--fault-threads must be 1 to 64, got \(faultThreads)")
        }
    }

    func run() throws {
        var tour = AsTour(window: window ?? 1 << 30, lazySize: lazySize ?? 8 << 20, readAhead: readAhead ?? 64 << 10,
                          touchThreads: touchThreads, faultThreads: faultThreads, userfaultfd: !noUserfaultfd)
        let outcome: AsTour.Outcome
        do {
            outcome = try tour.run()
        } catch {
            LayoutArguments.printError("vmkit as: \(error.message)")
            throw ExitCode(1)
        }
        if json { print(outcome.json) } else { print(outcome.text, terminator: "") }
        let failed = outcome.checks.filter { !$0.ok }
        if !failed.isEmpty {
            for c in failed { LayoutArguments.printError("vmkit as: check failed: \(c.name): \(c.detail)") }
            throw ExitCode(1)
        }
    }
}

/// A step the host refused, with what was being done.
struct AsFailure: Error {
    let message: String
}

/// The tour itself: builds the address space, touches and checks every
/// segment, and gathers what to print.
struct AsTour {
    let window: UInt64
    let lazySize: UInt64
    let readAhead: UInt64
    let touchThreads: Int
    let faultThreads: Int
    let userfaultfd: Bool

    struct Check {
        let name: String
        let ok: Bool
        let detail: String
    }

    struct GuardTouch {
        let what: String
        let address: UInt64
        let touch: ChildTouch
    }

    struct Outcome {
        var text: String
        var json: String
        var checks: [Check]
    }

    private var checks: [Check] = []
    private var notes: [String] = []
    private var temporaryPaths: [String] = []

    init(window: UInt64, lazySize: UInt64, readAhead: UInt64, touchThreads: Int, faultThreads: Int, userfaultfd: Bool) {
        self.window = window
        self.lazySize = lazySize
        self.readAhead = readAhead
        self.touchThreads = touchThreads
        self.faultThreads = faultThreads
        self.userfaultfd = userfaultfd
    }

    static let page = HostReservation.pageSize

    private mutating func check(_ name: String, _ ok: Bool, _ detail: String) {
        checks.append(Check(name: name, ok: ok, detail: detail))
    }

    /// Runs `body` turning the typed errors of the host layers into a failure naming `step`.
    private func step<T>(_ what: String, _ body: () throws -> T) throws(AsFailure) -> T {
        do {
            return try body()
        } catch let e as HostSegmentError {
            throw AsFailure(message: "\(what): \(e)")
        } catch let e as HostMemoryError {
            throw AsFailure(message: "\(what): \(e)")
        } catch let e as AsFailure {
            throw AsFailure(message: "\(what): \(e.message)")
        } catch {
            throw AsFailure(message: "\(what): \(error)")
        }
    }

    mutating func run() throws(AsFailure) -> Outcome {
        defer { for path in temporaryPaths { unlink(path) } }
        let space = try step("reserving a window of \(hex(window)) bytes") {
            try HostAddressSpace(windowSize: window, faultThreads: faultThreads, userfaultfd: userfaultfd)
        }
        defer { try? space.destroy() }
        let page = Self.page

        // segvn, anonymous: 64 pages; page 0 read (the zero page), pages 1-15 written.
        let anon = try step("mapping anonymous memory (segvn)") { try space.mapAnonymous(size: 64 * page) }
        do {
            let p = space.pointer(anon.base).assumingMemoryBound(to: UInt8.self)
            var zero = true
            for i in 0..<Int(page) where p[i] != 0 { zero = false }
            for k in 1..<16 { memset(p + k * Int(page), Int32(k * 3 + 1), Int(page)) }
            var bad = 0
            for k in 1..<16 {
                for i in stride(from: 0, to: Int(page), by: 64) where p[k * Int(page) + i] != UInt8(k * 3 + 1) { bad += 1 }
            }
            check("segvn anon", zero && bad == 0,
                  zero ? (bad == 0 ? "page 0 reads zeros; pages 1-15 written and read back"
                                   : "\(bad) bytes of pages 1-15 read back wrong")
                       : "page 0 of fresh anonymous memory is not zero")
        }

        // segvn, file: a 128 KiB file of known bytes; the first half mapped
        // private, the second half shared.
        let fileBytes = (0..<Int(32 * page)).map { i in UInt8(truncatingIfNeeded: i &* 13 &+ (i >> 12) &* 101 &+ 5) }
        let file = try temporaryFile("file", fileBytes)
        let half = 16 * page
        let priv = try step("mapping \(file.name) private (segvn)") {
            try space.mapFile(file, offset: 0, size: half, protection: .readWrite, shared: false)
        }
        do {
            let p = space.pointer(priv.base)
            let same = fileBytes.withUnsafeBytes { memcmp(p, $0.baseAddress!, Int(half)) == 0 }
            let mark = [UInt8](repeating: 0xEE, count: 16)
            mark.withUnsafeBytes { _ = memcpy(p, $0.baseAddress!, 16) }
            let seen = (0..<16).allSatisfy { p.load(fromByteOffset: $0, as: UInt8.self) == 0xEE }
            let onDisk = try step("reading \(file.name)") { try file.read(offset: 0, count: 16) }
            let untouched = onDisk == Array(fileBytes[0..<16])
            check("segvn private file", same && seen && untouched,
                  !same ? "the mapping does not show the file's bytes"
                  : !seen ? "a write to the private mapping does not read back"
                  : !untouched ? "a write to a private mapping reached the file"
                  : "64 KiB read as in the file; a write stayed in the mapping (copy on write), the file kept its bytes")
        }
        let shared = try step("mapping \(file.name) shared (segvn)") {
            try space.mapFile(file, offset: half, size: half, protection: .readWrite, shared: true)
        }
        do {
            let p = space.pointer(shared.base)
            let same = fileBytes.withUnsafeBytes { memcmp(p, $0.baseAddress! + Int(half), Int(half)) == 0 }
            let text = Array("written through the shared mapping".utf8)
            text.withUnsafeBytes { _ = memcpy(p + 2 * Int(page), $0.baseAddress!, text.count) }
            let onDisk = try step("reading \(file.name)") { try file.read(offset: half + 2 * page, count: text.count) }
            check("segvn shared file", same && onDisk == text,
                  !same ? "the mapping does not show the file's bytes at offset \(hex(half))"
                  : onDisk != text ? "a write to the shared mapping did not reach the file"
                  : "64 KiB read as in the file at offset \(hex(half)); a write reached the file")
        }

        // segdev: a memfd mapped shared; a child writes its first 8 pages
        // through the descriptor, then the parent reads them.
        let memfd = try step("creating a memfd") { try MemoryObject.memfd(name: "vmkit-as-dev", size: 16 * page) }
        let dev = try step("mapping \(memfd.name) (segdev)") { try space.mapDevice(memfd, size: 16 * page) }
        do {
            let seed: UInt8 = 0x21
            let status = try step("writing \(memfd.name) from a child") {
                try ChildTouch.writeFromChild(memfd, offset: 0, length: 8 * page, seed: seed)
            }
            let p = space.pointer(dev.base).assumingMemoryBound(to: UInt8.self)
            var bad = 0
            for i in 0..<Int(8 * page) where p[i] != seed &+ UInt8(truncatingIfNeeded: i &* 7) { bad += 1 }
            var zero = true
            for i in 0..<Int(page) where p[8 * Int(page) + i] != 0 { zero = false }
            memset(p + 9 * Int(page), 0x5C, 32)
            let onDisk = try step("reading \(memfd.name)") { try memfd.read(offset: 9 * page, count: 32) }
            let reached = onDisk == [UInt8](repeating: 0x5C, count: 32)
            check("segdev memfd", status == 0 && bad == 0 && zero && reached,
                  status != 0 ? "the child writing the memfd exited with status \(status)"
                  : bad != 0 ? "\(bad) bytes the child wrote read back wrong in the parent"
                  : !zero ? "page 8, which nobody wrote, is not zero"
                  : !reached ? "the parent's write did not reach the memfd"
                  : "8 pages a child wrote read back in the parent; page 8 reads zeros; a write reached the memfd")
        }

        // seghole: 1 MiB nobody may touch.
        let hole = try step("mapping a hole (seghole)") { try space.mapHole(size: 256 * page, name: "as-hole") }

        // A stack with a one-page red zone below 16 usable pages.
        let stack = try step("mapping a stack (segkp)") {
            try space.mapStack(size: 16 * page, redZone: page, name: "as-stack")
        }
        let stackBase = (stack.driver as? HostStack)?.stackBase ?? stack.base + page
        do {
            // A call chain 32 KiB deep: the top 8 pages, written from the top down.
            let top = stack.base + stack.size
            let p = space.pointer(top - 8 * page).assumingMemoryBound(to: UInt8.self)
            for k in (0..<8).reversed() { memset(p + k * Int(page), Int32(0x40 + k), Int(page)) }
            var bad = 0
            for k in 0..<8 {
                for i in stride(from: 0, to: Int(page), by: 64) where p[k * Int(page) + i] != UInt8(0x40 + k) { bad += 1 }
            }
            check("segkp stack", bad == 0, bad == 0 ? "the top 8 pages written from the top down and read back"
                                                    : "\(bad) bytes of the stack read back wrong")
        }

        // Lazy fill from a file, read by several threads at once.
        let lazyBytes = Self.lazyPattern(Int(lazySize))
        let lazyFile = try temporaryFile("lazy", lazyBytes)
        let lazy = try step("mapping \(lazyFile.name) for lazy fill") {
            try space.mapLazyFill(lazyFile, size: lazySize, readAhead: readAhead)
        }
        let clock = ContinuousClock()
        let started = clock.now
        let touched: Result<LazyTouch, AsFailure> = lazyBytes.withUnsafeBytes { expected in
            let t = LazyTouch(base: lazy.base, expected: expected.baseAddress!, pages: Int(lazySize / page),
                              threads: touchThreads)
            do throws(AsFailure) {
                try t.run()
                return .success(t)
            } catch {
                return .failure(error)
            }
        }
        let touch: LazyTouch
        switch touched {
        case .success(let t): touch = t
        case .failure(let e): throw e
        }
        let elapsed = clock.now - started
        let lazyStats = (lazy.driver as? HostSegmentDriver)?.statistics ?? HostFaultStatistics()
        let filled = (lazy.driver as? HostLazyFill)?.filledPages(lazy) ?? 0
        let pages = Int(lazySize / page)
        let mismatches = touch.mismatches.load(ordering: .relaxed)
        let copiedOnce = !space.usesUserfaultfd || lazyStats.bytes == lazySize
        check("seglazy fill", mismatches == 0 && filled == pages && copiedOnce,
              mismatches != 0 ? "\(mismatches) pages differ from the file (first: page \(touch.firstMismatch.load(ordering: .relaxed)))"
              : filled != pages ? "\(filled) of \(pages) pages filled"
              : !copiedOnce ? "\(lazyStats.bytes) bytes copied for \(lazySize) bytes of segment: some page was copied twice"
              : "\(pages) pages read by \(touchThreads) threads at once, every one as in the file, each copied once")

        if space.usesUserfaultfd {
            var silent: [String] = []
            for (name, seg) in [("segvn anon", anon), ("segdev", dev), ("segkp", stack), ("seglazy", lazy)]
            where ((seg.driver as? HostSegmentDriver)?.statistics.faults ?? 0) == 0 {
                silent.append(name)
            }
            var wrong: [String] = []
            for (name, seg) in [("segvn private", priv), ("segvn shared", shared), ("seghole", hole)]
            where ((seg.driver as? HostSegmentDriver)?.statistics.faults ?? 0) != 0 {
                wrong.append(name)
            }
            check("fault routing", silent.isEmpty && wrong.isEmpty,
                  !silent.isEmpty ? "no fault reached the driver of \(silent.joined(separator: ", "))"
                  : !wrong.isEmpty ? "faults counted by drivers the kernel serves: \(wrong.joined(separator: ", "))"
                  : "each userfaultfd segment's faults were served by its own driver; file segments by the kernel")
        }

        // The guard reports: a child writes to the red zone (64 bytes below
        // the stack base, where an overflowing frame lands) and reads the hole.
        let redZoneAddress = stackBase - 64
        let red = try step("touching the red zone from a child") { try ChildTouch.touch(redZoneAddress, write: true) }
        check("red zone report", red.signal == SIGSEGV && red.message.contains("red zone"),
              red.signal != SIGSEGV ? "the child touching the red zone ended with \(Self.signalName(red.signal)), exit code \(red.exitCode)"
              : !red.message.contains("red zone") ? "the child's message does not name the red zone: \"\(red.message)\""
              : "the child was told it overflowed stack \"as-stack\" and died of SIGSEGV")
        let holeAddress = hole.base + 0x100
        let holed = try step("touching the hole from a child") { try ChildTouch.touch(holeAddress, write: false) }
        check("hole report", holed.signal == SIGSEGV && holed.message.contains("hole"),
              holed.signal != SIGSEGV ? "the child touching the hole ended with \(Self.signalName(holed.signal)), exit code \(holed.exitCode)"
              : !holed.message.contains("hole") ? "the child's message does not name the hole: \"\(holed.message)\""
              : "the child was told it touched hole \"as-hole\" and died of SIGSEGV")

        let guards = [GuardTouch(what: "wrote to the red zone of stack \"as-stack\", 64 bytes below its base", address: redZoneAddress, touch: red),
                      GuardTouch(what: "read hole \"as-hole\"", address: holeAddress, touch: holed)]
        let lazyLine = "lazy fill: \(pages) pages (\(Self.bytes(lazySize))) read by \(touchThreads) thread\(touchThreads == 1 ? "" : "s") at once in \(Self.milliseconds(elapsed)) ms; "
            + (space.usesUserfaultfd
               ? "\(lazyStats.faults) faults served (read-ahead \(Self.bytes(readAhead)): at least \((lazySize + readAhead - 1) / readAhead) needed), \(lazyStats.alreadyPresent) woken on a page another fill had claimed, \(lazyStats.bytes) bytes copied"
               : "copied when mapped")
        return Outcome(text: text(space, lazyLine, guards), json: json(space, lazy, lazyStats, filled, elapsed, guards),
                       checks: checks)
    }

    // MARK: Output

    private func userfaultfdLine(_ space: HostAddressSpace) -> String {
        if let service = space.faultService {
            return "userfaultfd: yes, opened through \(service.openedThrough) (features \(service.features)), "
                + "\(faultThreads) handler thread\(faultThreads == 1 ? "" : "s"); anonymous, segdev, stack and lazy-fill faults go to their drivers"
        }
        return "userfaultfd: no: \(space.userfaultfdUnavailableReason ?? "unknown"); "
            + "demand-filled segments (anonymous, segdev, stack, lazy fill) were populated when mapped"
    }

    private func text(_ space: HostAddressSpace, _ lazyLine: String, _ guards: [GuardTouch]) -> String {
        var out = "host address space: window [\(hex(space.reservation.base)), +\(hex(space.reservation.size))) (\(space.reservation.size >> 20) MiB)\n"
        out += userfaultfdLine(space) + "\n\n"
        out += space.renderReport() + "\n"
        out += lazyLine + "\n\n"
        out += "checks:\n"
        for c in checks { out += "  \(c.ok ? "ok  " : "FAIL") \(c.name): \(c.detail)\n" }
        for g in guards {
            out += "\nguard report: a child process \(g.what) (\(hex(g.address))):\n"
            out += "  \(g.touch.message.isEmpty ? "(no message)" : g.touch.message)\n"
            out += g.touch.signal != 0 ? "  the child died of \(Self.signalName(g.touch.signal)) (signal \(g.touch.signal))\n"
                                       : "  the child exited with code \(g.touch.exitCode)\n"
        }
        return out
    }

    private func json(_ space: HostAddressSpace, _ lazy: Segment, _ stats: HostFaultStatistics, _ filled: Int,
                      _ elapsed: Duration, _ guards: [GuardTouch]) -> String {
        var members: [(String, HostJSON)] = []
        if case .object(let report) = space.reportJSONValue() { members = report }
        if let service = space.faultService {
            members.append(("openedThrough", .string(service.openedThrough)))
            members.append(("features", .string(service.features.description)))
            members.append(("faultThreads", .number(UInt64(faultThreads))))
        }
        members.append(("lazyFill", .object([
            ("base", .hex(lazy.base)), ("size", .hex(lazy.size)), ("readAhead", .number(readAhead)),
            ("threads", .number(UInt64(touchThreads))), ("pages", .number(lazy.size / Self.page)),
            ("filledPages", .number(UInt64(filled))), ("faultsServed", .number(stats.faults)),
            ("alreadyPresent", .number(stats.alreadyPresent)), ("bytes", .number(stats.bytes)),
            ("microseconds", .number(Self.microseconds(elapsed))),
        ])))
        members.append(("checks", .array(checks.map { c in
            .object([("name", .string(c.name)), ("ok", .bool(c.ok)), ("detail", .string(c.detail))])
        })))
        func report(_ g: GuardTouch) -> HostJSON {
            .object([("message", .string(g.touch.message)), ("address", .hex(g.address)),
                     ("signal", .signed(Int64(g.touch.signal))), ("signalName", .string(Self.signalName(g.touch.signal))),
                     ("exitCode", .signed(Int64(g.touch.exitCode)))])
        }
        if guards.count == 2 {
            members.append(("guardReport", report(guards[0])))
            members.append(("holeReport", report(guards[1])))
        }
        members.append(("ok", .bool(checks.allSatisfy(\.ok))))
        return HostJSON.object(members).rendered()
    }

    // MARK: Helpers

    /// A temporary file under /tmp holding `bytes`, opened read-write; removed when the tour ends.
    private mutating func temporaryFile(_ tag: String, _ bytes: [UInt8]) throws(AsFailure) -> MemoryObject {
        var template = Array("/tmp/vmkit-as-\(tag).XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw AsFailure(message: "creating a temporary file under /tmp: \(HostMemoryError.errnoName(errno))")
        }
        close(fd)
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        temporaryPaths.append(path)
        let object = try step("opening \(path)") { try MemoryObject.file(path: path, writable: true) }
        try step("writing \(path)") { try object.write(bytes, offset: 0) }
        return object
    }

    /// The lazy-fill file's bytes: eight per step of a 64-bit mixing function,
    /// so that every page differs from every other.
    static func lazyPattern(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for w in 0..<words.count {
                var x = UInt64(w) &* 0x9E37_79B9_7F4A_7C15
                x ^= x >> 29
                words[w] = x &+ 0x5641_5354
            }
        }
        return bytes
    }

    /// `8 MiB`, `64 KiB`, `12288 bytes`.
    static func bytes(_ v: UInt64) -> String {
        if v >= 1 << 20 && v % (1 << 20) == 0 { return "\(v >> 20) MiB" }
        if v >= 1 << 10 && v % (1 << 10) == 0 { return "\(v >> 10) KiB" }
        return "\(v) bytes"
    }

    static func signalName(_ s: Int32) -> String {
        switch s {
        case SIGSEGV: return "SIGSEGV"
        case SIGBUS: return "SIGBUS"
        case 0: return "no signal"
        default: return "signal \(s)"
        }
    }

    static func microseconds(_ d: Duration) -> UInt64 {
        let us = d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000
        return UInt64(max(us, 0))
    }

    /// `6.8`: milliseconds with one decimal.
    static func milliseconds(_ d: Duration) -> String {
        let us = microseconds(d)
        return String(us / 1000) + "." + String((us % 1000) / 100)
    }

    private func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
}

/// Several threads reading a lazy-fill segment at once and comparing each
/// page with the file. Threads are started in pairs at evenly spaced pages,
/// so that two threads race for every page and the driver's claims decide
/// which of them copies it.
final class LazyTouch: @unchecked Sendable {
    let base: UInt64
    let expected: UnsafeRawPointer
    let pages: Int
    let threads: Int
    let mismatches = Atomic<Int>(0)
    let firstMismatch = Atomic<Int>(-1)
    private let started = Atomic<Int>(0)
    private let abandoned = Atomic<Bool>(false)

    init(base: UInt64, expected: UnsafeRawPointer, pages: Int, threads: Int) {
        self.base = base
        self.expected = expected
        self.pages = pages
        self.threads = threads
    }

    /// Starts the threads, waits for them all.
    func run() throws(AsFailure) {
        var ids: [pthread_t] = []
        for i in 0..<threads {
            let box = Unmanaged.passRetained(_Worker(touch: self, index: i))
            var id = pthread_t()
            let r = pthread_create(&id, nil, { raw in
                guard let raw else { return nil }
                let worker = Unmanaged<_Worker>.fromOpaque(raw).takeRetainedValue()
                worker.touch.work(worker.index)
                return nil
            }, box.toOpaque())
            if r != 0 {
                box.release()
                abandoned.store(true, ordering: .releasing)
                for t in ids { pthread_join(t, nil) }
                throw AsFailure(message: "starting touch thread \(i + 1) of \(threads): pthread_create failed (\(HostMemoryError.errnoName(r)))")
            }
            ids.append(id)
        }
        for t in ids { pthread_join(t, nil) }
    }

    /// One thread: wait until all have started, then read every page once.
    func work(_ index: Int) {
        started.add(1, ordering: .acquiringAndReleasing)
        while started.load(ordering: .acquiring) < threads {
            if abandoned.load(ordering: .acquiring) { return }
            sched_yield()
        }
        let pairs = max(1, (threads + 1) / 2)
        let first = (index / 2) * (pages / pairs)
        let page = Int(HostReservation.pageSize)
        for k in 0..<pages {
            let p = (first + k) % pages
            guard let address = UnsafeRawPointer(bitPattern: UInt(base) + UInt(p * page)) else { continue }
            if memcmp(address, expected + p * page, page) != 0 {
                mismatches.add(1, ordering: .relaxed)
                _ = firstMismatch.compareExchange(expected: -1, desired: p, ordering: .relaxed)
            }
        }
    }
}

private final class _Worker {
    let touch: LazyTouch
    let index: Int
    init(touch: LazyTouch, index: Int) {
        self.touch = touch
        self.index = index
    }
}
