import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `vmkit mdb` at its prompt on a pseudo-terminal, as a user types at it:
/// tab completion of dcmds and walkers, the up arrow recalling history (kept
/// in `$HOME/.vmkit_history`), Ctrl-C dropping the line and keeping the
/// session, the `--More--` pager and `::set +o pager`, and Ctrl-D leaving.
/// The prompt's line editing is BSD editline loaded at run time: without
/// `libedit.so.2` these tests are skipped, saying why.
@Suite("vmkit mdb at a terminal", .serialized)
struct MdbTerminalTests {
    static let hasEditline: Bool = {
        guard let h = dlopen("libedit.so.2", RTLD_NOW | RTLD_LOCAL) else {
            print("MdbTerminalTests: skipped: libedit.so.2 is not installed, so vmkit mdb reads plain lines")
            return false
        }
        dlclose(h)
        return true
    }()

    @Test("completion, history, Ctrl-C and Ctrl-D", .enabled(if: hasEditline))
    func promptEditing() throws {
        let home = try Self.temporaryHome()
        let t = try PseudoTerminal(MdbCommandTests.boot, home: home)
        defer { t.close() }
        _ = try t.expect("> ", timeout: 60)

        // Tab completes a dcmd; a walker's name after ::walk. Each command's
        // output is awaited by its content, then the next prompt (editline
        // redraws "> " while completing, so a prompt alone proves nothing).
        t.send("::memst\t\n")
        _ = try t.expect("Page Summary")
        _ = try t.expect("> ")
        t.send("kas::walk se\t| ::seg\n")
        let segs = try t.expect("segkmem_ops")
        #expect(!segs.contains("unknown walker"), "the walker's name was completed: \(segs)")
        _ = try t.expect("> ")
        // An ambiguous ::vm lists its completions on a second tab.
        t.send("::vm\t\t")
        let listed = try t.expect("::vmem_seg")
        #expect(listed.contains("::vmem"))
        t.send("\n")
        _ = try t.expect("VMMPAGES")
        _ = try t.expect("> ")

        // Ctrl-C drops the half-typed line and prompts again; the session goes on.
        t.send("::vmem junk half typed")
        _ = try t.expect("typed")
        t.send("\u{03}")
        _ = try t.expect("^C\r\n")
        _ = try t.expect("> ")
        t.send("::walkers\n")
        let next = try t.expect("vmem_span")
        #expect(!next.contains("Usage:"), "the dropped line did not run: \(next)")
        _ = try t.expect("> ")

        // The up arrow brings ::walkers back.
        t.send("\u{1b}[A")
        _ = try t.expect("::walkers")
        t.send("\n")
        _ = try t.expect("vmem_span")
        _ = try t.expect("> ")

        // Ctrl-D leaves with status 0 and the history is on disk. It is
        // sent at once: the prompt is printed before editline leaves
        // canonical mode, and the Ctrl-D must count even if it lands first.
        t.send("\u{04}")
        let status = try t.waitForExit()
        #expect(status == 0, "exit status \(status); what it printed last: \(t.unread)")
        let history = try String(contentsOf: home.appendingPathComponent(".vmkit_history"), encoding: .utf8)
        #expect(history.contains("::walkers") && history.contains("::memstat"))
        #expect(!history.contains("junk"), "a dropped line is not history")
    }

    /// The line discipline answers Ctrl-C by discarding pending input, so
    /// bytes the editor's `poll` saw can be gone by its `read`. A blocking
    /// read then waited for the next key with the interrupt already handled:
    /// no "^C", no prompt (about one Ctrl-C in thirty on a busy machine).
    @Test("Ctrl-C right behind typed text always gives ^C and a fresh prompt", .enabled(if: hasEditline))
    func interruptRacingTypedText() throws {
        let home = try Self.temporaryHome()
        let t = try PseudoTerminal(MdbCommandTests.boot, home: home)
        defer { t.close() }
        _ = try t.expect("> ", timeout: 60)
        for round in 0..<120 {
            // Two writes, so that the text can wake the reader before the Ctrl-C lands.
            t.send("::vmem junk \(round)")
            if round % 2 == 1 { usleep(UInt32(round % 20 * 50)) }
            t.send("\u{03}")
            _ = try t.expect("^C\r\n", timeout: 10)
            _ = try t.expect("> ")
        }
        t.send("::walkers\n")
        let next = try t.expect("vmem_span")
        #expect(!next.contains("Usage:"), "no dropped line ran: \(next)")
        _ = try t.expect("> ")
        t.send("\u{04}")
        let status = try t.waitForExit()
        #expect(status == 0, "exit status \(status); what it printed last: \(t.unread)")
        let history = try String(contentsOf: home.appendingPathComponent(".vmkit_history"), encoding: .utf8)
        #expect(!history.contains("junk"), "a dropped line is not history")
    }

