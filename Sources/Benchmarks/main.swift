import Cryptography
import Foundation
import Pipeline
import PipelineTesting
import Stages
import Storage
import Transport

// Throughput of the production store against the standard tools, in the same run on the same
// peers, printed as ratios (these machines are shared and noisy; absolute times are not kept).
//   1. 100,000 evidence rows into PostgreSQL through the store (COPY into a staging table, insert
//      with ON CONFLICT, audit rows, run links) against `psql \copy` of the same rows.
//   2. A 200 MB object to moto_server through the S3 client (parallel multipart) against
//      `aws s3 cp` of the same file.
// Run: scripts/bench   (starts PostgreSQL and moto, builds in release mode, runs this)
// Knobs: BENCH_ROWS (0 skips the rows part), BENCH_BATCH (rows per store call), BENCH_MB, BENCH_ROUNDS.

func seconds(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("pipeline-bench: \(message)\n".utf8))
    exit(1)
}

func run(_ tool: String, _ args: [String], env: [String: String] = [:]) throws {
    let result = try ExternalTool.run(tool, args, environment: env)
    if result.status != 0 { fail("\(tool) failed: \(result.stderr)") }
}

let rows = Int(ProcessInfo.processInfo.environment["BENCH_ROWS"] ?? "") ?? 100_000
let megabytes = Int(ProcessInfo.processInfo.environment["BENCH_MB"] ?? "") ?? 200
let skipRows = ProcessInfo.processInfo.environment["BENCH_ROWS"] == "0"
let batch = Int(ProcessInfo.processInfo.environment["BENCH_BATCH"] ?? "") ?? 100_000
let rounds = Int(ProcessInfo.processInfo.environment["BENCH_ROUNDS"] ?? "") ?? 3
guard let pg = Peers.postgres, let s3 = Peers.s3 else { fail("no peers: \(Peers.missingHint)") }

func freshDatabase() async throws -> String {
    let name = "lightsail_bench_" + UUID().uuidString.prefix(8).lowercased()
    let admin = try await PostgresConnection.connect(.init(url: pg.adminURL))
    _ = try await admin.run { db in try db.execute("CREATE DATABASE \(name) OWNER lightsail_owner") }
    _ = try await PostgresMigrations.migrate(try await PostgresConnection.connect(.init(url: Peers.url(pg.ownerURL, database: name))))
    return name
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

// MARK: 1. Evidence rows

let org = try OrganizationID("bench")
let asOf = Date(timeIntervalSince1970: 1_795_824_000)
let evidence = try (0..<rows).map { n in
    try EvidenceFactory.make(organization: org, source: "github", operation: "repos/get-branch-protection",
                         resource: "bench-org/repo-\(n)@main", request: "GET /repos/bench-org/repo-\(n)/branches/main/protection",
                         status: 200, mediaType: "application/json", body: Data("{\"n\":\(n)}".utf8),
                         collectedAt: asOf, freshFor: .seconds(86_400))
}
let tsv = FileManager.default.temporaryDirectory.appendingPathComponent("bench-evidence-\(UUID().uuidString).tsv")
try PostgresEvidenceStore.copyRows(evidence, firstRun: "bench-run").write(to: tsv)

var ours: [Double] = []
var baseline: [Double] = []
for _ in 0..<(skipRows ? 0 : rounds) {
    // Baseline: psql \copy of the same rows, as the same role, into a table shaped like evidence
    // (same columns, primary key and indexes). PostgreSQL refuses COPY FROM into a table with
    // row-level security, which is why the store copies into a staging table first.
    let baseDB = try await freshDatabase()
    let owner = try await PostgresConnection.connect(.init(url: Peers.url(pg.ownerURL, database: baseDB)))
    try await owner.run { db in
        try db.execute("CREATE TABLE bench_copy (LIKE evidence INCLUDING ALL)")
        try db.execute("GRANT INSERT, SELECT ON bench_copy TO lightsail_app")
        return ()
    }
    baseline.append(try await seconds {
        try run("psql", [Peers.url(pg.appURL, database: baseDB), "-Xq", "-c",
                         "\\copy bench_copy (\(PostgresEvidenceStore.evidenceColumns)) FROM '\(tsv.path)'"])
    })
    let oursDB = try await freshDatabase()
    let store = try await PostgresEvidenceStore(settings: .init(url: Peers.url(pg.appURL, database: oursDB)))
    let record = RunRecord(id: "bench-run", organizationID: org, pipeline: "bench", asOf: asOf, actor: "system")
    try await store.beginRun(record)
    ours.append(try await seconds {
        var stored = 0
        for start in stride(from: 0, to: evidence.count, by: batch) {
            stored += try await store.storeEvidence(Array(evidence[start..<min(start + batch, evidence.count)]), run: record)
        }
        if stored != rows { fail("stored \(stored) of \(rows)") }
    })
}
if !skipRows {
let oursRate = Double(rows) / median(ours)
let baseRate = Double(rows) / median(baseline)
print(String(format: "evidence rows: %d rows in batches of %d, median of %d; store %.0f rows/s, psql \\copy %.0f rows/s; ratio %.2f (goal >= 0.50)",
             rows, batch, rounds, oursRate, baseRate, oursRate / baseRate))
}
try? FileManager.default.removeItem(at: tsv)

// MARK: 2. A large upload

let file = FileManager.default.temporaryDirectory.appendingPathComponent("bench-\(megabytes)mb.bin")
do {
    var chunk = Data(count: 1 << 20)
    guard FileManager.default.createFile(atPath: file.path, contents: nil) else { fail("cannot write \(file.path)") }
    let handle = try FileHandle(forWritingTo: file)
    for n in 0..<megabytes {
        chunk.withUnsafeMutableBytes { raw in for i in stride(from: 0, to: raw.count, by: 512) { raw[i] = UInt8(truncatingIfNeeded: n &+ i) } }
        try handle.write(contentsOf: chunk)
    }
    try handle.close()
}
let client = S3Client(location: S3Location(endpoint: URL(string: s3.endpoint)!, bucket: s3.bucket, region: "us-east-1",
                                           pathStyle: true, prefix: ""),
                      credentials: AWSCredentials(accessKeyID: s3.accessKeyID, secretAccessKey: s3.secretAccessKey))
let awsEnv = ["AWS_ACCESS_KEY_ID": s3.accessKeyID, "AWS_SECRET_ACCESS_KEY": s3.secretAccessKey, "AWS_DEFAULT_REGION": "us-east-1"]
var upload: [Double] = []
var awsCP: [Double] = []
for round in 0..<rounds {
    awsCP.append(try await seconds {
        try run("aws", ["--endpoint-url", s3.endpoint, "s3", "cp", "--only-show-errors", file.path,
                        "s3://\(s3.bucket)/bench/aws-\(round).bin"], env: awsEnv)
    })
    upload.append(try await seconds {
        try await client.upload("bench/ours-\(round).bin", file: file, contentType: "application/octet-stream")
    })
    guard try await client.head("bench/ours-\(round).bin")?.size == megabytes << 20 else { fail("upload incomplete") }
}
let uploadRate = Double(megabytes) / median(upload)
let awsRate = Double(megabytes) / median(awsCP)
print(String(format: "upload: %d MB, median of %d; S3 client %.1f MB/s, aws s3 cp %.1f MB/s; ratio %.2f (goal >= 1.00)",
             megabytes, rounds, uploadRate, awsRate, uploadRate / awsRate))
try? FileManager.default.removeItem(at: file)
