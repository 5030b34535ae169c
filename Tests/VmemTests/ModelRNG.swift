import VmemWorkloads

/// The model-based tests' generator: splitmix64 (vmem.md §6).
typealias ModelRNG = SplitMix64
