import Cryptography
import Foundation
import Pipeline
import PipelineTesting
@testable import Storage
@testable import Transport
import Testing

/// An S3 client for the moto peer, each test under its own prefix.
/// With `open`, the moto server that checks no signatures.
func s3Client(secret: String? = nil, accessKey: String? = nil, open: Bool = false) throws -> S3Client {
    let peer = try Peers.requireS3()
    let endpoint = open ? peer.openEndpoint : peer.endpoint
    guard let endpoint else { try Peers.missing("the second moto_server (without signature checking)") }
    let location = S3Location(endpoint: URL(string: endpoint)!, bucket: peer.bucket, region: "us-east-1",
                              pathStyle: true, prefix: "t-\(UUID().uuidString.prefix(8).lowercased())/")
    var client = S3Client(location: location,
                          credentials: AWSCredentials(accessKeyID: accessKey ?? peer.accessKeyID,
                                                      secretAccessKey: secret ?? peer.secretAccessKey),
                          retry: RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(10)))
    client.multipartThreshold = 6 << 20
    client.partSize = 5 << 20
    return client
}

@Suite struct S3ClientTests {
    @Test func anObjectGoesUpAndComesBackWithItsChecksum() async throws {
        let client = try s3Client()
        let key = client.location.prefix + "acme/evidence/e1/original.json"
        let data = Data("{\"hello\": \"wörld\"}".utf8)
        try await client.put(key, data: data, contentType: "application/json")
        #expect(try await client.get(key) == data)
        let head = try #require(try await client.head(key))
        #expect(head.size == data.count)
        #expect(try await client.head(key + ".missing") == nil)
    }

    /// On the open server: moto 5.2 rejects even boto3's signatures for keys that need encoding.
    @Test func keysWithAwkwardCharactersRoundTrip() async throws {
        let client = try s3Client(open: true)
        for name in ["a b+c.json", "ünïcode/ĸey.txt", "test$file.text", "x=y&z;~!.bin"] {
            let key = client.location.prefix + "acme/" + name
            try await client.put(key, data: Data(name.utf8), contentType: "text/plain")
            #expect(try await client.get(key) == Data(name.utf8), "\(name)")
        }
        let listed = try await client.list(prefix: client.location.prefix + "acme/")
        #expect(listed.count == 4)
    }

    /// On the open server: moto 5.2 rejects signed listings whose prefix needs encoding ('/').
    @Test func listingFollowsContinuationTokens() async throws {
        let client = try s3Client(open: true)
        try await forEachConcurrently(0..<1005, width: 16) { n in
            try await client.put(client.location.prefix + "many/\(String(format: "%05d", n))", data: Data([UInt8(n % 256)]),
                                 contentType: "application/octet-stream")
        }
        let listed = try await client.list(prefix: client.location.prefix + "many/")
        #expect(listed.count == 1005)
        #expect(Set(listed.map(\.key)).count == 1005)
    }

    @Test func aLargeFileGoesUpInPartsAndStreamsBackToDisk() async throws {
        let client = try s3Client()
        let dir = try ExternalTool.temporaryDirectory()
        let source = dir.appendingPathComponent("big.bin")
        var bytes = Data(count: 17 << 20)
        bytes.withUnsafeMutableBytes { raw in
            for i in stride(from: 0, to: raw.count, by: 4096) { raw[i] = UInt8(truncatingIfNeeded: i / 4096) }
        }
        try bytes.write(to: source)
        let key = client.location.prefix + "acme/exports/big.zip"
        try await client.upload(key, file: source, contentType: "application/zip")
        let target = dir.appendingPathComponent("back.bin")
        try await client.download(key, to: target)
        #expect(try Digest.sha256Hex(try Data(contentsOf: target)) == Digest.sha256Hex(bytes))
        #expect(try await client.head(key)?.size == bytes.count)
    }

    @Test func aWrongSecretIsRefusedAndTheErrorSaysWhy() async throws {
        let client = try s3Client(secret: "not-the-secret")
        do {
            try await client.put(client.location.prefix + "x", data: Data("x".utf8), contentType: "text/plain")
            Issue.record("a wrongly signed request was accepted")
        } catch {
            #expect("\(error)".contains("the storage refused the credentials (SignatureDoesNotMatch, HTTP 403)"))
            #expect(!"\(error)".contains("not-the-secret"))
        }
    }

    @Test func anUnknownKeyIsRefused() async throws {
        let client = try s3Client(accessKey: "AKIAUNKNOWNKEY000000")
        do {
            _ = try await client.list(prefix: "")
            Issue.record("an unknown key was accepted")
        } catch {
            #expect("\(error)".contains("InvalidAccessKeyId"))
        }
    }

