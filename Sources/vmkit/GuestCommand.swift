import ArgumentParser
import Foundation
import GuestMemory

/// `vmkit guest`: guest memory for VMMs (guest-memory.md).
struct GuestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "guest",
        abstract: "Guest memory for VMMs: replay a guest-memory trace, or show a standard guest's layout.",
        subcommands: [GuestReplayCommand.self, GuestLayoutCommand.self, GuestRunCommand.self])
}

/// Why a guest command cannot run (an unreadable trace, a bad --mem):
/// printed as `Error: ...` without the usage, exit status 1.
struct GuestCommandError: Error, CustomStringConvertible {
    var description: String
}

/// `vmkit guest replay FILE|-`.
struct GuestReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Run a guest-memory trace and print each result (see guest-memory.md §7).",
        discussion: """
        One command a line: vm, memseg, memmap, munmap, reset, translate, write, read, touch, dirty, \
        maps. '#' starts a comment; numbers are decimal or 0x hex, with K/M/G/T suffixes. The guest \
        lives in real host memory (memfd segments in one reserved window); no KVM is needed. Output \
        lines have fixed shapes that tools parse: 'memseg ID error KIND', 'memmap 0xGPA error KIND', \
        'munmap 0xGPA error KIND' (KIND: invalid, exists, nospace, fault; nothing on success), \
        'translate 0xGPA seg=ID off=0xOFF' or 'translate 0xGPA fault', 'read 0xGPA HEXBYTES' or \
        'read 0xGPA fault', 'write 0xGPA fault', 'touch 0xGPA ok' or 'touch 0xGPA fault' (a guest \
        access through the nested page table, in the vm line's format and A/D mode), \
        'dirty 0xGPA P1 P2 ...' or 'dirty 0xGPA -' (pages written by the VMM or by a guest touch), \
        'map 0xGPA 0xLEN seg=ID off=0xOFF prot=PROT[ wired]' for maps, and 'line N: error: MESSAGE' \
        for a line that cannot be run; the replay goes on after it. \
        Exits 0 unless the trace cannot be read.
        """)

    @Argument(help: ArgumentHelp("The trace file, or '-' for standard input (files, pipes and FIFOs are read to the end).",
                                 valueName: "file"))
    var file: String

    func run() throws {
        let text = try Self.readTrace(file)
        var out = StandardOutput()
        var runner = GuestTraceRunner(guestSpace: GuestTrace.guestSpace(for: text)) { out.write($0 + "\n") }
        runner.run(text)
        runner.finish()
        out.flush()
    }

    /// Reads `path` (or standard input for `-`) to end of file through its
    /// descriptor, so pipes, FIFOs and /proc files work as well as files.
    static func readTrace(_ path: String) throws -> String {
        let name = path == "-" ? "standard input" : "'\(path)'"
        let fd: Int32
        if path == "-" {
            fd = 0
        } else {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw GuestCommandError(description: "cannot read trace file \(name): \(String(cString: strerror(errno)))")
            }
        }
        defer { if fd != 0 { close(fd) } }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress!, $0.count) }
            if n > 0 { data.append(contentsOf: chunk[0..<n]); continue }
            if n == 0 { break }
            if errno == EINTR { continue }
            throw GuestCommandError(description: "cannot read trace file \(name): \(String(cString: strerror(errno)))")
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// `vmkit guest layout --mem SIZE [--json]`.
struct GuestLayoutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "layout",
        abstract: "Print a standard guest's segments, mappings, host reservation and guard regions.",
        discussion: """
        Lays out a guest of --mem bytes of RAM as libvmmapi's vm_setup_memory does: one sysmem \
        segment (id 0), up to 3 GiB mapped rwx at guest-physical 0 (lowmem), the rest at 4 GiB \
        (highmem), the 32-bit PCI hole between left unmapped. The guest is really created: the \
        host reservation (2 MiB aligned, with a 4 MiB guard region on each side) is this run's, so \
        its addresses change from run to run; no memory is touched. --json prints one JSON object \
        with addresses and sizes as "0x..." strings.
        """)

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Guest RAM: a non-zero multiple of 4 KiB (4096, 0x1000, 512M, 1G, 8G).", valueName: "size"),
            transform: LayoutArguments.size)
    var mem: UInt64

    @Flag(name: .customLong("json"), help: "Print one JSON object instead of a table.")
    var jsonFlag = false

    @Option(help: ResultFormat.help)
    var format: ResultFormat?

    /// JSON output, asked for with --json or --format json.
    var json: Bool { jsonFlag || format == .json }

    /// The most RAM a standard guest holds: highmem from 4 GiB must end by 2^47.
    static let maxMem = GuestMemory.addressLimit - (GuestMemory.highmemBase - GuestMemory.defaultLowmemLimit)

    func validate() throws {
        if mem == 0 { throw ValidationError("--mem must not be 0") }
        if mem % GuestMemory.pageSize != 0 {
            throw ValidationError("--mem 0x\(String(mem, radix: 16)) is not a multiple of 4 KiB")
        }
        if mem > Self.maxMem {
            throw ValidationError("--mem 0x\(String(mem, radix: 16)) is above 0x\(String(Self.maxMem, radix: 16)) "
                                  + "(2^47 - 1 GiB: highmem starts at 4 GiB and ends by 2^47)")
        }
    }

    func run() throws {
        let memory: GuestMemory
        do {
            memory = try GuestMemory.standard(size: mem)
        } catch {
            throw GuestCommandError(description: "--mem 0x\(String(mem, radix: 16)): \(error)")
        }
        defer { try? memory.destroy() }
        let report = GuestLayoutReport(memory)
        print(json ? report.json() : report.table(), terminator: "")
    }
}
