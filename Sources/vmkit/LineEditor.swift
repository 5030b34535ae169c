#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The line reader of `vmkit mdb` on a terminal: BSD editline's readline
/// interface (`libedit.so.2`, loaded at run time because this machine has
/// the library but not its headers) for emacs keys, history in a file and
/// tab completion; a plain line reader when the library is missing or
/// standard input is not a terminal.
///
/// Ctrl-C drops the line being typed and prompts again, as mdb does: our
/// SIGINT handler sets a flag and writes a byte to a pipe (the self-pipe
/// trick), and editline reads its characters through our
/// `rl_getc_function`, which waits on the terminal and that pipe together
/// and answers an interrupt with end-of-file, so that `readline` returns at
/// once; the flag tells that end from Ctrl-D. Waiting on the pipe, not on
/// `EINTR`, means a Ctrl-C that lands while editline is busy between two
/// reads is not lost until the next line is typed (and does not drop that
/// line). editline is told not to handle signals itself. The bytes are read
/// from a second, non-blocking descriptor of the terminal: a Ctrl-C makes
/// the line discipline discard pending input, so bytes that `poll` reported
/// may be gone by the `read`, and a blocking `read` would then sit until the
/// next key, with the interrupt already handled and neither "^C" nor the
/// prompt shown.
///
/// Ctrl-D typed before editline is ready is kept, too. editline prints its
/// prompt and only then leaves canonical mode, and between two prompts (while
/// a command runs) the terminal is canonical: a Ctrl-D arriving then would be
/// the line discipline's end-of-file mark, which reads back as a NUL byte
/// once editline switches over, so the session would not end. While the
/// editor is in use the terminal's `VEOF` character is therefore disabled:
/// Ctrl-D stays an ordinary byte, queued until editline reads it as its own
/// delete-or-end-of-file key. The terminal's settings are put back when the
/// session ends, at exit, and on SIGTERM, SIGHUP and SIGQUIT.
final class LineEditor {
    enum Input: Equatable {
        case line(String)
        case interrupted
        case endOfFile
    }

    private let historyPath: String?
    private let library: EditLine?

    /// `completer` gets the line before the word under the cursor and the
    /// word, and returns the words that may replace it; `historyPath` is read
    /// at start and written as lines are added.
    init(completer: @escaping @Sendable (_ before: String, _ word: String) -> [String], historyPath: String?) {
        self.historyPath = historyPath
        library = isatty(STDIN_FILENO) != 0 ? EditLine.load() : nil
        LineEditorState.completer.withLock { $0 = completer }
        LineEditorState.installInterruptHandler()
        if library != nil { LineEditorState.openTerminal() }
        // Before editline's first prompt, which reads the settings it restores between lines.
        if library != nil { TerminalEndOfFile.disable() }
        if let library, let historyPath {
            library.usingHistory()
            _ = historyPath.withCString { library.readHistory($0) }
        }
    }

    /// The session is over: the terminal's settings as they were before.
    deinit { TerminalEndOfFile.restore() }

    /// Whether editline is in use (a terminal and the library found).
    var isEditing: Bool { library != nil }


    /// One line, without its newline.
    func read(prompt: String) -> Input {
        // A Ctrl-C pressed before this prompt (during a command) is spent;
        // cleared before the pipe is emptied, so that one landing between
        // the two still counts, at this prompt.
        LineEditorState.interrupted.store(false, ordering: .relaxed)
        LineEditorState.drainInterrupts()
        guard let library else {
            writeOut(prompt)
            guard let line = Swift.readLine(strippingNewline: true) else {
                return LineEditorState.interrupted.load(ordering: .relaxed) ? .interrupted : .endOfFile
            }
            return .line(line)
        }
        let raw = prompt.withCString { library.readline($0) }
        if LineEditorState.interrupted.load(ordering: .relaxed) {
            if let raw { free(raw) }
            writeOut("^C\n")
            return .interrupted
        }
        guard let raw else { return .endOfFile }
        defer { free(raw) }
        let line = String(cString: raw)
        let entry = line.trimmingCharacters(in: " \t")
        if !entry.isEmpty {
            _ = String(entry).withCString { library.addHistory($0) }
            if let historyPath { _ = historyPath.withCString { library.writeHistory($0) } }
        }
        return .line(line)
    }

    private func writeOut(_ text: String) {
        guard !text.isEmpty else { return }
        _ = text.withCString { Glibc.write(STDOUT_FILENO, $0, strlen($0)) }
    }
}

/// The terminal's end-of-file character, off while the line editor runs
/// (see ``LineEditor``) and back on however the process ends.
enum TerminalEndOfFile {
    /// The settings before ``disable()``; read by signal handlers, so kept
    /// in memory that is never freed or moved.
    nonisolated(unsafe) static let saved = UnsafeMutablePointer<termios>.allocate(capacity: 1)
    static let isDisabled = Atomic<Bool>(false)
    /// `_POSIX_VDISABLE`, a character macro Swift does not import.
    #if canImport(Darwin)
    static let noCharacter: cc_t = 0xFF
    #else
    static let noCharacter: cc_t = 0
    #endif