    @Test("Ctrl-D typed while a command runs ends the session, and the terminal's VEOF is put back", .enabled(if: hasEditline))
    func endOfFileTypedAhead() throws {
        let t = try PseudoTerminal(MdbCommandTests.boot, home: try Self.temporaryHome())
        defer { t.close() }
        _ = try t.expect("> ", timeout: 60)
        // The pseudo-terminal starts with Ctrl-D (4) as VEOF; the editor turned it off.
        #expect(t.endOfFileCharacter == 0, "VEOF is disabled while the editor runs")
        // While the shell command sleeps, editline has given the terminal
        // back in canonical mode: a Ctrl-D there was the line discipline's
        // end-of-file mark, which editline read as a NUL and ignored.
        t.send("::walkers ! sleep 1\n")
        // Waited for, not assumed after a fixed pause: a busy machine may
        // take a while to read the line.
        for _ in 0..<2000 where !t.isCanonical { usleep(5_000) }
        #expect(t.isCanonical, "the command runs with the terminal in canonical mode")
        t.send("\u{04}")
        let status = try t.waitForExit()
        #expect(status == 0, "exit status \(status); what it printed last: \(t.unread)")
        #expect(t.endOfFileCharacter == 4, "VEOF is back after the session")
    }

    @Test("SIGTERM at the prompt gives the terminal back as it was and ends the process by the signal", .enabled(if: hasEditline))
    func terminatedAtPrompt() throws {
        let t = try PseudoTerminal(MdbCommandTests.boot, home: try Self.temporaryHome())
        defer { t.close() }
        _ = try t.expect("> ", timeout: 60)
        // editline holds the terminal in its raw mode while it waits for a line.
        for _ in 0..<4000 where t.isCanonical { usleep(5_000) }
        #expect(!t.isCanonical, "editline took the terminal")
        kill(t.pid, SIGTERM)
        let status = try t.waitForExit()
        #expect(status == 128 + SIGTERM, "exit status \(status); what it printed last: \(t.unread)")
        #expect(t.isCanonical, "canonical mode is back")
        #expect(t.endOfFileCharacter == 4, "Ctrl-D is VEOF again")
    }

    @Test("long output pauses at --More-- on a small terminal until ::set +o pager", .enabled(if: hasEditline))
    func pager() throws {
        let home = try Self.temporaryHome()
        let t = try PseudoTerminal(MdbCommandTests.boot, home: home, rows: 8)
        defer { t.close() }
        _ = try t.expect("> ", timeout: 60)
        t.send("::vmem\n")
        let first = try t.expect("--More--")
        #expect(first.split(separator: "\n").filter { $0.contains(" heap") || $0.hasPrefix("0") || $0.hasPrefix("f") }.count <= 7)
        t.send(" ")
        _ = try t.expect("--More--")
        t.send("q")
        _ = try t.expect("> ")
        t.send("::set +o pager\n::vmem\n")
        let all = try t.expect("segkp ")
        #expect(!all.contains("--More--"))
        t.send("$q\n")
        let status = try t.waitForExit()
        #expect(status == 0, "exit status \(status); what it printed last: \(t.unread)")
    }

