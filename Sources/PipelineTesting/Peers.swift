import Foundation

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
