import ArgumentParser
import GuestKVM
import Vmem
import Inspect
import KernelLayout
import ModelKernel

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "The tour: the kernel VA layout for this machine, its arena tree, a booted model kernel with a guest, and a vmem workload shown as mdb would.",
        discussion: """
        Computes the illumos amd64 (post-12608) kernel layout for this machine's memory (or \
        --physmem), creates the illumos arena tree on it, boots the model kernel on it (kas, \
        its segments, page frames), runs the usual kernel consumers and allocates a guest from \
        vmm_alloc_arena, and prints ::memstat and kas::walk seg | ::seg. Then builds a small arena \
        hierarchy (a heap, a child importing from it with a quantum cache, a constrained DMA arena \
        and a pid arena), runs a mixed workload and prints ::vmem and a ::vmem_seg listing. \
        When /dev/kvm is usable, also runs the tiny real-mode guest of `vmkit guest run` on KVM \
        and prints its exits and dirty pages (otherwise one line says why not). \
        Needs no privileges.
        """)

    @Option(help: ArgumentHelp("Physical memory of the modelled machine (default: this machine's).", valueName: "size"),
            transform: { try LayoutArguments.size($0) })
    var physmem: UInt64?

    @Option(help: ArgumentHelp("Kernel layout model: post-12608, pre-12608 or i386.", valueName: "model"),
            transform: LayoutArguments.model)
    var model: LayoutModel = .post12608

    @Option(help: "Operations in the mixed vmem workload.", transform: CountArgument.parse)
    var ops: Int = 20_000

    func validate() throws {
        if ops < 0 { throw ValidationError("--ops must not be negative, got \(ops)") }
    }

    func run() throws {
        let memory = try physmem ?? LayoutArguments.hostMemory()
        let layout: Layout
        do { layout = try Layout.compute(model: model, physmem: memory) }
        catch { throw ValidationError(error.description) }
        print("== kernel VA layout: \(model.name), physmem \(hex(memory)) (\(memory >> 20) MiB) ==\n")
        print(layout.table())
        let tree = try ArenaTree.build(from: layout)
        print("== the arena tree on that layout ==\n")
        print("> ::vmem")
        print(VmemTable.render(tree.arenas))

        try bootModelKernel(layout: layout, memory: memory)
        kvmGuest()

        let demo = try VmemDemo(ops: ops)
        print("== a vmem hierarchy after \(ops) mixed operations ==\n")
        print("> ::vmem")
        print(VmemTable.render(demo.arenas), terminator: "")
        print("\n> \(String(demo.dma.address, radix: 16))::vmem_seg   (\(demo.dma.name): nocross 64K, align 16K)")
        let listing = VmemSegTable.render(demo.dma).split(separator: "\n")
        for line in listing.prefix(25) { print(line) }
        if listing.count > 25 { print("... \(listing.count - 25) more segments") }
        for a in demo.arenas + tree.arenas { try a.verify() }
        print("\nverify: all \(demo.arenas.count + tree.arenas.count) arenas consistent")
    }

    /// Boots the model kernel for the demo's memory size, runs its consumers
    /// and a guest (post-12608), and shows ::memstat and the segment list.
    private func bootModelKernel(layout: Layout, memory: UInt64) throws {
        print("== the model kernel booted on that layout ==\n")
        let kernel = try KernelCommandSupport.boot(model: model, physmem: memory)
        var workload = KernelWorkload.standard(physmem: memory)
        workload.guestProcesses = true
        var guestNote = "no guest: only the post-12608 model has vmm_alloc_arena"
        if kernel.arenas["vmm_alloc_arena"] != nil {
            // A guest of an eighth of memory, whole MiB, between 1 MiB and 1 GiB.
            let size = min(max((memory / 8) & ~((1 << 20) - 1), 1 << 20), 1 << 30)
            workload.guests = 1
            workload.guestSize = size
            guestNote = "one guest of \(size >> 20) MiB from vmm_alloc_arena (VMM Memory; not in a crash dump), "
                + "mapped into a bhyve process through segvmm"
        }
        let result: WorkloadResult
        do { result = try kernel.run(workload) } catch { throw ValidationError(error.description) }
        print("kernel consumers: \(workload.kmemAllocations) kmem allocations, \(workload.threads) thread and "
              + "\(workload.lwps) LWP stacks, \(workload.zfsBuffers) ZFS buffers, a file read; \(guestNote)\n")
        let session = MdbSession(kernel: kernel)
        var commands = ["::memstat", "kas::walk seg | ::seg"]
        // The bhyve process: its one segment is the guest's RAM, faulted in from kvmmseg.
        if let process = result.processes.first { commands.append(String(process.address, radix: 16) + "::walk seg | ::seg") }
        for command in commands {
            print("> \(command)")
            print(session.execute(command).text)
        }
        let dumped = kernel.dumpPages().count
        print("a crash dump would hold \(dumped) pages (\((UInt64(dumped) * 4096) >> 20) MiB); "
              + "ZFS file data and guest memory stay out of it\n")
    }

    /// The real-mode payload of `vmkit guest run` on KVM, when KVM is
    /// usable: a 1 MiB guest and a 64 KiB boot ROM, one vCPU, a few ms.
    /// A failure here is reported, not fatal: the demo is about the model.
    private func kvmGuest() {
        print("== a guest on KVM (vmkit guest run --mem 1M --payload realmode) ==\n")
        if let reason = KVMDevice.unavailableReason() {
            print("kvm: not usable, guest skipped: \(reason)\n")
            return
        }
        do throws(KVMError) {
            let guest = try KVMGuest(memorySize: 1 << 20, payload: .realmode, requireKVM: true)
            let exits = try guest.run()
            let dirty = try guest.dirtyPages()
            print("exits:")
            for (i, e) in exits.enumerated() { print("  \(i + 1)  \(e)") }
            let sysmem = dirty.filter { $0 < (1 << 20) / 4096 }
            print("dirty pages in RAM, all sources: \(GuestRunReport.runs(sysmem)) (page 1: the VMM loaded the code)")
            print("dirty pages in KVM's log (the guest's own writes): \(GuestRunReport.runs(guest.guestDirtyPages))")
            print("plus the \(dirty.count - sysmem.count) pages of the boot ROM the VMM loaded at 0xffff0000\n")
            try guest.vm?.close()
        } catch {
            print("kvm: the guest failed: \(error)\n")
        }
    }
}
