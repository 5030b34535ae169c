import ArgumentParser
import HostWorkloads

/// The `--cpu N` option of `bench as` and `bench guest`: checked once, and
/// applied to the calling thread before any workload exists, so that every
/// thread made later (fault handlers included) inherits it.
enum BenchCPU {
    static func validate(_ cpu: Int?) throws {
        if let cpu, cpu < 0 || cpu >= CPUAffinity.onlineCPUs {
            throw ValidationError("--cpu must be from 0 to \(CPUAffinity.onlineCPUs - 1), got \(cpu)")
        }
    }

    static func pin(_ cpu: Int?, command: String) throws {
        guard let cpu else { return }
        do throws(HostWorkloadError) {
            try CPUAffinity.pinCallingThread(to: cpu)
        } catch {
            BenchAsCommand.stderr("\(command): \(error)\n")
            throw ExitCode.failure
        }
    }
}
