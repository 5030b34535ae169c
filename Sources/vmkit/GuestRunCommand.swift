import ArgumentParser
import Foundation
import GuestKVM
import GuestMemory
import GuestSnapshot

/// `vmkit guest run`: a tiny guest on real KVM (guest-memory.md §5).
struct GuestRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a tiny guest on KVM and print its exits and dirty pages.",
        discussion: """
        Creates --mem bytes of guest RAM (libvmmapi's layout: lowmem at 0, highmem from 4 GiB) \
        plus a 64 KiB boot ROM mapped read-only just below 4 GiB, loads the payload (code at \
        guest page 1; long-mode page tables at 0x9000, built by VMKit's PageTables), registers \
        every mapping as a KVM memslot (the ROM as KVM_MEM_READONLY) with the chosen dirty log, \
        and runs one vCPU until it halts. Payloads: realmode (writes 0x2000 and 0x5000, out 0x10, \
        hlt), longmode (the same in 64-bit mode), rom-write (writes the ROM and reads an unmapped \
        address: two MMIO exits), pattern (writes --touch bytes from 1 MiB, then sums them: \
        out 0x30), checksum (only sums). Dirty pages are guest page numbers (gpa >> 12): \
        "dirtyPages" is every source since the memory was created (KVM's log, the VMM's own \
        writes such as loading the payload), "guestDirtyPages" KVM's log alone. Without a usable \
        /dev/kvm one line says why, the memory is still created and loaded, and the vCPU part is \
        skipped. --json prints one object.

        Snapshots: --snapshot FILE writes a full snapshot of the guest memory after the payload \
        ran (every page holding data; holes for the rest); with --diff, a diff holding the pages \
        dirty since the restored chain's newest file (so --diff needs --restore). --restore FILE \
        (repeat it: the full snapshot first, then its diffs in order) builds the guest memory from \
        the chain — eagerly, or with --lazy through userfaultfd: the guest starts at once and each \
        page is fetched on its first touch — then creates the VM on it and runs the payload \
        without loading the memory again: a snapshot holds memory only, so the vCPU registers \
        and CPUID are set fresh, page 1 is written only if it does not already hold this \
        payload's code (checksum on a pattern snapshot), and the long-mode page tables are \
        built only if the snapshot has none. Restored pages are not dirty: after --restore, \
        "dirtyPages" is what the VMM reloaded and the guest wrote since. --mem may then be omitted (it must match the \
        snapshot if given). The report adds "snapshot" (file, kind, pages, bytes, ms) and \
        "restore" (files, lazy, faults, ms). Without KVM, the snapshot of the VMM-written \
        memory and the restore still run.

        Working sets (with --lazy): --record-working-set FILE writes, after the run, the pages \
        the restore's faults filled, in the order they were first touched (with --prefetch, the \
        prefetched set followed by the pages it missed); --prefetch FILE fills \
        such a set's pages (runs of consecutive pages in one UFFDIO_COPY each) before the guest \
        starts, so its first touches of them do not fault; with --background-prefetch it fills \
        them on a thread of its own while the guest runs. "restore" then adds "prefetched", \
        "prefetchMs" and "workingSetPages".
        """)

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Guest RAM: a non-zero multiple of 4 KiB (1M, 64M, 4G). Optional with --restore.",
                               valueName: "size"),
            transform: LayoutArguments.size)
    var mem: UInt64?

    @Option(help: ArgumentHelp("realmode, longmode, rom-write, pattern or checksum.", valueName: "payload"))
    var payload: String

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Bytes pattern/checksum cover from 1 MiB (a multiple of 4 KiB).", valueName: "size"),
            transform: LayoutArguments.size)
    var touch: UInt64 = 0

    @Option(name: .customLong("dirty-log"), help: ArgumentHelp("bitmap, manual or ring.", valueName: "mode"))
    var dirtyLog: String = "bitmap"

    @Option(help: ArgumentHelp("After the run, write a full snapshot (or with --diff a diff) to this file.",
                               valueName: "file"))
    var snapshot: String?

    @Flag(help: "Make --snapshot a diff against the restored chain (needs --restore).")
    var diff = false

    @Option(help: ArgumentHelp("Restore the guest memory from this snapshot first; repeat for a chain: the full one, then its diffs in order.",
                               valueName: "file"))
    var restore: [String] = []

    @Flag(help: "Restore lazily: each page fetched on first touch through userfaultfd (needs --restore).")
    var lazy = false

    @Option(name: .customLong("record-working-set"),
            help: ArgumentHelp("After the run, write the pages the lazy restore's faults filled, first touch first (needs --lazy).",
                               valueName: "file"))
    var recordWorkingSet: String?

    @Option(help: ArgumentHelp("Before the guest starts, fill the pages of this working set (needs --lazy).",
                               valueName: "file"))
    var prefetch: String?

    @Flag(name: .customLong("background-prefetch"),
          help: "With --prefetch: fill the set on a thread of its own while the guest runs, instead of before it starts.")
    var backgroundPrefetch = false

    @Flag(name: .customLong("json"), help: "Print one JSON object.")
    var jsonFlag = false

    @Option(help: ResultFormat.help)
    var format: ResultFormat?

    /// JSON output, asked for with --json or --format json.
    var json: Bool { jsonFlag || format == .json }

    func validate() throws {
        if diff && snapshot == nil { throw ValidationError("--diff needs --snapshot FILE") }
        if diff && restore.isEmpty {
            throw ValidationError("--snapshot --diff needs --restore FILE: a diff is taken against the restored chain")
        }
        if lazy && restore.isEmpty { throw ValidationError("--lazy needs --restore FILE") }
        if recordWorkingSet != nil && !lazy { throw ValidationError("--record-working-set needs --lazy: only a lazy restore sees the first touches") }
        if prefetch != nil && !lazy { throw ValidationError("--prefetch needs --lazy: an eager restore has filled every page") }
        if backgroundPrefetch && prefetch == nil { throw ValidationError("--background-prefetch needs --prefetch FILE") }
        if let recordWorkingSet, restore.contains(recordWorkingSet) || recordWorkingSet == snapshot {
            throw ValidationError("--record-working-set \(recordWorkingSet) is also given as another file of the run")
        }
        if let snapshot, restore.contains(snapshot) {
            throw ValidationError("--snapshot \(snapshot) is also given to --restore")
        }
        if mem == nil && restore.isEmpty { throw ValidationError("--mem SIZE is required (unless restoring with --restore)") }
        guard GuestPayload(rawValue: payload) != nil else {
            throw ValidationError("--payload '\(payload)': expected one of \(GuestPayload.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let mode = KVMDirtyLogMode(rawValue: dirtyLog), mode != .off else {
            throw ValidationError("--dirty-log '\(dirtyLog)': expected bitmap, manual or ring")
        }
        if let mem, mem == 0 || mem % GuestMemory.pageSize != 0 {
            throw ValidationError("--mem 0x\(String(mem, radix: 16)) is not a non-zero multiple of 4 KiB")
        }
        let p = GuestPayload(rawValue: payload)!
        if p.usesTouch && touch == 0 { throw ValidationError("--payload \(payload) needs --touch SIZE") }
        if !p.usesTouch && touch != 0 { throw ValidationError("--touch is for the pattern and checksum payloads") }
    }

    func run() throws {
        let report: GuestRunReport
        do {
            report = try GuestRunReport.run(mem: mem, payload: GuestPayload(rawValue: payload)!, touch: touch,
                                            dirtyLog: KVMDirtyLogMode(rawValue: dirtyLog)!,
                                            restore: restore, lazy: lazy, snapshot: snapshot, diff: diff,
                                            prefetch: prefetch, backgroundPrefetch: backgroundPrefetch,
                                            recordWorkingSet: recordWorkingSet)
        } catch {
            throw GuestCommandError(description: error.description)
        }
        print(json ? report.json() : report.text(), terminator: "")
    }
}

