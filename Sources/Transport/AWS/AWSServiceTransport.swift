import Cryptography
import Foundation
import Pipeline

/// Where a request's AWS credentials come from.
public protocol AWSCredentialProvider: Sendable {
    func credentials() async throws -> AWSCredentials
}

/// Credentials known up front: a sealed access key, or the standard chain read once.
public struct StaticAWSCredentials: AWSCredentialProvider {
    let value: AWSCredentials
    public init(_ value: AWSCredentials) { self.value = value }
    public func credentials() async throws -> AWSCredentials { value }
}

/// Cross-account access as compliance tools connect to a customer: STS AssumeRole on the
/// customer's role with the external id its trust policy requires, from the base credentials.
/// The temporary credentials are kept until five minutes before they expire, then renewed.
public actor AssumedRoleCredentials: AWSCredentialProvider {
    let base: any AWSCredentialProvider
    let roleARN: String
    let externalID: String?
    let sessionName: String
    let endpoint: URL
    let region: String
    let http: any HTTPTransport
    let now: @Sendable () -> Date
    private var current: (credentials: AWSCredentials, expires: Date)?
    private var inFlight: Task<(credentials: AWSCredentials, expires: Date), any Error>?
    public private(set) var assumed = 0

    public init(base: any AWSCredentialProvider, roleARN: String, externalID: String?, sessionName: String,
                endpoint: URL, region: String, http: any HTTPTransport, now: @escaping @Sendable () -> Date = { Date() }) {
        self.base = base
        self.roleARN = roleARN
        self.externalID = externalID
        self.sessionName = sessionName
        self.endpoint = endpoint
        self.region = region
        self.http = http
        self.now = now
    }

    public func credentials() async throws -> AWSCredentials {
        if let current, current.expires.timeIntervalSince(now()) > 300 { return current.credentials }
        if let inFlight { return try await inFlight.value.credentials }
        let task = Task { try await assume() }
        inFlight = task
        defer { inFlight = nil }
        let fresh = try await task.value
        assumed += 1
        current = fresh
        return fresh.credentials
    }

    func assume() async throws -> (credentials: AWSCredentials, expires: Date) {
        var query = [("Action", "AssumeRole"), ("Version", "2011-06-15"), ("RoleArn", roleARN),
                     ("RoleSessionName", sessionName), ("DurationSeconds", "3600")]
        if let externalID { query.append(("ExternalId", externalID)) }
        let signer = AWSSigningTransport(base: http, credentials: base, now: now)
        let url = try AWSRequests.url(endpoint, path: "/", query: [])
        let form = query.map { "\(SigV4Signer.encode($0.0))=\(SigV4Signer.encode($0.1))" }.joined(separator: "&")
        let response = try await signer.send(HTTPRequest(method: "POST", url: url,
                                                         headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
                                                         data: Data(form.utf8)).with(attributes: ["aws.service": "sts", "aws.region": region]))
        guard response.status == 200 else {
            let error = AWSRequests.error(response)
            throw PipelineError(response.status == 403 || error.code == "AccessDenied" || error.code.hasPrefix("InvalidClientTokenId")
                                    || error.code == "SignatureDoesNotMatch" ? .authentication : .transport,
                                "STS refused to assume \(roleARN) (\(error.code), HTTP \(response.status)): check the role's trust policy, the external id and the base credentials",
                                fields: [.httpStatus: "\(response.status)"])
        }
        let document = try XMLValue.parse(response.body)
        let credentials = document["AssumeRoleResponse"]?["AssumeRoleResult"]?["Credentials"]
        guard let key = credentials?["AccessKeyId"]?.string, let secret = credentials?["SecretAccessKey"]?.string,
              let token = credentials?["SessionToken"]?.string else {
            throw PipelineError(.transport, "STS's AssumeRole answer holds no credentials")
        }
        let expires = credentials?["Expiration"]?.string.flatMap(AWSRequests.parseTime) ?? now().addingTimeInterval(3600)
        return (AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: token), expires)
    }
}

