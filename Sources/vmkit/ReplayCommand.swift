import ArgumentParser
import Foundation
import Vmem

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Run a vmem trace and print each result (see vmem.md §5).",
        discussion: """
        Each line of the trace is one command: create, add, alloc, xalloc, free, stats, walk, \
        verify, destroy. '#' starts a comment. Numbers are decimal or 0x hex, sizes may \
        carry K/M/G/T suffixes. 'create ... qcache=N' is in bytes, or in quanta when N is 1 to 16 \
        and not a multiple of the quantum ('qcache=8' on a 4K arena caches 1 to 8 pages). Output lines have fixed shapes that tools parse: \
        'TAG 0xADDR' or 'TAG fail' for allocations, 'TAG error KIND' for failed frees, \
        'stats NAME inuse=N total=N imported=N allocs=N frees=N fails=N', 'seg KIND 0xSTART 0xEND', \
        'verify NAME ok', 'destroy NAME leaked=BYTES segments=N', and 'line N: error: MESSAGE' \
        for a line that cannot be run. Files, pipes and FIFOs are read to the end. Exits 0 unless the file cannot be read or standard output cannot be written.
        """)

    @Argument(help: "The trace file, or '-' for standard input.")
    var file: String

    func run() throws {
        var out = StandardOutput()
        var replayer = TraceReplayer { line in out.write(line + "\n") }
        if file == "-" {
            while let line = readLine(strippingNewline: true) { replayer.run(line: line) }
        } else {
            // Through the descriptor, so `<(cat t)` and FIFOs work, and a
            // refusal says why (no such file, permission, a directory).
            replayer.run(try GuestReplayCommand.readTrace(file))
        }
        out.flush()
    }
}

/// Buffered standard output: replaying a million-line trace line by line
/// through `print` would spend its time in locking.
struct StandardOutput {
    private var buffer: [UInt8] = []
    init() { buffer.reserveCapacity(1 << 16) }
    mutating func write(_ s: String) {
        buffer.append(contentsOf: s.utf8)
        if buffer.count >= 1 << 16 { flush() }
    }
    mutating func flush() {
        buffer.withUnsafeBufferPointer { p in
            var off = 0
            while off < p.count {
                let n = Foundation.write(1, p.baseAddress! + off, p.count - off)
                if n < 0, errno == EINTR { continue }
                if n <= 0 { StandardOutputCheck.recordFailure(errno: errno); break }
                off += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}
