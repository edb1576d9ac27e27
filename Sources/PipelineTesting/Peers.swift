import Foundation
import Testing

/// Where the real peers started by `scripts/with-services` are, from the environment.
public enum Peers {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    public struct Postgres: Sendable {
        /// A superuser on the server, to create one database per test.
        public let adminURL: String
        /// The owner role that runs migrations.
        public let ownerURL: String
        /// The ordinary login role the pipeline connects as.
        public let appURL: String
    }

    public struct S3: Sendable {
        public let endpoint: String
        /// A second server that checks no signatures (see scripts/with-services for why).
        public let openEndpoint: String?
        public let bucket: String
        public let accessKeyID: String
        public let secretAccessKey: String
    }

    public static var postgres: Postgres? {
        guard let admin = environment["LIGHTSAIL_TEST_PG_ADMIN_URL"], let owner = environment["LIGHTSAIL_TEST_PG_OWNER_URL"],
              let app = environment["LIGHTSAIL_TEST_PG_APP_URL"] else { return nil }
        return Postgres(adminURL: admin, ownerURL: owner, appURL: app)
    }

    public static var s3: S3? {
        guard let endpoint = environment["LIGHTSAIL_TEST_S3_ENDPOINT"], let bucket = environment["LIGHTSAIL_TEST_S3_BUCKET"],
              let key = environment["LIGHTSAIL_TEST_S3_ACCESS_KEY_ID"],
              let secret = environment["LIGHTSAIL_TEST_S3_SECRET_ACCESS_KEY"] else { return nil }
        return S3(endpoint: endpoint, openEndpoint: environment["LIGHTSAIL_TEST_S3_OPEN_ENDPOINT"], bucket: bucket,
                  accessKeyID: key, secretAccessKey: secret)
    }

    /// Why a peer is missing, for the message of a test that cannot run.
    public static let missingHint = "start the peers with scripts/with-services (e.g. scripts/with-services swift test)"

    /// `url` with its database name replaced.
    public static func url(_ url: String, database: String) -> String {
        guard var components = URLComponents(string: url) else { return url }
        components.path = "/" + database
        return components.string ?? url
    }
}

extension Trait where Self == ConditionTrait {
    /// Runs where every tool is installed. In CI it always runs, so a missing tool fails the test
    /// there instead of skipping it; elsewhere the test shows as skipped, with the reason.
    public static func needs(_ tools: String...) -> Self {
        .enabled(if: ExternalTool.isCI || tools.allSatisfy { ExternalTool.find($0) != nil },
                 "needs \(tools.joined(separator: ", ")) installed (scripts/install-packages)")
    }

    /// Runs where the PostgreSQL peer is up (always in CI, where its absence fails the test).
    public static var needsPostgres: Self {
        .enabled(if: ExternalTool.isCI || Peers.postgres != nil, "needs PostgreSQL: \(Peers.missingHint)")
    }

    /// Runs where the S3 peer (moto) is up (always in CI, where its absence fails the test).
    public static var needsS3: Self {
        .enabled(if: ExternalTool.isCI || Peers.s3 != nil, "needs moto_server: \(Peers.missingHint)")
    }
}

extension Peers {
    /// The PostgreSQL peer. Without it the test stops: shown as skipped with the reason, or, in
    /// CI (where `.ci/run` starts every peer), failed.
    public static func requirePostgres() throws -> Postgres {
        guard let postgres else { try missing("PostgreSQL") }
        return postgres
    }

    /// The S3 peer (moto_server), as `requirePostgres`.
    public static func requireS3() throws -> S3 {
        guard let s3 else { try missing("moto_server (S3)") }
        return s3
    }

    /// Stops a test whose peer is missing: skipped with the reason, except in CI, where it fails.
    public static func missing(_ what: String) throws -> Never {
        if ExternalTool.isCI { throw PeerMissing(what: what) }
        try Test.cancel("\(what) is not running: \(missingHint)")
    }

    public struct PeerMissing: Error, CustomStringConvertible {
        public let what: String
        public var description: String { "\(what) is not running: \(Peers.missingHint)" }
    }
}
