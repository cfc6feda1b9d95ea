// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "tokenctl",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tokenctl", targets: ["tokenctl"]),
        .executable(name: "manifest-bench", targets: ["ManifestBenchmark"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // libyaml from the system (Debian: libyaml-dev).
        .systemLibrary(
            name: "CYaml",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]
        ),
        // Plain values: no I/O, no dependencies.
        .target(name: "TokenctlModel"),
        // Reading, decoding and validating manifests.
        .target(
            name: "TokenctlManifest",
            dependencies: ["TokenctlModel", "CYaml"],
            // The decoder's classes are confined to one thread each; dynamic exclusivity checks on
            // their properties cost ~4% of a 100k-token decode.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),
        // Thin commands on swift-argument-parser.
        .target(
            name: "TokenctlCommands",
            dependencies: [
                "TokenctlModel",
                "TokenctlManifest",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "tokenctl", dependencies: ["TokenctlCommands"]),
        .executableTarget(
            name: "ManifestBenchmark",
            dependencies: ["TokenctlManifest", "CYaml"],
            path: "Benchmarks/ManifestBenchmark"
        ),
        .testTarget(name: "TokenctlModelTests", dependencies: ["TokenctlModel"]),
        .testTarget(
            name: "TokenctlManifestTests",
            dependencies: ["TokenctlManifest", "TokenctlModel"]
        ),
        .testTarget(name: "EndToEndTests", dependencies: ["tokenctl"]),
    ]
)