    /// Disables `VEOF` on standard input (a terminal), once.
    static func disable() {
        guard !isDisabled.load(ordering: .relaxed), tcgetattr(STDIN_FILENO, saved) == 0 else { return }
        var t = saved.pointee
        withUnsafeMutableBytes(of: &t.c_cc) { $0[Int(VEOF)] = noCharacter }
        guard tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0 else { return }
        isDisabled.store(true, ordering: .relaxed)
        atexit { TerminalEndOfFile.restore() }
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { signal in
            TerminalEndOfFile.restore()
            // Then die of the signal, as without this handler.
            Glibc.signal(signal, SIG_DFL)
            raise(signal)
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        for sig in [SIGTERM, SIGHUP, SIGQUIT] { sigaction(sig, &action, nil) }
    }

    /// Puts back the settings from before ``disable()``: `VEOF`, and, when
    /// a signal ends the process at the prompt, canonical mode and echo,
    /// which editline would otherwise leave off. Async-signal-safe.
    static func restore() {
        guard isDisabled.exchange(false, ordering: .relaxed) else { return }
        tcsetattr(STDIN_FILENO, TCSANOW, saved)
    }
}

/// What the C callbacks need: they cannot capture, so it lives here.
enum LineEditorState {
    static let interrupted = Atomic<Bool>(false)
    static let completer = LockedCompleter()
    /// The candidates of the completion in progress (editline asks for them one by one).
    static let candidates = LockedValue<[String]>([])

    /// The self-pipe: the SIGINT handler writes to `[1]`, the reader polls `[0]`.
    nonisolated(unsafe) static var wakeup: (Int32, Int32) = (-1, -1)

    /// The terminal opened again with `O_NONBLOCK`, its own open file
    /// description so that standard input, shared with the shell, stays
    /// blocking; -1 if it could not be opened (then reads are guarded by
    /// `FIONREAD` instead, which leaves a far smaller window).
    nonisolated(unsafe) static var terminal: Int32 = -1

    /// Opens ``terminal``, once.
    static func openTerminal() {
        guard terminal < 0, let name = ttyname(STDIN_FILENO) else { return }
        terminal = open(name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
    }

    /// SIGINT sets `interrupted` and makes the wake-up pipe readable (no
    /// SA_RESTART, so a plain blocked `read` is interrupted too), once per
    /// session.
    static func installInterruptHandler() {
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            wakeup = (fds[0], fds[1])
        }
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            LineEditorState.interrupted.store(true, ordering: .relaxed)
            var byte: UInt8 = 1
            let saved = errno
            _ = write(LineEditorState.wakeup.1, &byte, 1)
            errno = saved
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGINT, &action, nil)
        // A parent may have started us with SIGINT blocked; a prompt needs it.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
    }

    /// Empties the wake-up pipe.
    static func drainInterrupts() {
        var sink = [UInt8](repeating: 0, count: 64)
        guard wakeup.0 >= 0 else { return }
        while read(wakeup.0, &sink, sink.count) > 0 {}
    }

    /// One byte from the terminal, or -1 at end of file, on an error, or
    /// when Ctrl-C was pressed (then `interrupted` is set).
    static func readByte() -> Int32 {
        let input = terminal >= 0 ? terminal : STDIN_FILENO
        while true {
            if interrupted.load(ordering: .relaxed) { return -1 }
            var fds = [pollfd(fd: input, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wakeup.0, events: Int16(POLLIN), revents: 0)]
            let n = poll(&fds, wakeup.0 >= 0 ? 2 : 1, -1)
            if n < 0 { if errno == EINTR { continue }; return -1 }
            if fds[1].revents != 0 { drainInterrupts(); if interrupted.load(ordering: .relaxed) { return -1 } }
            guard fds[0].revents != 0 else { continue }
            if input == STDIN_FILENO {
                // Nothing to read after all (a Ctrl-C flushed it): poll again — unless the
                // terminal hung up or failed, which the read below must see, or this would spin.
                var pending: Int32 = 0
                let gone = fds[0].revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0
                if !gone && ioctl(input, UInt(FIONREAD), &pending) == 0 && pending == 0 { continue }
            }
            var byte: UInt8 = 0
            let r = read(input, &byte, 1)
            if r == 1 { return Int32(byte) }
            // EAGAIN: what poll saw was flushed by a Ctrl-C; its signal decides.
            if r < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            return -1
        }
    }
}

/// A small pthread lock around a value the C callbacks read.
final class LockedValue<T>: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var value: T
    init(_ value: T) { self.value = value; pthread_mutex_init(&mutex, nil) }
    func withLock<R>(_ body: (inout T) -> R) -> R {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body(&value)
    }
}

