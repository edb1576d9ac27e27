import Foundation
import Pipeline
import PipelineTesting
import Testing
@testable import Transport

/// The S3 client over a scripted transport, in process: the faults moto cannot make (500s, 503
/// SlowDown, cut bodies, refused credentials) answered exactly as S3 answers them.
struct FaultyS3 {
    let transport: ScriptedTransport
    let sleeper = RecordingSleeper()
    let client: S3Client

    init(_ transport: ScriptedTransport, clock: @escaping @Sendable () -> Date = { Date(timeIntervalSince1970: 1_795_824_000) }) {
        self.transport = transport
        client = S3Client(location: S3Location(endpoint: URL(string: "http://127.0.0.1:9")!, bucket: "b1", region: "us-east-1",
                                               pathStyle: true, prefix: ""),
                          credentials: AWSCredentials(accessKeyID: "AKID", secretAccessKey: "secret"), http: transport,
                          retry: RetryPolicy(maxAttempts: 4, initialBackoff: .milliseconds(5), maxBackoff: .milliseconds(20)),
                          sleeper: sleeper.sleeper, now: clock)
    }

    static func error(_ status: Int, _ code: String) -> ScriptedTransport.Step {
        .answer(HTTPResponse(status: status, headers: [("Content-Type", "application/xml")],
                             body: Data("<Error><Code>\(code)</Code><Message>injected</Message></Error>".utf8)))
    }

    static let ok = ScriptedTransport.Step.answer(HTTPResponse(status: 200, headers: [("ETag", "\"abc\"")]))
}

@Suite struct StorageFaultTests {
    @Test func slowDownAndServerErrorsAreRetriedUntilTheyPass() async throws {
        let s3 = FaultyS3(ScriptedTransport([FaultyS3.error(503, "SlowDown"), FaultyS3.error(500, "InternalError"), FaultyS3.ok]))
        try await s3.client.put("acme/x", data: Data("x".utf8), contentType: "text/plain")
        #expect(s3.transport.requestCount == 3)
        #expect(s3.sleeper.waits.count == 2)
    }

    @Test func everyAttemptIsSignedAfresh() async throws {
        let ticks = Ticks()
        let s3 = FaultyS3(ScriptedTransport([FaultyS3.error(503, "SlowDown"), FaultyS3.ok]), clock: { ticks.next() })
        try await s3.client.put("acme/x", data: Data("x".utf8), contentType: "text/plain")
        let dates = s3.transport.requests.map { $0.header("X-Amz-Date") }
        #expect(dates == ["20261128T000001Z", "20261128T000002Z"])
        let signatures = Set(s3.transport.requests.compactMap { $0.header("Authorization") })
        #expect(signatures.count == 2)
    }

    @Test func aServerThatKeepsFailingGivesUpWithAClearError() async throws {
        let s3 = FaultyS3(ScriptedTransport([FaultyS3.error(500, "InternalError")]))
        do {
            try await s3.client.put("acme/x", data: Data("x".utf8), contentType: "text/plain")
            Issue.record("no error")
        } catch let error as PipelineError {
            #expect(error.description == "PUT s3://b1/acme/x answered 500 InternalError: injected [storage]")
            #expect(error[.s3Code] == "InternalError")
            #expect(error[.httpStatus] == "500")
        }
        #expect(s3.transport.requestCount == 4)  // every attempt
    }

    @Test func clientErrorsAreNotRetried() async throws {
        let s3 = FaultyS3(ScriptedTransport([FaultyS3.error(404, "NoSuchKey"), FaultyS3.ok]))
        await #expect(throws: PipelineError.self) { _ = try await s3.client.get("acme/x") }
        #expect(s3.transport.requestCount == 1)
    }

    @Test func aWrongSecretSaysTheStorageRefusedTheCredentials() async throws {
        let s3 = FaultyS3(ScriptedTransport([FaultyS3.error(403, "SignatureDoesNotMatch")]))
        do {
            _ = try await s3.client.get("acme/x")
            Issue.record("no error")
        } catch let error as PipelineError {
            #expect(error.message.hasPrefix("the storage refused the credentials (SignatureDoesNotMatch, HTTP 403)"))
            #expect(error.message.contains("AWS_SECRET_ACCESS_KEY"))
            #expect(!error.message.contains("secret\""))
        }
        // A HEAD answer has no body to say why; a 400 or 403 there is read the same way.
        let head = FaultyS3(ScriptedTransport([.answer(HTTPResponse(status: 400))]))
        await #expect(throws: PipelineError.self) { _ = try await head.client.head("acme/x") }
        do { _ = try await head.client.head("acme/x") } catch {
            #expect("\(error)".contains("the storage refused the credentials (BadRequest, HTTP 400)"))
        }
    }