    /// On the open server: moto 5.2 answers 500 to any request without an Authorization header,
    /// so it cannot check a presigned URL; the signatures themselves are checked against the S3
    /// documentation's presigned example in SigV4Tests.
    @Test func presignedURLsWorkForAnyone() async throws {
        let client = try s3Client(open: true)
        let key = client.location.prefix + "acme/exports/exp-1.zip"
        let put = try client.presignedURL("PUT", key: key, expires: .seconds(300))
        let upload = try ExternalTool.run("curl", ["-sf", "-X", "PUT", "-H", "Content-Type: application/zip", "--data-binary", "bundle bytes", put.absoluteString])
        #expect(upload.status == 0, "\(upload.stderr)")
        let get = try client.presignedURL("GET", key: key, expires: .seconds(300))
        let download = try ExternalTool.run("curl", ["-sf", get.absoluteString])
        #expect(download.stdout == "bundle bytes")
        #expect(throws: PipelineError.self) { try client.presignedURL("GET", key: key, expires: .seconds(8 * 86_400)) }
    }

    @Test func deleteRemovesAndIsIdempotent() async throws {
        let client = try s3Client()
        let key = client.location.prefix + "acme/tmp"
        try await client.put(key, data: Data("x".utf8), contentType: "text/plain")
        try await client.delete(key)
        try await client.delete(key)
        #expect(try await client.head(key) == nil)
    }

    @Test func theObjectStoreNeverOverwritesWhenAskedNotTo() async throws {
        let client = try s3Client()
        let store = S3ObjectStore(client: client)
        #expect(try await store.put("acme/evidence/e/original.json", data: Data("1".utf8), contentType: "application/json", ifAbsent: true))
        #expect(try await !store.put("acme/evidence/e/original.json", data: Data("2".utf8), contentType: "application/json", ifAbsent: true))
        #expect(try await store.get("acme/evidence/e/original.json") == Data("1".utf8))
        #expect(store.location(of: "acme/x").hasPrefix("s3://lightsail-test/\(client.location.prefix)acme/x"))
    }
}

@Suite struct StorageURLTests {
    @Test func s3URLsCarryEndpointRegionAndPrefix() throws {
        let parsed = try StorageURL.parse("s3://lightsail-prod/exports/v1?endpoint=http://127.0.0.1:9000&region=eu-west-1")
        #expect(parsed == .s3(S3Location(endpoint: URL(string: "http://127.0.0.1:9000")!, bucket: "lightsail-prod",
                                         region: "eu-west-1", pathStyle: true, prefix: "exports/v1/")))
        let aws = try StorageURL.parse("s3://lightsail-prod?region=us-west-2")
        #expect(aws == .s3(S3Location(endpoint: URL(string: "https://s3.us-west-2.amazonaws.com")!, bucket: "lightsail-prod",
                                      region: "us-west-2", pathStyle: false, prefix: "")))
        #expect(try StorageURL.parse("file:///var/lib/lightsail") == .local(URL(fileURLWithPath: "/var/lib/lightsail")))
    }

    @Test(arguments: ["s3://", "s3://A_B", "ftp://x/y", "s3://bucket?endpoint=gopher://x", "s3://bucket/../x",
                      "s3://bucket?colour=blue", "not a url", "s3://bucket?path_style=maybe"])
    func badStorageURLsAreRefusedClearly(_ text: String) {
        #expect(throws: PipelineError.self) { try StorageURL.parse(text) }
    }

    @Test func virtualHostedAddressingPutsTheBucketInTheHost() {
        let client = S3Client(location: S3Location(endpoint: URL(string: "https://s3.us-east-1.amazonaws.com")!, bucket: "b1",
                                                   region: "us-east-1", pathStyle: false, prefix: ""),
                              credentials: AWSCredentials(accessKeyID: "a", secretAccessKey: "s"))
        let url = try! client.presignedURL("GET", key: "acme/x y.zip", expires: .seconds(60))
        #expect(url.absoluteString.hasPrefix("https://b1.s3.us-east-1.amazonaws.com/acme/x%20y.zip?X-Amz-Algorithm=AWS4-HMAC-SHA256"))
    }

    @Test func credentialsComeFromTheEnvironmentThenTheSharedFile() throws {
        let env = try AWSCredentialChain.resolve(environment: ["AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t"])
        #expect(env == AWSCredentials(accessKeyID: "AKIDENV", secretAccessKey: "s", sessionToken: "t"))
        let file = try ExternalTool.temporaryDirectory().appendingPathComponent("credentials")
        try "[default]\naws_access_key_id = AKIDDEF\naws_secret_access_key = d\n\n[ci]\naws_access_key_id=AKIDCI\naws_secret_access_key=c\n"
            .write(to: file, atomically: true, encoding: .utf8)
        let profile = try AWSCredentialChain.resolve(environment: ["AWS_SHARED_CREDENTIALS_FILE": file.path, "AWS_PROFILE": "ci"])
        #expect(profile.accessKeyID == "AKIDCI")
        #expect(try AWSCredentialChain.resolve(environment: ["AWS_SHARED_CREDENTIALS_FILE": file.path]).accessKeyID == "AKIDDEF")
        #expect(throws: PipelineError.self) {
            try AWSCredentialChain.resolve(environment: ["AWS_SHARED_CREDENTIALS_FILE": file.path, "AWS_PROFILE": "nope"])
        }
    }
}
