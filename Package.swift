// swift-tools-version:6.0
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "lightsail-pipeline",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "pipeline", targets: ["Runner"]),
        .executable(name: "pipeline-bench", targets: ["Benchmarks"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // One system-library target per C library: a modulemap and a shim header.
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3",
                       providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CCurl", path: "Sources/CCurl", pkgConfig: "libcurl",
                       providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "openssl",
                       providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CArchive", path: "Sources/CArchive", pkgConfig: "libarchive",
                       providers: [.apt(["libarchive-dev"])]),
        // cairo draws the PDF; pango lays out the text cairo's own API cannot (CJK fallback fonts,
        // right-to-left scripts).
        .systemLibrary(name: "CCairo", path: "Sources/CCairo", pkgConfig: "cairo-pdf",
                       providers: [.apt(["libcairo2-dev", "libpango1.0-dev"])]),
        .systemLibrary(name: "CPostgres", path: "Sources/CPostgres", pkgConfig: "libpq",
                       providers: [.apt(["libpq-dev"])]),
        // glibc calls Swift's Glibc module leaves out (syncfs, mallopt).
        .systemLibrary(name: "CSystem", path: "Sources/CSystem"),

        // Pure core: definitions, values, ports, the executor and the blocking-work executor. No C.
        .target(name: "Pipeline",
                dependencies: [.product(name: "Yams", package: "Yams"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        // OpenSSL behind one choke point: digests and MACs (AES-GCM and signatures come later).
        .target(name: "Cryptography", dependencies: ["Pipeline", "COpenSSL"], swiftSettings: strict),
        // The stages themselves: collectors, checks, scoring. Pure Swift over Pipeline's ports.
        .target(name: "Stages",
                dependencies: ["Pipeline", "Cryptography", .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        // Talking HTTP: the libcurl client, replay of recordings, SigV4 and the S3 client.
        .target(name: "Transport", dependencies: ["Pipeline", "Cryptography", "CCurl"], swiftSettings: strict),
        // Keeping things: SQLite and PostgreSQL stores, directory and S3 object stores, fixture organizations.
        .target(name: "Storage",
                dependencies: ["Pipeline", "Transport", "Cryptography", "CSQLite", "CPostgres", "CSystem",
                               .product(name: "Yams", package: "Yams")],
                swiftSettings: strict),
        .target(name: "Reporting",
                dependencies: ["Pipeline", "Cryptography", "CCairo", "CArchive"],
                swiftSettings: strict),
        // What every test target shares: fakes of the ports, tools a reader uses, the peers' addresses.
        .target(name: "PipelineTesting", dependencies: ["Pipeline"], swiftSettings: strict),
        .executableTarget(name: "Runner",
                          dependencies: ["Pipeline", "Stages", "Transport", "Storage", "Reporting", "Cryptography", "CSystem",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log"),
                                         .product(name: "Metrics", package: "swift-metrics"),
                                         .product(name: "Prometheus", package: "swift-prometheus")],
                          swiftSettings: strict),

        // Throughput against baselines measured in the same run (scripts/bench).
        .executableTarget(name: "Benchmarks",
                          dependencies: ["Stages", "Storage", "Transport", "Pipeline", "Cryptography", "PipelineTesting"],
                          swiftSettings: strict),
        .testTarget(name: "PipelineTests",
                    dependencies: ["Pipeline", "PipelineTesting", .product(name: "Logging", package: "swift-log")],
                    swiftSettings: strict),
        .testTarget(name: "StagesTests",
                    dependencies: ["Stages", "Pipeline", "Transport", "Cryptography", "PipelineTesting",
                                   .product(name: "Logging", package: "swift-log")],
                    exclude: ["Reference"], swiftSettings: strict),
        .testTarget(name: "TransportTests",
                    dependencies: ["Transport", "Pipeline", "Cryptography", "PipelineTesting"],
                    exclude: ["Reference"], swiftSettings: strict),
        .testTarget(name: "StorageTests",
                    dependencies: ["Storage", "Pipeline", "PipelineTesting"], swiftSettings: strict),
        .testTarget(name: "ReportingTests", dependencies: ["Reporting", "Pipeline", "Cryptography", "PipelineTesting"],
                    swiftSettings: strict),
        .testTarget(name: "IntegrationTests",
                    dependencies: ["Storage", "Transport", "Pipeline", "Cryptography", "PipelineTesting"],
                    swiftSettings: strict),
        .testTarget(name: "EndToEndTests", dependencies: ["PipelineTesting"], swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