    @Test func aResponseCutMidBodyIsRetriedAsTransient() async throws {
        let cut = PipelineError(.transport, "GET http://127.0.0.1:9/b1/acme/x: Transferred a partial file", transient: true)
        let s3 = FaultyS3(ScriptedTransport([.fail(cut), .answer(HTTPResponse(status: 200, body: Data("stored bytes".utf8)))]))
        #expect(try await s3.client.get("acme/x") == Data("stored bytes".utf8))
        #expect(s3.transport.requestCount == 2)
    }

    @Test func aConditionalPutKeepsAnExistingObjectInOneRequest() async throws {
        let s3 = FaultyS3(ScriptedTransport([FaultyS3.error(412, "PreconditionFailed")]))
        #expect(try await !s3.client.put("acme/x", data: Data("x".utf8), contentType: "text/plain", ifAbsent: true))
        #expect(s3.transport.requestCount == 1)
        #expect(s3.transport.requests.first?.header("If-None-Match") == "*")
        #expect(s3.transport.requests.first?.method == "PUT")
    }

    @Test func aFailedMultipartUploadIsAborted() async throws {
        // Create → 200 with an UploadId; every part → 500; then the abort (DELETE) must come.
        let transport = ScriptedTransport { request in
            switch (request.method, request.url.query ?? "") {
            case ("POST", let query) where query.contains("uploads"):
                return HTTPResponse(status: 200, body: Data("<InitiateMultipartUploadResult><UploadId>u-1</UploadId></InitiateMultipartUploadResult>".utf8))
            case ("DELETE", _): return HTTPResponse(status: 204)
            default: return HTTPResponse(status: 500, body: Data("<Error><Code>InternalError</Code></Error>".utf8))
            }
        }
        var small = FaultyS3(transport).client
        small.multipartThreshold = 1
        small.partSize = 5 << 20
        let file = try ExternalTool.temporaryDirectory().appendingPathComponent("f.bin")
        try Data(count: 6 << 20).write(to: file)
        await #expect(throws: PipelineError.self) { try await small.upload("acme/big", file: file, contentType: "application/zip") }
        let aborts = transport.requests.filter { $0.method == "DELETE" }
        #expect(aborts.count == 1)
        #expect(aborts.first?.url.query == "uploadId=u-1")
    }

    @Test func rangedReadsCoverTheObjectAndAnEmptyObjectReadsEmpty() async throws {
        let payload = Data((0..<2500).map { UInt8(truncatingIfNeeded: $0) })
        let transport = ScriptedTransport { request in
            let range = request.header("Range")!.dropFirst("bytes=".count).split(separator: "-").map { Int($0)! }
            let end = min(range[1], payload.count - 1)
            return HTTPResponse(status: 206, headers: [("Content-Range", "bytes \(range[0])-\(end)/\(payload.count)")],
                                body: payload.subdata(in: range[0]..<end + 1))
        }
        let s3 = FaultyS3(transport)
        var offset: Int64 = 0
        var joined = Data()
        while true {
            let (data, total) = try await s3.client.getRange("acme/x", offset: offset, length: 1000)
            joined.append(data)
            offset += Int64(data.count)
            if offset >= total { break }
        }
        #expect(joined == payload)
        #expect(transport.requestCount == 3)
        let empty = FaultyS3(ScriptedTransport([.answer(HTTPResponse(status: 416, headers: [("Content-Range", "bytes */0")]))]))
        let (data, total) = try await empty.client.getRange("acme/empty", offset: 0, length: 1000)
        #expect(data.isEmpty)
        #expect(total == 0)
    }
}

/// A clock that moves one second per reading.
final class Ticks: @unchecked Sendable {
    private let lock = NSLock()
    private var seconds = 0.0
    func next() -> Date {
        lock.withLock {
            seconds += 1
            return Date(timeIntervalSince1970: 1_795_824_000 + seconds)
        }
    }
}