/// Signs every request with SigV4 for the service and region its attributes name
/// (`aws.service`, `aws.region`), the payload hashed (S3 also gets it as a header).
public struct AWSSigningTransport: HTTPTransport {
    let base: any HTTPTransport
    let credentials: any AWSCredentialProvider
    let now: @Sendable () -> Date

    public init(base: any HTTPTransport, credentials: any AWSCredentialProvider, now: @escaping @Sendable () -> Date = { Date() }) {
        self.base = base
        self.credentials = credentials
        self.now = now
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard let service = request.attributes["aws.service"], let region = request.attributes["aws.region"] else {
            throw PipelineError(.configuration, "\(request.summary): no AWS service and region to sign for")
        }
        guard let components = URLComponents(url: request.url, resolvingAgainstBaseURL: true), let host = components.host else {
            throw PipelineError(.configuration, "\(request.summary): not a URL with a host")
        }
        let hostHeader = components.port.map { "\(host):\($0)" } ?? host
        let payload: Data
        switch request.body {
        case .none: payload = Data()
        case .data(let data): payload = data
        case .file: throw PipelineError(.configuration, "\(request.summary): file bodies are not signed here")
        }
        let payloadHash = Digest.hex(try Digest.sha256(payload))
        let query = (components.percentEncodedQueryItems ?? []).map {
            ($0.name.removingPercentEncoding ?? $0.name, ($0.value ?? "").removingPercentEncoding ?? "")
        }
        let signer = SigV4Signer(credentials: try await credentials.credentials(), region: region, service: service)
        var signed = request
        signed.headers = try signer.sign(SigV4Signer.Request(method: request.method,
                                                             path: components.path.isEmpty ? "/" : components.path,
                                                             query: query, headers: [("Host", hostHeader)] + request.headers),
                                         date: now(), payloadHash: payloadHash, signPayloadHeader: service == "s3")
            .filter { $0.0 != "Host" }
        return try await base.send(signed)
    }
}

extension HTTPRequest {
    func with(attributes: [String: String]) -> HTTPRequest {
        var copy = self
        copy.attributes = attributes
        return copy
    }
}

/// Shapes shared by the AWS protocols: URLs with encoded query strings, error codes from XML and
/// JSON bodies, and AWS's timestamps.
public enum AWSRequests {
    public static func url(_ endpoint: URL, path: String, query: [(String, String)]) throws -> URL {
        var text = endpoint.absoluteString
        if text.hasSuffix("/") { text.removeLast() }
        text += path
        if !query.isEmpty {
            text += "?" + query.map { "\(SigV4Signer.encode($0.0))=\(SigV4Signer.encode($0.1))" }.joined(separator: "&")
        }
        guard let url = URL(string: text) else { throw PipelineError(.configuration, "cannot form an AWS URL from \(endpoint)") }
        return url
    }

    /// The error code and message of a failed answer: `<Error><Code>` (query, S3) or
    /// `__type`/`message` (JSON protocols).
    public static func error(_ response: HTTPResponse) -> (code: String, message: String) {
        if let document = try? XMLValue.parse(response.body) {
            func find(_ value: JSONValue, _ key: String) -> String? {
                switch value {
                case .object(let object):
                    if let text = object[key]?.string { return text }
                    for child in object.values { if let found = find(child, key) { return found } }
                case .array(let list):
                    for child in list { if let found = find(child, key) { return found } }
                default: break
                }
                return nil
            }
            return (find(document, "Code") ?? "HTTP\(response.status)", String((find(document, "Message") ?? "").prefix(200)))
        }
        if let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any] {
            let type = (object["__type"] as? String ?? object["code"] as? String ?? "HTTP\(response.status)")
            let code = type.split(separator: "#").last.map(String.init) ?? type
            let message = object["message"] as? String ?? object["Message"] as? String ?? ""
            return (code, String(message.prefix(200)))
        }
        return ("HTTP\(response.status)", "")
    }

    public static func parseTime(_ text: String) -> Date? {
        if let date = Timestamp.parse(text) { return date }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}