/// The completer and the candidates of the completion in progress.
final class LockedCompleter: @unchecked Sendable {
    typealias Completer = @Sendable (String, String) -> [String]
    private let box = LockedValue<Completer>({ _, _ in [] })
    func withLock<R>(_ body: (inout Completer) -> R) -> R { box.withLock(body) }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> Substring {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s.removeFirst() }
        while let c = s.last, set.contains(c) { s.removeLast() }
        return s
    }
}

/// editline's readline-compatible entry points, found with `dlsym`.
struct EditLine {
    typealias ReadlineFn = @convention(c) (UnsafePointer<CChar>?) -> UnsafeMutablePointer<CChar>?
    typealias StringIntFn = @convention(c) (UnsafePointer<CChar>?) -> Int32
    typealias VoidFn = @convention(c) () -> Void
    typealias GetcFn = @convention(c) (UnsafeMutableRawPointer?) -> Int32
    typealias GeneratorFn = @convention(c) (UnsafePointer<CChar>?, Int32) -> UnsafeMutablePointer<CChar>?
    typealias MatchesFn = @convention(c) (UnsafePointer<CChar>?, GeneratorFn?) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
    typealias AttemptFn = @convention(c) (UnsafePointer<CChar>?, Int32, Int32) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?

    let readline: ReadlineFn
    let addHistory: StringIntFn
    let readHistory: StringIntFn
    let writeHistory: StringIntFn
    let usingHistory: VoidFn

    /// The matcher `rl_completion_matches`, for the attempt callback.
    nonisolated(unsafe) static var matches: MatchesFn?
    /// `rl_line_buffer`: the line being edited, for the completer's context.
    nonisolated(unsafe) static var lineBuffer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
    /// `rl_attempted_completion_over`.
    nonisolated(unsafe) static var attemptOver: UnsafeMutablePointer<Int32>?

    static func load() -> EditLine? {
        guard let handle = dlopen("libedit.so.2", RTLD_NOW | RTLD_LOCAL) ?? dlopen("libedit.so", RTLD_NOW | RTLD_LOCAL) else {
            return nil
        }
        func symbol<T>(_ name: String, _: T.Type) -> T? {
            guard let p = dlsym(handle, name) else { return nil }
            return unsafeBitCast(p, to: T.self)
        }
        guard let readline = symbol("readline", ReadlineFn.self),
              let addHistory = symbol("add_history", StringIntFn.self),
              let readHistory = symbol("read_history", StringIntFn.self),
              let writeHistory = symbol("write_history", StringIntFn.self),
              let usingHistory = symbol("using_history", VoidFn.self) else { return nil }
        // Variables of the library, set before the first readline.
        if let catchSignals = dlsym(handle, "rl_catch_signals") {
            catchSignals.assumingMemoryBound(to: Int32.self).pointee = 0
        }
        if let getc = dlsym(handle, "rl_getc_function") {
            let fn: GetcFn = { _ in LineEditorState.readByte() }
            getc.assumingMemoryBound(to: GetcFn?.self).pointee = fn
        }
        matches = symbol("rl_completion_matches", MatchesFn.self)
        lineBuffer = dlsym(handle, "rl_line_buffer")?.assumingMemoryBound(to: UnsafeMutablePointer<CChar>?.self)
        // No file-name completion when no mdb word fits.
        attemptOver = dlsym(handle, "rl_attempted_completion_over")?.assumingMemoryBound(to: Int32.self)
        if matches != nil, let attempt = dlsym(handle, "rl_attempted_completion_function") {
            let fn: AttemptFn = { text, start, _ in
                let word = text.map { String(cString: $0) } ?? ""
                var before = ""
                if let buffer = EditLine.lineBuffer?.pointee, start > 0 {
                    before = String(decoding: UnsafeRawBufferPointer(start: buffer, count: Int(start)), as: UTF8.self)
                }
                let complete = LineEditorState.completer.withLock { $0 }
                let found = complete(before, word)
                LineEditorState.candidates.withLock { $0 = found }
                EditLine.attemptOver?.pointee = 1
                let generator: GeneratorFn = { _, state in
                    let index = Int(state)
                    return LineEditorState.candidates.withLock { words in
                        index < words.count ? strdup(words[index]) : nil
                    }
                }
                return EditLine.matches?(text, generator)
            }
            attempt.assumingMemoryBound(to: AttemptFn?.self).pointee = fn
        }
        // mdb words run together with colons and dollars: break only on blanks and pipes.
        if let breaks = dlsym(handle, "rl_basic_word_break_characters") {
            breaks.assumingMemoryBound(to: UnsafePointer<CChar>?.self).pointee = UnsafePointer(strdup(" \t\n|!"))
        }
        if let breaks = dlsym(handle, "rl_completer_word_break_characters") {
            breaks.assumingMemoryBound(to: UnsafePointer<CChar>?.self).pointee = UnsafePointer(strdup(" \t\n|!"))
        }
        return EditLine(readline: readline, addHistory: addHistory, readHistory: readHistory,
                        writeHistory: writeHistory, usingHistory: usingHistory)
    }
}