    static func temporaryHome() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("vmkit-mdb-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// A child process whose controlling terminal is a fresh pseudo-terminal:
/// the child starts a session (`POSIX_SPAWN_SETSID`) and opens the
/// terminal's other side as 0, 1 and 2, so that Ctrl-C written to the
/// master reaches it as SIGINT. Reads wait with `poll` and give up after a
/// timeout, with what was seen in the error.
final class PseudoTerminal {
    struct Timeout: Error, CustomStringConvertible {
        let waitingFor: String
        let seen: String
        var description: String { "timed out waiting for \(waitingFor.debugDescription); saw \(seen.debugDescription)" }
    }

    let master: Int32
    let pid: pid_t
    private var buffer: [UInt8] = []
    private var exited: Int32?

    init(_ arguments: [String], home: URL, rows: UInt16 = 0) throws {
        // Glibc's Swift module leaves out the XSI pseudo-terminal calls and
        // POSIX_SPAWN_SETSID (they sit behind _XOPEN_SOURCE / _GNU_SOURCE):
        // take the calls from the C library by name, the flag by value.
        typealias OpenFn = @convention(c) (Int32) -> Int32
        typealias FdFn = @convention(c) (Int32) -> Int32
        typealias NameFn = @convention(c) (Int32) -> UnsafeMutablePointer<CChar>?
        func libc<T>(_ name: String, _: T.Type) -> T? { dlsym(nil, name).map { unsafeBitCast($0, to: T.self) } }
        guard let openpt = libc("posix_openpt", OpenFn.self), let grant = libc("grantpt", FdFn.self),
              let unlock = libc("unlockpt", FdFn.self), let ptsname = libc("ptsname", NameFn.self) else {
            throw POSIXError(.ENOSYS)
        }
        master = openpt(O_RDWR | O_NOCTTY)
        guard master >= 0, grant(master) == 0, unlock(master) == 0, let name = ptsname(master) else {
            throw POSIXError(.ENOTTY)
        }
        let slave = String(cString: name)
        if rows > 0 {
            var size = winsize(ws_row: rows, ws_col: 120, ws_xpixel: 0, ws_ypixel: 0)
            _ = ioctl(master, UInt(TIOCSWINSZ), &size)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addclose(&actions, master)
        posix_spawn_file_actions_addopen(&actions, 0, slave, O_RDWR, 0)
        posix_spawn_file_actions_adddup2(&actions, 0, 1)
        posix_spawn_file_actions_adddup2(&actions, 0, 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // setsid() before the file actions: opening the slave makes it the controlling terminal.
        // The test runner's threads may block or ignore SIGINT; the child starts as a shell would start it.
        let setsid: Int16 = 0x80, setSignalMask: Int16 = 0x08, setSignalDefault: Int16 = 0x04   // glibc's spawn.h
        posix_spawnattr_setflags(&attributes, setsid | setSignalMask | setSignalDefault)
        var signals = sigset_t()
        sigemptyset(&signals)
        posix_spawnattr_setsigmask(&attributes, &signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &signals)
        let binary = CommandLineTests.binary.path
        let words: [String] = [binary] + arguments
        // The sanitizers' options too, when the tests run under one: the
        // child is built with it, and its leak check at exit must use the
        // suppressions .ci/run gives the test process.
        let names: [String] = ["ASAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS"]
        let sanitizer: [String] = names.compactMap { name in
            guard let value = getenv(name) else { return nil }
            return name + "=" + String(cString: value)
        }
        let variables: [String] = ["HOME=" + home.path, "TERM=xterm", "PATH=/usr/bin:/bin", "LANG=C.UTF-8"] + sanitizer
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        let env: [UnsafeMutablePointer<CChar>?] = variables.map { strdup($0) } + [nil]
        defer { (argv + env).forEach { free($0) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, binary, &actions, &attributes, argv, env)
        guard rc == 0 else { Glibc.close(master); throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EIO) }
        pid = child
    }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            off += n
        }
    }

    /// The slave's VEOF character (the master shares its termios); nil if unreadable.
    var endOfFileCharacter: UInt8? {
        var mode = termios()
        guard tcgetattr(master, &mode) == 0 else { return nil }
        return withUnsafeBytes(of: mode.c_cc) { $0[Int(VEOF)] }
    }

    /// Whether the line discipline is in canonical mode.
    var isCanonical: Bool {
        var mode = termios()
        return tcgetattr(master, &mode) == 0 && mode.c_lflag & tcflag_t(ICANON) != 0
    }

    /// The output up to and including the first `needle` not yet consumed.
    func expect(_ needle: String, timeout: Double = 20) throws -> String {
        let target = Array(needle.utf8)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let r = find(target) {
                let text = String(decoding: buffer[..<r], as: UTF8.self)
                buffer.removeFirst(r)
                return text
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0, readSome(milliseconds: Int32(min(left, 1) * 1000)) else {
                if left > 0 && exited == nil { continue }
                throw Timeout(waitingFor: needle, seen: String(decoding: buffer, as: UTF8.self))
            }
        }
    }

    private func find(_ target: [UInt8]) -> Int? {
        guard buffer.count >= target.count else { return nil }
        for i in 0...(buffer.count - target.count) where buffer[i] == target[0] {
            if Array(buffer[i..<(i + target.count)]) == target { return i + target.count }
        }
        return nil
    }

    /// Reads what is there within `milliseconds`; false when nothing came.
    private func readSome(milliseconds: Int32) -> Bool {
        var p = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, milliseconds) > 0 else { return false }
        var chunk = [UInt8](repeating: 0, count: 4096)
        let n = read(master, &chunk, chunk.count)
        guard n > 0 else {
            if exited == nil { reap(block: false) }
            return false
        }
        buffer += chunk[..<n]
        return true
    }

    private func reap(block: Bool) {
        var status: Int32 = 0
        if waitpid(pid, &status, block ? 0 : WNOHANG) == pid {
            exited = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        }
    }

    /// The output not yet consumed by ``expect(_:timeout:)`` (after an
    /// exit: what the process printed last, a sanitizer's report included).
    var unread: String { String(decoding: buffer, as: UTF8.self) }

    /// The exit status, waiting up to `timeout` seconds (then killing it).
    func waitForExit(timeout: Double = 20) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while exited == nil && Date() < deadline {
            _ = readSome(milliseconds: 100)
            reap(block: false)
        }
        guard let exited else {
            kill(pid, SIGKILL)
            reap(block: true)
            throw Timeout(waitingFor: "exit", seen: String(decoding: buffer, as: UTF8.self))
        }
        return exited
    }

    func close() {
        if exited == nil {
            kill(pid, SIGKILL)
            reap(block: true)
        }
        Glibc.close(master)
    }
}