/// What one `vmkit guest run` did, printed as text or JSON.
struct GuestRunReport {
    /// The restore the guest started from.
    struct Restore {
        var files: [String]
        var lazy: Bool
        /// Lazy: pages served on first touch (all of them zero fills or copies) up to the report.
        var faults: UInt64 = 0
        var zeroFills: UInt64 = 0
        /// Eager: pages read from the files.
        var pagesRestored: UInt64 = 0
        var bytes: UInt64 = 0
        /// From the call to usable memory (files opened, memory made, pages read or ranges registered).
        var ms = 0.0
        var codeReloaded = false
        var tablesRebuilt = false
        /// Working sets: pages filled by --prefetch and how long it took; pages recorded by --record-working-set.
        var prefetched: UInt64?
        var prefetchMs: Double?
        var workingSetPages: Int?
    }
    var mem: UInt64
    var payload: GuestPayload
    var touch: UInt64
    var dirtyLog: KVMDirtyLogMode
    var kvmReason: String?
    var ringAcquireRelease = false
    var identityPageSize: String?
    var slots: [KVMMemorySlot] = []
    var exits: [KVMExit] = []
    var dirtyPages: [UInt64] = []
    var guestDirtyPages: [UInt64] = []
    var checksum: UInt32?
    var setupMs = 0.0, runMs = 0.0, harvestMs = 0.0
    var restore: Restore?
    var snapshot: SnapshotReport?

