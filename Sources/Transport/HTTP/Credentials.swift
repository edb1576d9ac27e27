import Cryptography
import Foundation
import Pipeline

/// Adds an `Authorization` header to every request bound for one origin (scheme, host and port);
/// a request anywhere else goes without it, so a token never leaves for another host. The header
/// is made per request (a cached token, refreshed when it nears expiry).
public struct AuthorizingTransport: HTTPTransport {
    public let base: any HTTPTransport
    public let origin: URL
    /// The header carrying the credential: `Authorization`, or an API's own (`X-Api-Key`).
    public let header: String
    let authorization: @Sendable () async throws -> String

    public init(base: any HTTPTransport, origin: URL, header: String = "Authorization",
                authorization: @escaping @Sendable () async throws -> String) {
        self.base = base
        self.origin = origin
        self.header = header
        self.authorization = authorization
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard Self.sameOrigin(request.url, origin) else { return try await base.send(request) }
        var request = request
        request.headers.removeAll { $0.0.caseInsensitiveCompare(header) == .orderedSame }
        request.headers.append((header, try await authorization()))
        return try await base.send(request)
    }

    static func sameOrigin(_ a: URL, _ b: URL) -> Bool {
        func port(_ url: URL) -> Int? { url.port ?? (url.scheme == "https" ? 443 : url.scheme == "http" ? 80 : nil) }
        return a.scheme?.lowercased() == b.scheme?.lowercased() && a.host?.lowercased() == b.host?.lowercased() && port(a) == port(b)
    }
}

/// A token fetched on demand and kept until shortly before it expires; callers arriving while it
/// is being fetched wait for that one fetch.
public actor CachedToken {
    public typealias Fetch = @Sendable () async throws -> (token: String, expires: Date)
    let fetch: Fetch
    let margin: TimeInterval
    let now: @Sendable () -> Date
    private var current: (token: String, expires: Date)?
    private var inFlight: Task<(token: String, expires: Date), any Error>?
    /// Tokens fetched so far (what the tests and `integrations test` look at).
    public private(set) var fetches = 0

    public init(margin: TimeInterval = 300, now: @escaping @Sendable () -> Date = { Date() }, fetch: @escaping Fetch) {
        self.fetch = fetch
        self.margin = margin
        self.now = now
    }

    public func token() async throws -> String {
        if let current, current.expires.timeIntervalSince(now()) > margin { return current.token }
        if let inFlight { return try await inFlight.value.token }
        let task = Task { try await fetch() }
        inFlight = task
        defer { inFlight = nil }
        let fresh = try await task.value
        fetches += 1
        current = fresh
        return fresh.token
    }
}

/// GitHub App authentication: an RS256 JWT from the app's private key (valid nine minutes,
/// issued a minute in the past against clock drift) exchanged for an installation token, which
/// lasts an hour and is kept until five minutes before it ends.
public struct GitHubAppCredentials: Sendable {
    public let appID: String
    public let installationID: String
    public let key: RSASigningKey
    public let apiURL: URL

    public init(appID: String, installationID: String, key: RSASigningKey, apiURL: URL) {
        self.appID = appID
        self.installationID = installationID
        self.key = key
        self.apiURL = apiURL
    }

    public func jwt(now: Date) throws -> String {
        let issued = Int(now.timeIntervalSince1970) - 60
        return try JWT.rs256(claims: ["iat": issued, "exp": issued + 600, "iss": appID], key: key)
    }

    /// Asks GitHub for an installation token through `http`.
    public func installationToken(http: any HTTPTransport, now: Date = Date()) async throws -> (token: String, expires: Date) {
        let url = apiURL.appendingPathComponent("app/installations/\(installationID)/access_tokens")
        let request = HTTPRequest(method: "POST", url: url, headers: [
            ("Accept", "application/vnd.github+json"), ("X-GitHub-Api-Version", "2022-11-28"),
            ("Authorization", "Bearer \(try jwt(now: now))"), ("User-Agent", "lightsail-pipeline"),
        ])
        let response = try await http.send(request)
        guard response.status == 201 else {
            throw PipelineError(response.status == 401 || response.status == 403 || response.status == 404 ? .authentication : .transport,
                                "GitHub refused an installation token for app \(appID), installation \(installationID) (HTTP \(response.status)\(TokenErrors.message(response.body))): check --app-id, --installation-id and the private key",
                                fields: [.httpStatus: "\(response.status)"])
        }
        let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any]
        guard let token = object?["token"] as? String, !token.isEmpty else {
            throw PipelineError(.transport, "GitHub's installation token answer holds no token")
        }
        let expires = (object?["expires_at"] as? String).flatMap(Timestamp.parse) ?? now.addingTimeInterval(3600)
        return (token, expires)
    }
}

