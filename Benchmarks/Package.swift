// swift-tools-version: 6.1
import PackageDescription

// Benchmarks live in their own package so that `swift test` on the root
// package never builds package-benchmark. Run from this directory:
//   swift package --allow-writing-to-package-directory benchmark
let package = Package(
    name: "VMKitBenchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
        .package(name: "VMKit", path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "VmemBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Vmem", package: "VMKit"),
                .product(name: "VmemWorkloads", package: "VMKit"),
            ],
            path: "Benchmarks/VmemBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "HostBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "HostWorkloads", package: "VMKit"),
            ],
            path: "Benchmarks/HostBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "GuestBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "GuestMemory", package: "VMKit"),
                .product(name: "GuestSnapshot", package: "VMKit"),
                .product(name: "GuestWorkloads", package: "VMKit"),
            ],
            path: "Benchmarks/GuestBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "LayoutBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "KernelLayout", package: "VMKit"),
                .product(name: "Vmem", package: "VMKit"),
            ],
            path: "Benchmarks/LayoutBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