    static func run(mem: UInt64?, payload: GuestPayload, touch: UInt64, dirtyLog: KVMDirtyLogMode,
                    restore paths: [String] = [], lazy: Bool = false, snapshot path: String? = nil,
                    diff: Bool = false, prefetch: String? = nil, backgroundPrefetch: Bool = false,
                    recordWorkingSet: String? = nil) throws(KVMError) -> GuestRunReport {
        let clock = ContinuousClock()
        func ms(_ d: Duration) -> Double { Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) / 1e15 }
        var r = GuestRunReport(mem: mem ?? 0, payload: payload, touch: touch, dirtyLog: dirtyLog)
        let t0 = clock.now
        let guest: KVMGuest
        var restored: KVMRestoredGuest?
        var background: BackgroundPrefetch?
        var prefetchedSet: WorkingSet?
        if paths.isEmpty {
            guest = try KVMGuest(memorySize: mem ?? 0, payload: payload, touch: touch, dirtyLog: dirtyLog)
        } else {
            let g = try KVMRestoredGuest(paths: paths, lazy: lazy, payload: payload, touch: touch, dirtyLog: dirtyLog)
            restored = g
            guest = g.guest
            let ram = try KVMGuestMemory.ramSize(of: guest.memory)
            if let mem, mem != ram {
                throw .notABootableGuest(detail: "--mem \(hex(mem)) but the snapshot's guest has \(hex(ram)) bytes of RAM")
            }
            r.mem = ram
            var info = Restore(files: paths, lazy: lazy)
            info.ms = Double(g.restoreNanoseconds) / 1e6
            info.pagesRestored = g.eager?.pagesRestored ?? 0
            info.bytes = g.eager?.bytesRestored ?? 0
            info.codeReloaded = guest.resumeReport?.codeReloaded ?? false
            info.tablesRebuilt = guest.resumeReport?.tablesRebuilt ?? false
            r.restore = info
            if let prefetch, let lazy = g.lazy {
                let set: WorkingSet
                do { set = try WorkingSet(contentsOf: prefetch) } catch { throw .snapshot(error) }
                prefetchedSet = set
                if backgroundPrefetch {
                    background = BackgroundPrefetch(lazy, set)
                } else {
                    let p0 = clock.now
                    do { r.restore?.prefetched = try lazy.prefetch(set) } catch { throw .snapshot(error) }
                    r.restore?.prefetchMs = ms(clock.now - p0)
                }
            }
        }
        let t1 = clock.now
        r.setupMs = ms(t1 - t0)
        r.kvmReason = guest.kvmUnavailableReason
        r.ringAcquireRelease = guest.vm?.ringIsAcquireRelease ?? false
        r.identityPageSize = guest.identityPageSize.map { "\($0)" }
        r.slots = guest.vm?.slots ?? []
        // Exits are bounded: the pattern payload may fill a small dirty ring more than once.
        r.exits = try guest.run(maxExits: 1 << 16)
        if let background {
            let (pages, nanoseconds, error) = background.join()
            if let error { throw .snapshot(error) }
            r.restore?.prefetched = pages
            r.restore?.prefetchMs = Double(nanoseconds) / 1e6
        }
        let t2 = clock.now
        r.runMs = ms(t2 - t1)
        r.dirtyPages = try guest.dirtyPages()
        r.harvestMs = ms(clock.now - t2)
        r.guestDirtyPages = guest.guestDirtyPages
        r.checksum = guest.guestChecksum
        // The faults up to here: a full snapshot would fetch every page.
        if let stats = restored?.statistics {
            r.restore?.faults = stats.faultsServed
            r.restore?.zeroFills = stats.zeroFills
            r.restore?.bytes = stats.bytesCopied
        }
        if let recordWorkingSet, let lazy = restored?.lazy {
            // After a prefetch the faults are only what it missed: keep the set whole.
            let ws = prefetchedSet.map { $0.merging(lazy.workingSet) } ?? lazy.workingSet
            do { try ws.write(to: recordWorkingSet) } catch { throw .snapshot(error) }
            r.restore?.workingSetPages = ws.pages.count
        }
        if let path {
            if diff, let restored {
                let snapshotter = try restored.snapshotter()
                do { r.snapshot = try snapshotter.writeDiff(to: path) } catch { throw .snapshot(error) }
            } else {
                do { r.snapshot = try GuestSnapshotter(memory: guest.memory).writeFull(to: path) } catch { throw .snapshot(error) }
            }
        }
        try guest.vm?.close()
        return r
    }

    static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

    /// `1, 2, 5, 256-511`.
    static func runs(_ pages: [UInt64]) -> String {
        guard !pages.isEmpty else { return "none" }
        var parts: [String] = []
        var i = 0
        while i < pages.count {
            var j = i
            while j + 1 < pages.count && pages[j + 1] == pages[j] + 1 { j += 1 }
            parts.append(i == j ? "\(pages[i])" : "\(pages[i])-\(pages[j])")
            i = j + 1
        }
        return parts.joined(separator: ", ")
    }

    func text() -> String {
        var s = "guest: \(BenchAsCommand.size(mem)) RAM, \(BenchAsCommand.size(KVMGuestMemory.romSize)) boot ROM at "
            + "\(Self.hex(KVMGuestMemory.romAddress)); payload \(payload)"
            + (payload.usesTouch ? ", touch \(BenchAsCommand.size(touch)) from \(Self.hex(GuestPayload.dataBase))" : "")
            + "\n"
        if let restore {
            s += "restore: " + (restore.lazy ? "lazy" : "eager") + " from \(restore.files.joined(separator: " + "))"
            s += restore.lazy
                ? ": \(restore.faults) faults served (\(restore.zeroFills) zero), \(restore.bytes) bytes copied"
                : ": \(restore.pagesRestored) pages read (\(restore.bytes) bytes)"
            s += String(format: ", usable in %.3f ms\n", restore.ms)
            if let n = restore.prefetched, let t = restore.prefetchMs {
                s += String(format: "prefetch: %llu pages of the working set filled in %.3f ms\n", n, t)
            }
            if let n = restore.workingSetPages { s += "working set: \(n) pages recorded, first touch first\n" }
            s += "resume: registers set fresh; code page " + (restore.codeReloaded ? "reloaded" : "from the snapshot")
                + (payload.isLongMode ? ", page tables " + (restore.tablesRebuilt ? "rebuilt" : "from the snapshot") : "") + "\n"
        }
        if let kvmReason {
            s += "kvm: not used: \(kvmReason)\n"
            s += "vCPU part skipped: the guest memory was created and the payload loaded by the VMM\n"
        } else {
            s += "kvm: dirty log \(dirtyLog.rawValue)" + (dirtyLog == .ring ? (ringAcquireRelease ? " (acq/rel)" : " (plain)") : "")
                + (identityPageSize.map { ", identity map in \($0) pages" } ?? "") + "\n"
            for slot in slots { s += "  \(slot)\n" }
            s += "exits:\n"
            for (i, e) in exits.enumerated() { s += "  \(i + 1)  \(e)\n" }
            if let checksum { s += "guest checksum: \(Self.hex(UInt64(checksum)))\n" }
        }
        s += "dirty pages (all sources): \(Self.runs(dirtyPages))\n"
        if kvmReason == nil { s += "dirty pages (KVM's log): \(Self.runs(guestDirtyPages))\n" }
        s += String(format: "times: setup %.3f ms, run %.3f ms, harvest %.3f ms\n", setupMs, runMs, harvestMs)
        if let snapshot {
            s += "snapshot: \(snapshot.kind) -> \(snapshot.path): \(snapshot.pagesRecorded) pages recorded, "
                + "\(snapshot.pagesWritten) written (\(snapshot.bytesWritten) bytes; file \(snapshot.fileSize) bytes, "
                + "\(snapshot.allocatedBytes) allocated)"
                + String(format: " in %.3f ms\n", Double(snapshot.nanoseconds) / 1e6)
        }
        return s
    }

    func json() -> String {
        func str(_ v: String) -> String {
            var out = "\""
            for u in v.unicodeScalars {
                switch u {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
                default: out.unicodeScalars.append(u)
                }
            }
            return out + "\""
        }
        func exit(_ e: KVMExit) -> String {
            switch e {
            case let .io(port, size, dir, count, data):
                return "{\"reason\":\"io\",\"port\":\(port),\"size\":\(size),\"direction\":\"\(dir.rawValue)\","
                    + "\"count\":\(count),\"data\":\"\(KVMExit.hexBytes(data))\"}"
            case let .mmio(gpa, len, w, data):
                return "{\"reason\":\"mmio\",\"gpa\":\"\(Self.hex(gpa))\",\"length\":\(len),\"write\":\(w),"
                    + "\"data\":\"\(KVMExit.hexBytes(data))\"}"
            case let .failEntry(r, cpu):
                return "{\"reason\":\"fail-entry\",\"hardwareReason\":\"\(Self.hex(r))\",\"cpu\":\(cpu)}"
            case let .internalError(sub, data):
                return "{\"reason\":\"internal-error\",\"suberror\":\(sub),\"data\":[\(data.map { "\"\(Self.hex($0))\"" }.joined(separator: ","))]}"
            case let .unknown(r): return "{\"reason\":\"unknown\",\"hardwareReason\":\"\(Self.hex(r))\"}"
            case let .other(r): return "{\"reason\":\"other\",\"exitReason\":\(r)}"
            default: return "{\"reason\":\"\(e.reason)\"}"
            }
        }
        var f: [String] = []
        f.append("\"kvm\":\(kvmReason == nil)")
        f.append("\"kvmUnavailable\":" + (kvmReason.map(str) ?? "null"))
        f.append("\"mem\":\"\(Self.hex(mem))\"")
        f.append("\"payload\":\"\(payload.rawValue)\"")
        f.append("\"touch\":\"\(Self.hex(touch))\"")
        f.append("\"dirtyLog\":\"\(dirtyLog.rawValue)\"")
        if dirtyLog == .ring { f.append("\"ringAcquireRelease\":\(ringAcquireRelease)") }
        f.append("\"identityPageSize\":" + (identityPageSize.map(str) ?? "null"))
        f.append("\"slots\":[" + slots.map {
            "{\"slot\":\($0.slot),\"gpa\":\"\(Self.hex($0.gpa))\",\"length\":\"\(Self.hex($0.length))\","
                + "\"readonly\":\($0.readOnly),\"logDirty\":\($0.logsDirtyPages)}"
        }.joined(separator: ",") + "]")
        f.append("\"exits\":[" + exits.map(exit).joined(separator: ",") + "]")
        f.append("\"dirtyPages\":[" + dirtyPages.map(String.init).joined(separator: ",") + "]")
        f.append("\"guestDirtyPages\":[" + guestDirtyPages.map(String.init).joined(separator: ",") + "]")
        f.append("\"guestChecksum\":" + (checksum.map { String($0) } ?? "null"))
        f.append(String(format: "\"ms\":{\"setup\":%.3f,\"run\":%.3f,\"harvest\":%.3f}", setupMs, runMs, harvestMs))
        if let snapshot {
            f.append("\"snapshot\":{\"file\":\(str(snapshot.path)),\"kind\":\"\(snapshot.kind)\",\"id\":\"\(snapshot.id)\","
                     + "\"position\":\(snapshot.position),\"pagesRecorded\":\(snapshot.pagesRecorded),"
                     + "\"pagesWritten\":\(snapshot.pagesWritten),\"bytes\":\(snapshot.bytesWritten),"
                     + "\"fileSize\":\(snapshot.fileSize),\"allocatedBytes\":\(snapshot.allocatedBytes),"
                     + String(format: "\"ms\":%.3f}", Double(snapshot.nanoseconds) / 1e6))
        } else {
            f.append("\"snapshot\":null")
        }
        if let restore {
            f.append("\"restore\":{\"files\":[" + restore.files.map(str).joined(separator: ",") + "],"
                     + "\"lazy\":\(restore.lazy),\"faults\":\(restore.faults),\"zeroFills\":\(restore.zeroFills),"
                     + "\"pagesRestored\":\(restore.pagesRestored),\"bytes\":\(restore.bytes),"
                     + "\"codeReloaded\":\(restore.codeReloaded),\"tablesRebuilt\":\(restore.tablesRebuilt),"
                     + (restore.prefetched.map { "\"prefetched\":\($0)," } ?? "")
                     + (restore.prefetchMs.map { String(format: "\"prefetchMs\":%.3f,", $0) } ?? "")
                     + (restore.workingSetPages.map { "\"workingSetPages\":\($0)," } ?? "")
                     + String(format: "\"ms\":%.3f}", restore.ms))
        } else {
            f.append("\"restore\":null")
        }
        return "{" + f.joined(separator: ",") + "}\n"
    }
}

/// A working set filled on a thread of its own while the guest runs.
final class BackgroundPrefetch: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    // Written by the thread before it signals `done`; read after `join` waited for it.
    private var pages: UInt64 = 0
    private var nanoseconds: UInt64 = 0
    private var error: GuestSnapshotError?

    init(_ lazy: LazyRestore, _ set: WorkingSet) {
        Thread {
            let start = DispatchTime.now().uptimeNanoseconds
            do throws(GuestSnapshotError) { self.pages = try lazy.prefetch(set) } catch { self.error = error }
            self.nanoseconds = DispatchTime.now().uptimeNanoseconds - start
            self.done.signal()
        }.start()
    }

    /// Waits for the prefetch: pages filled, its time, and its refusal if any.
    func join() -> (pages: UInt64, nanoseconds: UInt64, error: GuestSnapshotError?) {
        done.wait()
        return (pages, nanoseconds, error)
    }
}
