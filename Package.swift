// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "tokenctl",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tokenctl", targets: ["tokenctl"]),
        .executable(name: "manifest-bench", targets: ["ManifestBenchmark"]),
        .executable(name: "plan-bench", targets: ["PlanBenchmark"]),
        .executable(name: "apply-bench", targets: ["ApplyBenchmark"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // Without swift-configuration support: tokenctl configures the server itself.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // Already a dependency of hummingbird; named for its HTTP part types (request deadlines).
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        // Already dependencies of hummingbird; named for the in-process HTTP tests (an embedded channel, header names).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // Notices are posted to webhooks (HTTPS with certificate checks, timeouts, no redirects followed).
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
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
        // The driver seam: issuer and store protocols, their capabilities, and the registry of types whose kinds decode,
        // validate and open them.
        .target(name: "TokenctlDrivers", dependencies: ["TokenctlModel", .product(name: "Crypto", package: "swift-crypto")]),
        // Reading, decoding and validating manifests (issuer and store settings through the registry's kinds).
        .target(
            name: "TokenctlManifest",
            dependencies: ["TokenctlModel", "TokenctlDrivers", "CYaml"],
            // The decoder's classes are confined to one thread each; dynamic exclusivity checks on
            // their properties cost ~4% of a 100k-token decode.
            swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),
        // The pure planner: desired, recorded and observed state in, a Plan out. No I/O.
        .target(name: "TokenctlPlanner", dependencies: ["TokenctlModel"]),
        // The state store protocol and its errors (no backend).
        .target(name: "TokenctlState", dependencies: ["TokenctlModel"]),
        // Notices: payloads, signatures, and delivery from the state's outbox to webhooks.
        .target(
            name: "TokenctlNotify",
            dependencies: [
                "TokenctlModel", "TokenctlPlanner", "TokenctlState", "TokenctlDrivers",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The embedded SQLite state backend.
        .target(
            name: "TokenctlSQLite",
            dependencies: [
                "TokenctlState", "TokenctlModel",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ]
        ),
        // tokenctl's own token authority (SQLite; hashes only).
        .target(
            name: "TokenctlBuiltinIssuer",
            dependencies: [
                "TokenctlModel", "TokenctlDrivers",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Connections to PostgreSQL from a URL, and driver errors made safe to print.
        .target(
            name: "TokenctlPostgresSupport",
            dependencies: [
                "TokenctlModel",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The shared state backend on PostgreSQL: a lease with a fencing epoch checked on every write.
        .target(
            name: "TokenctlPostgresState",
            dependencies: [
                "TokenctlState", "TokenctlModel", "TokenctlPostgresSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The postgres issuer: login roles with SCRAM-SHA-256 verifiers computed here.
        .target(
            name: "TokenctlPostgresIssuer",
            dependencies: [
                "TokenctlModel", "TokenctlDrivers", "TokenctlPostgresSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Delivery targets: encrypted files and dotenv files.
        .target(name: "TokenctlStores", dependencies: ["TokenctlModel", "TokenctlDrivers", .product(name: "Crypto", package: "swift-crypto")]),
        // The exec issuer (plugin protocol tokenctl.io/plugin/v1) and store (Docker credential helpers) types.
        // Two glibc calls Swift's Glibc module leaves out (declared under _GNU_SOURCE), for running plugins.
        .target(name: "CProcessSpawn"),
        .target(name: "TokenctlExec", dependencies: ["TokenctlModel", "TokenctlDrivers", "TokenctlManifest", "CProcessSpawn"]),
        // The registry of the types this build ships: one line per type.
        .target(
            name: "TokenctlStandardDrivers",
            dependencies: ["TokenctlDrivers", "TokenctlBuiltinIssuer", "TokenctlPostgresIssuer", "TokenctlStores", "TokenctlExec"]
        ),
        // Carries plans out through issuers and stores, crash-safely.
        .target(
            name: "TokenctlEngine",
            dependencies: [
                "TokenctlModel", "TokenctlDrivers", "TokenctlPlanner", "TokenctlState",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The application layer: the workflow of every run, the controller's pass, opening drivers and state backends,
        // the master key and rekey.
        .target(
            name: "TokenctlReconciler",
            dependencies: [
                "TokenctlEngine", "TokenctlDrivers", "TokenctlPlanner", "TokenctlModel", "TokenctlState", "TokenctlStores",
                "TokenctlManifest", "TokenctlController", "TokenctlSQLite", "TokenctlPostgresState", "TokenctlNotify",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The controller: the watch loop, its schedule, retries, health and metrics. No HTTP, no storage of its own.
        .target(
            name: "TokenctlController",
            dependencies: [
                "TokenctlModel", "TokenctlPlanner",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The HTTP face: /metrics, /healthz, /readyz and RFC 7662 introspection of builtin tokens.
        .target(
            name: "TokenctlHTTP",
            dependencies: [
                "TokenctlModel", "TokenctlBuiltinIssuer",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Thin commands on swift-argument-parser.
        .target(
            name: "TokenctlCommands",
            dependencies: [
                "TokenctlModel",
                "TokenctlManifest",
                "TokenctlPlanner",
                "TokenctlState",
                "TokenctlSQLite",
                "TokenctlBuiltinIssuer",
                "TokenctlStores",
                "TokenctlEngine",
                "TokenctlPostgresState",
                "TokenctlPostgresIssuer",
                "TokenctlController",
                "TokenctlHTTP", "TokenctlReconciler", "TokenctlDrivers", "TokenctlStandardDrivers", "TokenctlExec", "TokenctlNotify",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "tokenctl",
            dependencies: ["TokenctlCommands", .product(name: "Logging", package: "swift-log")]
        ),
        .target(name: "BenchmarkSupport", dependencies: ["CYaml"], path: "Benchmarks/BenchmarkSupport"),
        .executableTarget(
            name: "ManifestBenchmark",
            dependencies: ["TokenctlManifest", "TokenctlStandardDrivers", "BenchmarkSupport"],
            path: "Benchmarks/ManifestBenchmark"
        ),
        .executableTarget(
            name: "PlanBenchmark",
            dependencies: ["TokenctlManifest", "TokenctlStandardDrivers", "TokenctlPlanner", "TokenctlSQLite", "TokenctlState", "BenchmarkSupport"],
            path: "Benchmarks/PlanBenchmark"
        ),
        .executableTarget(name: "ApplyBenchmark", dependencies: ["BenchmarkSupport"], path: "Benchmarks/ApplyBenchmark"),
        .testTarget(name: "TokenctlModelTests", dependencies: ["TokenctlModel"]),
        .testTarget(name: "TokenctlNotifyTests", dependencies: ["TokenctlNotify", "TokenctlPlanner", "TokenctlModel", "TokenctlState",
                                                            "TokenctlSQLite", "TokenctlDrivers", "TestSupport",
                                                            .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "TokenctlControllerTests", dependencies: ["TokenctlController", "TokenctlPlanner", "TokenctlModel",
                                                                .product(name: "Prometheus", package: "swift-prometheus")]),
        .testTarget(
            name: "TokenctlIssuerAndStoreTests",
            dependencies: [
                "TokenctlBuiltinIssuer", "TokenctlStores", "TokenctlModel", "TokenctlManifest", "TokenctlDrivers", "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "TokenctlEngineTests",
            dependencies: ["TokenctlEngine", "TokenctlReconciler", "TokenctlController", "TokenctlPlanner", "TokenctlModel", "TokenctlSQLite", "TokenctlStores",
                           "TokenctlDrivers", "TokenctlManifest", "TokenctlStandardDrivers",
                           "TestSupport", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "TokenctlHTTPTests",
            dependencies: [
                "TokenctlHTTP", "TokenctlBuiltinIssuer", "TokenctlModel", "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "TokenctlStateTests",
            dependencies: ["TokenctlState", "TokenctlSQLite", "TokenctlPostgresState", "TokenctlModel", "TestSupport",
                           .product(name: "GRDB", package: "GRDB.swift")]
        ),
        // Scratch directories removed when the test process exits, and throwaway PostgreSQL clusters (Tests/Postgres/pg-cluster.sh).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(
            name: "TokenctlPostgresTests",
            dependencies: [
                "TokenctlPostgresIssuer", "TokenctlPostgresSupport", "TokenctlModel", "TokenctlDrivers", "TestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .testTarget(
            name: "TokenctlPlannerTests",
            dependencies: [
                "TokenctlPlanner", "TokenctlModel", "TestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "TokenctlManifestTests",
            dependencies: ["TokenctlManifest", "TokenctlModel", "TokenctlDrivers", "TokenctlStandardDrivers", "TokenctlBuiltinIssuer",
                           "TokenctlPostgresIssuer", "TestSupport"]
        ),
        .testTarget(
            name: "TokenctlExecTests",
            dependencies: ["TokenctlExec", "TokenctlDrivers", "TokenctlManifest", "TokenctlModel", "TokenctlStandardDrivers", "TestSupport"]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["tokenctl", "TokenctlModel", "TokenctlState", "TokenctlSQLite", "TokenctlBuiltinIssuer", "TokenctlPostgresState",
                           "TokenctlDrivers", "TokenctlStores",
                           "TestSupport"]
        ),
    ]
)
