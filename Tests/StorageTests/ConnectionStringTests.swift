import Foundation
import Pipeline
import PipelineTesting
@testable import Storage
import Testing

@Suite struct ConnectionStringTests {
    /// Every form libpq accepts, with the secret each holds and what may be shown.
    static let cases: [(String, String, String)] = [
        ("postgres://app:s3cret@db.example:5432/lightsail", "s3cret", "postgres://app:***@db.example:5432/lightsail"),
        ("postgresql://app:pa%23ss@db/x", "pa%23ss", "postgresql://app:***@db/x"),
        ("postgres://app:pa#ss?w@rd/x@db:5432/x", "pa#ss?w@rd", "postgres://app:***@db:5432/x"),
        ("postgres://app:secretpw@h1:5432,h2:5433/x?target_session_attrs=read-write", "secretpw",
         "postgres://app:***@h1:5432,h2:5433/x?target_session_attrs=read-write"),
        ("postgres://app:secretpw@db:notaport/x", "secretpw", "postgres://app:***@db:notaport/x"),
        ("postgres://app:secretpw@", "secretpw", "postgres://app:***@"),
        ("postgres://db/x?user=app&password=secretpw&sslmode=require", "secretpw",
         "postgres://db/x?user=app&password=***&sslmode=require"),
        ("postgres://db/x?sslpassword=keypass", "keypass", "postgres://db/x?sslpassword=***"),
        ("host=db user=app password=secretpw dbname=x", "secretpw", "host=db user=app password=*** dbname=x"),
        ("host=db password = secretpw dbname=x", "secretpw", "host=db password = *** dbname=x"),
        ("host=db password='with spaces and \\' quote' dbname=x", "with spaces", "host=db password=*** dbname=x"),
        ("host=db sslpassword=keypass sslkey=/k.pem", "keypass", "host=db sslpassword=*** sslkey=/k.pem"),
        ("PASSWORD=secretpw host=db", "secretpw", "PASSWORD=*** host=db"),
    ]

    @Test(arguments: cases.indices)
    func everyFormOfPasswordIsMasked(_ n: Int) {
        let (text, secret, shown) = Self.cases[n]
        let redacted = ConnectionString.redact(text)
        #expect(!redacted.contains(secret), "\(redacted)")
        #expect(redacted == shown)
    }

    @Test func aFailedConnectionNamesTheServerButNotThePassword() async throws {
        // Nothing listens on port 1: the error comes back from libpq.
        let url = "postgres://app:pa#ss?w@rd@127.0.0.1:1/x"
        do {
            _ = try await PostgresConnection.connect(.init(url: url))
            Issue.record("connected to nothing")
        } catch let error as PipelineError {
            #expect(!error.description.contains("pa#ss"))
            #expect(!error.debugDescription.contains("pa#ss"))
            #expect(error.description.contains("127.0.0.1"))
        }
    }
}
