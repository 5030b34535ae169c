// swift-tools-version: 6.0
import PackageDescription

// Layers (arrows point down only): vmkit -> Inspect -> ModelKernel -> {KernelLayout,
// AddressSpace} -> {PhysicalMemory, PageTables} -> {Vmem, HostMemory}; HostSegments ->
// {AddressSpace, HostMemory}; HostMemory -> CHostMemory (libc only): the one place that
// maps host memory. See shared/design/ARCHITECTURE.md.
let package = Package(
    name: "VMKit",
    products: [
        .library(name: "Vmem", targets: ["Vmem"]),
        .library(name: "VmemWorkloads", targets: ["VmemWorkloads"]),
        .library(name: "KernelLayout", targets: ["KernelLayout"]),
        .library(name: "PhysicalMemory", targets: ["PhysicalMemory"]),
        .library(name: "PageTables", targets: ["PageTables"]),
        .library(name: "AddressSpace", targets: ["AddressSpace"]),
        .library(name: "HostMemory", targets: ["HostMemory"]),
        .library(name: "HostSegments", targets: ["HostSegments"]),
        .library(name: "GuestMemory", targets: ["GuestMemory"]),
        .library(name: "HostWorkloads", targets: ["HostWorkloads"]),
        .library(name: "GuestWorkloads", targets: ["GuestWorkloads"]),
        .library(name: "GuestSnapshot", targets: ["GuestSnapshot"]),
        .library(name: "GuestKVM", targets: ["GuestKVM"]),
        .library(name: "ModelKernel", targets: ["ModelKernel"]),
        .library(name: "Inspect", targets: ["Inspect"]),
        .executable(name: "vmkit", targets: ["vmkit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // The arena allocator: standard library, Synchronization and libc only.
        .target(name: "CVmemSupport"),
        .target(name: "Vmem", dependencies: ["CVmemSupport"]),
        // The standard workloads of vmem.md §6, shared by `vmkit bench` and Benchmarks/.
        .target(name: "VmemWorkloads", dependencies: ["Vmem", "CVmemSupport"]),
        // Real host memory: reservations, memory objects, userfaultfd, guard reports (libc only).
        .target(name: "CHostMemory"),
        .target(name: "HostMemory", dependencies: ["CHostMemory"]),
        // Guest memory for VMMs: bhyve's memory segments and mappings, VMM access, holds, dirty bitmap.
        .target(name: "CGuestMemory"),
        .target(name: "GuestMemory", dependencies: ["HostMemory", "CGuestMemory", "PageTables"]),
        // Guests on real KVM: memslots from the guest memory map, vCPUs, payloads, KVM's dirty logs.
        .target(name: "CGuestKVM"),
        .target(name: "GuestKVM", dependencies: ["GuestMemory", "HostMemory", "PageTables", "CGuestKVM", "GuestSnapshot"]),
        .target(name: "KernelLayout", dependencies: ["Vmem"]),
        .target(name: "PhysicalMemory", dependencies: ["Vmem", "HostMemory"]),
        .target(name: "PageTables", dependencies: ["PhysicalMemory", "HostMemory"]),
        .target(name: "AddressSpace", dependencies: ["PhysicalMemory", "PageTables", "Vmem"]),
        // Segment drivers over real memory: segvn, segdev, seghole, stacks, lazy fill.
        .target(name: "HostSegments", dependencies: ["AddressSpace", "HostMemory", "CHostMemory", "PhysicalMemory"]),
        // The workloads of `vmkit bench as` (faults, lazy fill, map+unmap, segat) and their C baselines.
        .target(name: "HostWorkloads", dependencies: ["HostSegments", "HostMemory", "AddressSpace", "CHostMemory"]),
        // The workloads of `vmkit bench guest` (translation against C, holds, dirty harvest, reserve+map).
        .target(name: "CGuestWorkloads"),
        .target(name: "GuestWorkloads", dependencies: ["GuestMemory", "HostWorkloads", "CGuestWorkloads", "PageTables"]),
        // Full and diff snapshots of guest memory; eager and userfaultfd-lazy restore (below GuestKVM).
        .target(name: "GuestSnapshot", dependencies: ["GuestMemory", "HostMemory"]),
        .target(name: "ModelKernel", dependencies: ["KernelLayout", "AddressSpace", "PhysicalMemory", "PageTables", "Vmem", "GuestMemory", "HostMemory"]),
        .target(name: "Inspect", dependencies: ["ModelKernel", "KernelLayout", "AddressSpace", "PhysicalMemory", "Vmem", "GuestMemory"]),
        .executableTarget(name: "vmkit", dependencies: [
            "Inspect", "ModelKernel", "KernelLayout", "Vmem", "VmemWorkloads", "HostSegments", "HostMemory",
            "HostWorkloads", "GuestMemory", "GuestWorkloads", "GuestKVM", "GuestSnapshot",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ],
        // Exported symbols let dladdr name Swift frames in audit stacks
        // (::vmem_seg's WHO and -v print symbol+offset, as mdb's %a does).
        linkerSettings: [.unsafeFlags(["-Xlinker", "--export-dynamic"], .when(platforms: [.linux]))]),
        .testTarget(name: "VmemTests", dependencies: ["Vmem", "VmemWorkloads"]),
        .testTarget(name: "KernelLayoutTests", dependencies: ["VmemWorkloads", "KernelLayout", "Vmem"]),
        .testTarget(name: "PhysicalMemoryTests", dependencies: ["VmemWorkloads", "PhysicalMemory"]),
        .testTarget(name: "PageTablesTests", dependencies: ["VmemWorkloads", "PageTables", "PhysicalMemory"]),
        .testTarget(name: "AddressSpaceTests", dependencies: ["VmemWorkloads", "AddressSpace", "PageTables", "PhysicalMemory"]),
        // Test support shared by the host and guest memory test targets: the
        // /proc/self readers, the host-test gate and the userfaultfd trait.
        // Never part of a product.
        .target(name: "HostTestSupport", dependencies: ["HostMemory"], path: "Tests/HostTestSupport"),
        .testTarget(name: "HostMemoryTests", dependencies: ["HostMemory", "CHostMemory", "HostTestSupport"]),
        .testTarget(name: "GuestSnapshotTests", dependencies: ["GuestSnapshot", "GuestMemory", "HostMemory", "HostTestSupport"]),
        .testTarget(name: "GuestMemoryTests", dependencies: ["GuestMemory", "HostMemory", "GuestWorkloads", "HostWorkloads", "HostTestSupport"]),
        .testTarget(name: "GuestKVMTests", dependencies: ["GuestKVM", "GuestMemory", "HostMemory", "PageTables", "GuestSnapshot"]),
        .testTarget(name: "HostSegmentsTests", dependencies: ["VmemWorkloads", "HostSegments", "HostMemory", "AddressSpace", "HostWorkloads", "HostTestSupport"]),
        .testTarget(name: "VMKitCommandTests", dependencies: ["vmkit"]),
        .testTarget(name: "ModelKernelTests", dependencies: ["VmemWorkloads", "ModelKernel", "Inspect", "KernelLayout", "AddressSpace", "PhysicalMemory", "Vmem", "GuestMemory", "HostMemory"]),
    ],
    swiftLanguageModes: [.v6]
)
