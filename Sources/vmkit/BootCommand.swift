import ArgumentParser
import Foundation
import Inspect
import KernelLayout
import ModelKernel
import Vmem

/// `vmkit boot`: boots the model kernel, runs its consumers, prints
/// `::memstat`, `::vmem` and `kas::walk seg | ::seg`.
struct BootCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "boot",
        abstract: "Boot a model illumos kernel and show its memory as mdb would.",
        discussion: """
            Computes the layout, attaches the kernel segments to kas in startup order, creates the \
            arena tree, then runs the usual consumers (kmem allocations, thread and LWP stacks, ZFS \
            buffers, a file read through segmap) and any guests (--guests N --guest-size SIZE: GuestMemory \
            guests whose system memory comes from vmm_alloc_arena, pages on kvps[KV_VVP]; post-12608 only). \
            Prints ::memstat, ::vmem and kas::walk seg | ::seg, and ::vm when there are guests. Page \
            metadata exists only for pages in use, one record per run of pages that share a state, so \
            2T with four 64G guests boots in milliseconds and a few MiB of host memory. A step still \
            running after a second shows its progress on stderr when that is a terminal.
            """)

    @OptionGroup var machine: ModelKernelOptions

    @Flag(help: "Check every arena and page-accounting invariant afterwards.")
    var verify = false

    @Flag(help: "Print how long the boot and the consumers took (on stderr).")
    var timing = false

    func validate() throws {
        if machine.guestSize != nil && machine.guests == 0 { throw ValidationError("--guest-size needs --guests") }
    }

    func run() throws {
        let memory = try machine.memory()
        let clock = ContinuousClock()
        let start = clock.now
        let progress = BootProgress(clock: clock, start: start)
        let kernel = try KernelCommandSupport.boot(model: machine.model, physmem: memory, audit: machine.audit)
        let booted = clock.now
        if !machine.noWorkload || machine.guests > 0 {
            try KernelCommandSupport.run(machine.workload(physmem: memory), on: kernel, model: machine.model, physmem: memory) { done, all in
                progress.show("boot: creating guest \(done + 1) of \(all)")
            }
        }
        defer { progress.clear() }
        if timing {
            func ms(_ d: Duration) -> String {
                let v = Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) / 1e15
                return String(Int(v * 1000)) + " us"
            }
            LayoutArguments.printError("boot: \(ms(booted - start)), consumers: \(ms(clock.now - booted))")
        }
        print("model \(machine.model.name), physmem \(hex(memory)) (\(memory >> 20) MiB)\n")
        let session = MdbSession(kernel: kernel)
        var commands = ["::memstat", "::vmem", "kas::walk seg | ::seg"]
        if !kernel.hostedGuests.isEmpty { commands.append("::vm") }
        for command in commands {
            progress.show("boot: \(command)")
            let text = session.execute(command).text
            progress.clear()
            print("> \(command)")
            print(text)
        }
        if verify {
            progress.show("boot: checking every invariant")
            do { try kernel.verify() } catch { throw ValidationError("verify: \(error)") }
            progress.clear()
            print("verify: every arena and page-accounting invariant holds")
        }
    }
}

/// A one-line progress report on stderr, shown only when stderr is a
/// terminal and only once the command has run for more than a second.
final class BootProgress {
    let clock: ContinuousClock
    let start: ContinuousClock.Instant
    let isTerminal = isatty(STDERR_FILENO) == 1
    private var shown = false

    init(clock: ContinuousClock, start: ContinuousClock.Instant) {
        self.clock = clock
        self.start = start
    }

    func show(_ text: String) {
        guard isTerminal, clock.now - start > .seconds(1) else { return }
        shown = true
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + text).utf8))
    }

    func clear() {
        guard shown else { return }
        shown = false
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}

/// Booting with errors the command line can show.
enum KernelCommandSupport {
    /// Runs `workload` on `kernel`; a refusal is said in the user's terms
    /// where it can be: guests that do not fit are counted against what the
    /// machine has free once the other consumers ran ("16 GiB cannot hold 8
    /// guests of 4 GiB …: at most 3"), not as the page layer's refusal.
    static func run(_ workload: KernelWorkload, on kernel: ModelKernel, model: LayoutModel, physmem: UInt64,
                    progress: ((Int, Int) -> Void)? = nil) throws {
        do {
            try kernel.run(workload, progress: progress)
        } catch {
            if workload.guests > 0, let hint = guestCapacity(workload, model: model, physmem: physmem) {
                throw ValidationError(hint)
            }
            throw ValidationError(error.description)
        }
    }

    /// How many guests of `workload.guestSize` fit: a second model of the
    /// same machine runs the other consumers, and its free pages are
    /// divided by a guest's. Nil when that count would hold them all (the
    /// refusal was something else: keep its own words).
    static func guestCapacity(_ workload: KernelWorkload, model: LayoutModel, physmem: UInt64) -> String? {
        guard workload.guestSize > 0, let probe = try? ModelKernel(model: model, physmem: physmem) else { return nil }
        var others = workload
        others.guests = 0
        guard (try? probe.run(others)) != nil else { return nil }
        let free = probe.physicalMemory.freelistPages * 4096
        let fit = free / workload.guestSize
        guard fit < UInt64(workload.guests) else { return nil }
        let size = HumanSize.format(physmem), each = HumanSize.format(workload.guestSize)
        return "\(size) of memory cannot hold \(workload.guests) guests of \(each): at most \(fit) "
            + "(\(HumanSize.format(free)) is free once the kernel and its other consumers have theirs)"
    }

    static func boot(model: LayoutModel, physmem: UInt64, audit: Bool = false) throws -> ModelKernel {
        do {
            return try ModelKernel(ModelKernelConfiguration(layout: LayoutConfiguration(model: model, physmem: physmem),
                                                            auditArenas: audit))
        } catch {
            throw ValidationError(error.description)
        }
    }
}
