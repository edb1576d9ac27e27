import Foundation
import Pipeline
import PipelineTesting
import Stages
import Testing

/// A stand-in S3 that answers from a script of faults, logging each request line on stdout.
/// moto has no way to inject 500s, 503 SlowDown or a connection cut mid-body; this does.
let faultServer = """
import http.server, socket, sys, threading
script = sys.argv[1].split(",")
count = [0]
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def handle_one(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        with lock:
            i = count[0]; count[0] += 1
        step = script[min(i, len(script) - 1)]
        print(self.command, self.path, step, flush=True)
        if step == "cut":
            self.send_response(200); self.send_header("Content-Length", "100"); self.end_headers()
            self.wfile.write(b"partial"); self.wfile.flush(); self.connection.shutdown(socket.SHUT_RDWR); self.close_connection = True; return
        status = int(step)
        codes = {500: "InternalError", 503: "SlowDown", 403: "AccessDenied"}
        payload = b"" if status == 200 else ("<Error><Code>%s</Code><Message>injected</Message></Error>" % codes.get(status, "X")).encode()
        if status == 200 and self.command == "GET": payload = b"stored bytes"
        if status == 200 and self.command == "POST" and "uploads" in self.path:
            payload = b"<InitiateMultipartUploadResult><UploadId>u-1</UploadId></InitiateMultipartUploadResult>"
        self.send_response(status)
        self.send_header("ETag", '"abc"')
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD": self.wfile.write(payload)
    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = handle_one
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
"""

func faultyClient(_ script: String) throws -> (S3Client, BackgroundProcess) {
    let server = try BackgroundProcess("python3", ["-c", faultServer, script])
    let client = S3Client(location: S3Location(endpoint: URL(string: "http://127.0.0.1:\(server.firstLine)")!, bucket: "b1",
                                               region: "us-east-1", pathStyle: true, prefix: ""),
                          credentials: AWSCredentials(accessKeyID: "AKID", secretAccessKey: "secret"),
                          retry: RetryPolicy(maxAttempts: 4, initialBackoff: .milliseconds(5), maxBackoff: .milliseconds(20)))
    return (client, server)
}

@Suite struct StorageFaultTests {
    @Test func slowDownAndServerErrorsAreRetriedUntilTheyPass() async throws {
        let (client, server) = try faultyClient("503,500,200")
        try await client.put("acme/x", data: Data("x".utf8), contentType: "text/plain")
        let log = server.stop().split(separator: "\n")
        #expect(log.map { $0.split(separator: " ").last.map(String.init) ?? "" } == ["503", "500", "200"])
    }

    @Test func aServerThatKeepsFailingGivesUpWithAClearError() async throws {
        let (client, server) = try faultyClient("500")
        do {
            try await client.put("acme/x", data: Data("x".utf8), contentType: "text/plain")
            Issue.record("no error")
        } catch {
            #expect("\(error)" == "PUT s3://b1/acme/x answered 500 InternalError: injected [storage]")
        }
        #expect(server.stop().split(separator: "\n").count == 4)  // every attempt
    }

    @Test func clientErrorsAreNotRetried() async throws {
        let (client, server) = try faultyClient("403,200")
        await #expect(throws: PipelineError.self) { _ = try await client.get("acme/x") }
        #expect(server.stop().split(separator: "\n") == ["GET /b1/acme/x 403"])
    }

    @Test func aResponseCutMidBodyIsRetriedAsTransient() async throws {
        let (client, server) = try faultyClient("cut,200")
        let start = ContinuousClock.now
        #expect(try await client.get("acme/x") == Data("stored bytes".utf8))
        #expect(ContinuousClock.now - start < .seconds(10))
        #expect(server.stop().split(separator: "\n").count == 2)
    }

    @Test func aFailedMultipartUploadIsAborted() async throws {
        // Create → 200 with an UploadId; every part → 500; then the abort (DELETE) must come.
        let (client, server) = try faultyClient("200,500")
        var small = client
        small.multipartThreshold = 1
        small.partSize = 5 << 20
        let file = try ExternalTool.temporaryDirectory().appendingPathComponent("f.bin")
        try Data(count: 6 << 20).write(to: file)
        await #expect(throws: PipelineError.self) { try await small.upload("acme/big", file: file, contentType: "application/zip") }
        let log = server.stop()
        #expect(log.contains("DELETE /b1/acme/big?uploadId="), "\(log)")
    }
}
