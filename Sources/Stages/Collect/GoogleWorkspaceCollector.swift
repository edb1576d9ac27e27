import Foundation
import Logging
import Pipeline

/// Collects Google Workspace evidence through the Admin SDK Directory API (v1): every user with
/// their 2-step verification, suspension, admin flags and last login (`users.list`, following
/// `pageToken`), the admin roles, and who holds them. The transport beneath adds the OAuth2 token
/// a service account gets with domain-wide delegation, or a replay answers.
public struct GoogleWorkspaceCollector: EvidenceCollector {
    public let source = "google_workspace"
    public let baseURL: URL
    public let maxPages: Int

    public init(baseURL: URL = URL(string: "https://admin.googleapis.com")!, maxPages: Int = 500) {
        self.baseURL = baseURL
        self.maxPages = maxPages
    }

    public enum Operation {
        public static let listUsers = "directory/users.list"
        public static let listRoles = "directory/roles.list"
        public static let listRoleAssignments = "directory/roleAssignments.list"
    }

    /// The scopes a service account is delegated for (read-only).
    public static let scopes = ["https://www.googleapis.com/auth/admin.directory.user.readonly",
                                "https://www.googleapis.com/auth/admin.directory.rolemanagement.readonly"]

    struct Session: Sendable {
        let base: URL
        let customer: String
        let organization: Organization
        let context: CollectContext
        let emit: @Sendable (CollectEvent) async -> Void
        let maxPages: Int

        static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        static func encode(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text }

        func url(_ path: String, _ query: [(String, String)]) -> URL? {
            var text = base.absoluteString
            if text.hasSuffix("/") { text.removeLast() }
            text += path
            if !query.isEmpty { text += "?" + query.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&") }
            return URL(string: text)
        }

        /// Reads every page of a listing as evidence, following `nextPageToken`. The first answer
        /// of the run decides whether the credentials work: a refusal throws.
        func pages(_ operation: String, _ path: String, _ query: [(String, String)], first: Bool = false) async throws {
            var token: String?
            var seen = Set<String>()
            for page in 0..<maxPages {
                guard let url = url(path, query + (token.map { [("pageToken", $0)] } ?? [])) else {
                    await fail(operation, "cannot form a URL for \(path)")
                    return
                }
                let request = HTTPRequest(method: "GET", url: url, headers: [("Accept", "application/json")])
                let response: HTTPResponse
                do {
                    response = try await context.transport.send(request)
                } catch let error as PipelineError where error.code == .authentication {
                    throw error
                } catch {
                    await fail(operation, "\(request.summary): \(error)")
                    return
                }
                if first, page == 0, response.status == 401 {
                    throw PipelineError(.authentication, "Google refused the access token (HTTP 401)\(Self.message(response))",
                                        fields: [.httpStatus: "401"])
                }
                guard response.status == 200 else {
                    await fail(operation, "\(request.summary) answered \(response.status)\(Self.message(response))")
                    return
                }
                do {
                    let evidence = try EvidenceFactory.make(
                        organization: organization.id, source: "google_workspace", operation: operation,
                        resource: "customer/\(customer)", request: request.summary, status: 200, mediaType: "application/json",
                        body: response.body, collectedAt: context.asOf, freshFor: context.freshFor)
                    await emit(.evidence(evidence, body: response.body))
                } catch {
                    await fail(operation, "\(request.summary): \(error)")
                    return
                }
                let next = (try? JSONProjection(["nextPageToken"]).apply(response.body))?["nextPageToken"]?.string
                guard let next, !next.isEmpty else { return }
                guard seen.insert(next).inserted else {
                    context.logger.warning("pagination repeats a page token; the listing ends here", metadata: ["operation": "\(operation)"])
                    return
                }
                token = next
            }
            await fail(operation, "more than \(maxPages) pages; the listing was cut short")
        }

        func fail(_ operation: String, _ reason: String) async {
            context.logger.warning("evidence not collected", metadata: ["operation": "\(operation)", "reason": "\(reason)"])
            await emit(.failure(CollectionFailure(source: "google_workspace", operation: operation, resource: "customer/\(customer)",
                                                  reason: reason)))
        }

        /// Google's `error.message` (or OAuth2's `error_description`), quoted and cut short.
        static func message(_ response: HTTPResponse) -> String {
            guard let object = try? JSONSerialization.jsonObject(with: response.body.prefix(65_536)) as? [String: Any] else { return "" }
            let text = ((object["error"] as? [String: Any])?["message"] as? String) ?? (object["error_description"] as? String)
            return text.map { ": \(quotedForMessage($0, limit: 160))" } ?? ""
        }
    }

    func session(_ organization: Organization, context: CollectContext,
                 emit: @escaping @Sendable (CollectEvent) async -> Void) throws -> Session {
        let settings = organization.integrations[source] ?? [:]
        let customer = settings["customer"] ?? "my_customer"
        guard !customer.isEmpty, customer.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
            throw PipelineError(.configuration, "Google customer id \(quotedForMessage(customer)) of \(organization.id) is not valid")
        }
        var base = baseURL
        if let text = settings["api_url"] {
            guard let url = URL(string: text), url.scheme == "https" || url.scheme == "http", url.host != nil else {
                throw PipelineError(.configuration, "Google API URL \(quotedForMessage(text)) of \(organization.id) is not an http(s) URL")
            }
            base = url
        }
        return Session(base: base, customer: customer, organization: organization, context: context, emit: emit, maxPages: maxPages)
    }

    public func collect(for organization: Organization, context: CollectContext,
                        emit: @escaping @Sendable (CollectEvent) async -> Void) async throws {
        let session = try session(organization, context: context, emit: emit)
        try await session.pages(Operation.listUsers, "/admin/directory/v1/users",
                                [("customer", session.customer), ("maxResults", "500"), ("projection", "full"), ("orderBy", "email")],
                                first: true)
        let customer = Session.encode(session.customer)
        async let roles: Void = session.pages(Operation.listRoles, "/admin/directory/v1/customer/\(customer)/roles", [("maxResults", "100")])
        async let assignments: Void = session.pages(Operation.listRoleAssignments, "/admin/directory/v1/customer/\(customer)/roleassignments",
                                                    [("maxResults", "200")])
        _ = try await (roles, assignments)
    }

    public func probe(_ organization: Organization, transport: any HTTPTransport) async throws -> String {
        let context = CollectContext(transport: transport, concurrency: 1, asOf: Date(), freshFor: .seconds(0),
                                     logger: Logger(label: "lightsail.probe"))
        let session = try session(organization, context: context, emit: { _ in })
        guard let url = session.url("/admin/directory/v1/users", [("customer", session.customer), ("maxResults", "1")]) else {
            throw PipelineError(.configuration, "cannot form the directory's URL")
        }
        let response = try await transport.send(HTTPRequest(method: "GET", url: url, headers: [("Accept", "application/json")]))
        switch response.status {
        case 200:
            return "read the user directory of customer \(session.customer)"
        case 401, 403:
            throw PipelineError(.authentication, "Google refused the directory read (HTTP \(response.status)\(Session.message(response)))",
                                fields: [.httpStatus: "\(response.status)"])
        default:
            throw PipelineError(.transport, "Google answered \(response.status) reading the directory\(Session.message(response))",
                                fields: [.httpStatus: "\(response.status)"])
        }
    }
}
