import GuestMemory
import ModelKernel

// The guest dcmds' argument handling; the tables are GuestRendering's.
extension MdbSession {
    /// The hosted guest whose `vm_t` is at `address`, or the error to print.
    func hostedGuest(_ address: UInt64?, command: String) -> Result<ModelGuest, Output.Failure> {
        guard let address else { return .failure(.init(Self.error("::\(command) needs a guest address (from ::vm)"))) }
        guard let g = kernel.guest(at: address) else {
            return .failure(.init(Self.error("\(String(address, radix: 16)) is not a guest (see ::vm)")))
        }
        return .success(g)
    }

    /// `::vm`, `ADDR::vm`, `ADDR::memseg`, `ADDR::memmap`; in a pipeline the
    /// header comes once.
    func guestCommand(_ command: String, _ i: MdbInvocation) -> Output {
        if let bad = noArguments(command, i) { return bad }
        if command == "vm" && i.address == nil { return Self.ok(GuestRendering.vm(kernel.hostedGuests)) }
        switch hostedGuest(i.address, command: command) {
        case .failure(let f): return f.output
        case .success(let g):
            switch command {
            case "vm": return Self.ok((i.printsHeader ? GuestRendering.vmHeader + "\n" : "") + GuestRendering.vmRow(g) + "\n")
            case "memseg": return Self.ok(Self.table(GuestRendering.memseg(g), header: i.printsHeader))
            default: return Self.ok(Self.table(GuestRendering.memmap(g), header: i.printsHeader))
            }
        }
    }

    /// `GPA::npt [-g ADDR]`: the guest is `-g`'s, or the only hosted guest.
    func npt(_ i: MdbInvocation) -> Output {
        let gpa = i.address ?? 0
        var guestAddress: UInt64?
        var k = 0
        while k < i.arguments.count {
            guard i.arguments[k] == "-g" else { return Self.usage("npt", "unknown option \"\(i.arguments[k])\"") }
            guard k + 1 < i.arguments.count else { return Self.usage("npt", "-g needs a guest address") }
            guard let a = resolve(i.arguments[k + 1]) else {
                return Self.error("failed to dereference symbol or address \"\(i.arguments[k + 1])\"")
            }
            guestAddress = a
            k += 2
        }
        let guest: ModelGuest
        if let guestAddress {
            switch hostedGuest(guestAddress, command: "npt") {
            case .failure(let f): return f.output
            case .success(let g): guest = g
            }
        } else {
            let all = kernel.hostedGuests
            guard all.count == 1 else {
                return Self.error(all.isEmpty ? "no guest is hosted" : "\(all.count) guests are hosted: say which with -g ADDR")
            }
            guest = all[0]
        }
        do {
            let steps = try guest.memory.nestedWalk(gpa)
            return Self.ok(GuestRendering.npt(guest, gpa: gpa, steps: steps))
        } catch {
            return Self.error("gpa \(String(gpa, radix: 16)): \(error)")
        }
    }
}

extension MdbSession.Output {
    /// An error output carried through a `Result`.
    struct Failure: Error {
        let output: MdbSession.Output
        init(_ output: MdbSession.Output) { self.output = output }
    }
}
