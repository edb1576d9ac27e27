import Foundation
import Pipeline
import PipelineTesting
import Testing
import Transport

/// An HTTPS server with a self-signed certificate, answering 200 to anything.
let selfSignedServer = """
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
s = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
s.socket = ctx.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
"""

@Suite struct HTTPClientTests {
    @Test(.needs("openssl", "python3")) func tlsCertificatesAreVerified() async throws {
        let dir = try ExternalTool.temporaryDirectory()
        let key = dir.appendingPathComponent("key.pem").path
        let cert = dir.appendingPathComponent("cert.pem").path
        let made = try ExternalTool.run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                                                    "-days", "1", "-subj", "/CN=127.0.0.1"])
        #expect(made.status == 0, "\(made.stderr)")
        let server = try BackgroundProcess("python3", ["-c", selfSignedServer, cert, key])
        defer { _ = server.stop() }
        let client = CurlHTTPClient()
        do {
            _ = try await client.send(HTTPRequest(url: URL(string: "https://127.0.0.1:\(server.firstLine)/x")!))
            Issue.record("a self-signed certificate was accepted")
        } catch {
            #expect("\(error)".lowercased().contains("certificate"), "\(error)")
        }
    }
}

@Suite struct MailMessageTests {
    @Test func headersCannotBeInjectedAndTheSubjectIsEncodedWhenNotASCII() throws {
        let message = MailMessage(from: "a@b.example\r\nBcc: evil@x.example", to: ["c@d.example"], subject: "Zürich\nBcc: evil@x.example",
                                  text: "line one\nline two\n", date: Date(timeIntervalSince1970: 1_795_824_000))
        let text = String(decoding: message.rendered(messageID: "id@b.example"), as: UTF8.self)
        let headers = text.components(separatedBy: "\r\n\r\n")[0].components(separatedBy: "\r\n")
        #expect(!headers.contains { $0.hasPrefix("Bcc:") }, "\(headers)")
        #expect(headers.contains("From: a@b.example  Bcc: evil@x.example"))
        #expect(headers.contains { $0.hasPrefix("Subject: =?UTF-8?B?") })
        #expect(headers.contains("Date: Sat, 28 Nov 2026 00:00:00 +0000"))
        #expect(text.hasSuffix("\r\n\r\nline one\r\nline two\r\n"))
    }
}
