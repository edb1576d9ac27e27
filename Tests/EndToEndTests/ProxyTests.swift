import Foundation
import PipelineTesting
import Testing

/// A forward HTTP proxy that logs each request line and passes it on.
let forwardProxy = """
import http.client, http.server, sys, urllib.parse
class P(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def relay(self):
        url = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        print(self.command, self.path, flush=True)
        c = http.client.HTTPConnection(url.hostname, url.port)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
        c.request(self.command, url.path + ("?" + url.query if url.query else ""), body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"): self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD": self.wfile.write(data)
    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = relay
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), P)
print(s.server_address[1], flush=True)
s.serve_forever()
"""

@Suite struct ProxyTests {
    @Test func proxiesFromTheEnvironmentAreHonored() throws {
        let peer = try Peers.requireS3()
        guard let open = peer.openEndpoint else { try Peers.missing("the second moto_server (without signature checking)") }
        let proxy = try BackgroundProcess("python3", ["-c", forwardProxy])
        let cli = try CLI()
        let result = try cli.run(["health", "--storage", "s3://\(peer.bucket)/proxied?endpoint=\(open)&region=us-east-1"],
                                 environment: ["http_proxy": "http://127.0.0.1:\(proxy.firstLine)", "no_proxy": "",
                                               "NO_PROXY": "", "AWS_ACCESS_KEY_ID": "AKIDPROXY", "AWS_SECRET_ACCESS_KEY": "x"])
        let log = proxy.stop()
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(log.contains("PUT \(open)/\(peer.bucket)/proxied/health/probe-"), "\(log)")
        #expect(log.contains("DELETE \(open)/\(peer.bucket)/proxied/health/probe-"))
    }

}