/// A Google service account's key file, and the OAuth2 exchange with domain-wide delegation: an
/// RS256 JWT assertion naming the admin to act as, for an access token of the scopes asked.
public struct GoogleServiceAccount: Sendable {
    public let clientEmail: String
    public let privateKeyID: String?
    public let key: RSASigningKey
    public let tokenURL: URL

    /// Reads the JSON key file Google issues (`type: service_account`); `tokenURL` overrides its
    /// `token_uri`.
    public init(json: Data, tokenURL: URL?, what: String) throws {
        guard let object = try? JSONSerialization.jsonObject(with: json) as? [String: Any] else {
            throw PipelineError(.configuration, "\(what) is not JSON")
        }
        guard object["type"] as? String == "service_account" else {
            throw PipelineError(.configuration, "\(what) is not a service account key (its type is not \"service_account\")")
        }
        guard let email = object["client_email"] as? String, let pem = object["private_key"] as? String else {
            throw PipelineError(.configuration, "\(what) lacks client_email or private_key")
        }
        clientEmail = email
        privateKeyID = object["private_key_id"] as? String
        key = try RSASigningKey(pem: pem, what: "the private key of \(what)")
        guard let url = tokenURL ?? (object["token_uri"] as? String).flatMap(URL.init(string:)) ?? URL(string: "https://oauth2.googleapis.com/token") else {
            throw PipelineError(.configuration, "\(what) has no usable token_uri")
        }
        self.tokenURL = url
    }

    public func assertion(subject: String?, scopes: [String], now: Date) throws -> String {
        let issued = Int(now.timeIntervalSince1970)
        var claims: [String: any Sendable] = ["iss": clientEmail, "scope": scopes.joined(separator: " "),
                                              "aud": tokenURL.absoluteString, "iat": issued, "exp": issued + 3600]
        if let subject { claims["sub"] = subject }
        return try JWT.rs256(claims: claims, key: key, keyID: privateKeyID)
    }

    public func accessToken(subject: String?, scopes: [String], http: any HTTPTransport,
                            now: Date = Date()) async throws -> (token: String, expires: Date) {
        let form = "grant_type=" + FormEncoding.encode("urn:ietf:params:oauth:grant-type:jwt-bearer")
            + "&assertion=" + FormEncoding.encode(try assertion(subject: subject, scopes: scopes, now: now))
        let response = try await http.send(HTTPRequest(method: "POST", url: tokenURL, headers: [
            ("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json"),
        ], data: Data(form.utf8)))
        guard response.status == 200 else {
            throw PipelineError(response.status == 400 || response.status == 401 || response.status == 403 ? .authentication : .transport,
                                "Google refused an access token for \(clientEmail)\(subject.map { " acting as \($0)" } ?? "") (HTTP \(response.status)\(TokenErrors.message(response.body))): check the key, --subject and the domain-wide delegation of these scopes",
                                fields: [.httpStatus: "\(response.status)"])
        }
        let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any]
        guard let token = object?["access_token"] as? String, !token.isEmpty else {
            throw PipelineError(.transport, "Google's token answer holds no access_token")
        }
        let lifetime = (object?["expires_in"] as? NSNumber)?.doubleValue ?? 3600
        return (token, now.addingTimeInterval(lifetime))
    }
}

/// `application/x-www-form-urlencoded` values.
public enum FormEncoding {
    static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    public static func encode(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? value
    }
}

/// What a token endpoint said when it refused: GitHub's `message`, OAuth2's `error` and
/// `error_description`; never the rest of the body.
enum TokenErrors {
    static func message(_ body: Data) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else { return "" }
        let parts = [object["message"], object["error"], object["error_description"]].compactMap { $0 as? String }
            .map { String($0.prefix(200)) }
        return parts.isEmpty ? "" : ": " + parts.joined(separator: ": ")
    }
}
