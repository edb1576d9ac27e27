import Foundation

/// The fixture API server (`Tests/Peers/api_server.py`) answering as GitHub and Google do, over a
/// world the test describes; stopped when the value goes away.
public final class FixtureAPIServer: @unchecked Sendable {
    public static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Tests/Peers/api_server.py")

    public let url: URL
    private let process: BackgroundProcess

    /// `world` as the script's documentation describes it.
    public init(world: [String: Any]) throws {
        try ExternalTool.require("python3", "curl")
        let file = try ExternalTool.temporaryDirectory().appendingPathComponent("world.json")
        try JSONSerialization.data(withJSONObject: world).write(to: file)
        process = try BackgroundProcess("python3", [Self.script.path, "--world", file.path])
        guard process.firstLine.hasPrefix("listening on "), let port = Int(process.firstLine.dropFirst("listening on ".count)) else {
            throw NSError(domain: "FixtureAPIServer", code: 1,
                          userInfo: [NSLocalizedDescriptionKey: "the fixture API server did not start: \(process.firstLine)"])
        }
        url = URL(string: "http://127.0.0.1:\(port)")!
    }

    /// What the server served: requests, rate-limit charged requests, 304s, tokens issued, by path.
    public func stats() throws -> [String: Any] {
        let result = try ExternalTool.run("curl", ["-sf", url.appendingPathComponent("_stats").absoluteString])
        return (try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]) ?? [:]
    }

    /// An RSA key pair in PEM (private PKCS#8, public SPKI), made with the openssl tool.
    public static func rsaKeyPair() throws -> (privatePEM: String, publicPEM: String) {
        try ExternalTool.require("openssl")
        let folder = try ExternalTool.temporaryDirectory()
        let key = folder.appendingPathComponent("key.pem").path
        let made = try ExternalTool.run("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key])
        guard made.status == 0 else { throw NSError(domain: "openssl", code: Int(made.status)) }
        let pub = try ExternalTool.run("openssl", ["pkey", "-in", key, "-pubout"])
        return (try String(contentsOfFile: key, encoding: .utf8), pub.stdout)
    }
}
