import Foundation
import Logging
import Pipeline

/// Collects GitHub organization evidence through the REST API (version 2022-11-28):
/// the organization, members without 2FA, repositories, and per repository the default
/// branch's protection and whether Dependabot alerts are on.
public struct GitHubCollector: EvidenceCollector {
    public let source = "github"
    public let baseURL: URL
    /// Follow at most this many pages of one listing (100 items each).
    public let maxPages: Int

    public init(baseURL: URL = URL(string: "https://api.github.com")!, maxPages: Int = 200) {
        self.baseURL = baseURL
        self.maxPages = maxPages
    }

    public enum Operation {
        public static let getOrganization = "orgs/get"
        public static let listMembersWithout2FA = "orgs/list-members?filter=2fa_disabled"
        public static let listRepositories = "repos/list-for-org"
        public static let getBranchProtection = "repos/get-branch-protection"
        public static let checkVulnerabilityAlerts = "repos/check-vulnerability-alerts"
    }

    public func collect(for organization: Organization, context: CollectContext,
                        emit: @escaping @Sendable (CollectEvent) async -> Void) async throws {
        guard let account = organization.integrations[source]?["account"] else {
            throw PipelineError(.configuration, "organization \(organization.id) has no GitHub integration (integrations.github.account)")
        }
        guard Self.isValidLogin(account) else {
            throw PipelineError(.configuration, "GitHub account \(quotedForMessage(account)) of organization \(organization.id) is not a valid login")
        }
        // The API's root: api.github.com, or GitHub Enterprise Server's https://host/api/v3.
        let base = try organization.integrations[source]?["api_url"].map(Self.apiRoot) ?? baseURL
        let session = Session(collector: self, base: base, organization: organization, context: context, emit: emit)

        // The organization first: credentials GitHub refuses fail the source at once, with the
        // reason, instead of once per request.
        let first = try await session.fetchOrganization(account)
        if first == 401 {
            throw PipelineError(.authentication, "GitHub refused the credentials (HTTP 401) reading organization \(account): the token is wrong, expired or revoked",
                                fields: [.httpStatus: "401"])
        }
        async let membersDone: Void = session.paginate(Operation.listMembersWithout2FA,
                                                       "/orgs/\(account)/members?filter=2fa_disabled&per_page=100",
                                                       resource: account) { _ in }
        // Each page of repositories is read as it arrives for the few fields needed next; the page
        // itself goes on as evidence and is not kept.
        let repositoryFields = JSONProjection(["[].name", "[].archived", "[].default_branch"])
        let active = ActiveRepositories()
        await session.paginate(Operation.listRepositories, "/orgs/\(account)/repos?type=all&per_page=100",
                               resource: account) { body in
            guard case .array(let list)? = try? repositoryFields.apply(body) else { return }
            for repo in list {
                guard let name = repo["name"]?.string, Self.isValidRepoName(name), repo["archived"]?.bool != true else { continue }
                active.append((name, repo["default_branch"]?.string ?? "main"))
            }
        }
        try await forEachConcurrently(active.all, width: context.concurrency) { repo in
            let branch = repo.branch.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(.init(charactersIn: "/"))) ?? repo.branch
            // 404 means "not protected" only when GitHub says so; any other 404 (or a 403) is a
            // token that cannot see the protection, which must never read as unprotected.
            await session.fetch(Operation.getBranchProtection, "/repos/\(account)/\(repo.name)/branches/\(branch)/protection",
                                resource: "\(account)/\(repo.name)@\(repo.branch)", evidenceStatuses: [200, 403, 404]) { response in
                response.status == 200 || (response.status == 404 && Session.gitHubMessageText(response) == "Branch not protected")
                    ? nil : "the token cannot read this branch's protection (it needs the Administration read permission)"
            }
            await session.fetch(Operation.checkVulnerabilityAlerts, "/repos/\(account)/\(repo.name)/vulnerability-alerts",
                                resource: "\(account)/\(repo.name)", evidenceStatuses: [204, 404])
        }
        _ = await membersDone
        try Task.checkCancellation()
    }

    public func probe(_ organization: Organization, transport: any HTTPTransport) async throws -> String {
        guard let account = organization.integrations[source]?["account"], Self.isValidLogin(account) else {
            throw PipelineError(.configuration, "the github integration of \(organization.id) names no valid account")
        }
        let base = try organization.integrations[source]?["api_url"].map(Self.apiRoot) ?? baseURL
        let session = Session(collector: self, base: base, organization: organization,
                              context: CollectContext(transport: transport, concurrency: 1, asOf: Date(), freshFor: .seconds(0),
                                                      logger: Logger(label: "lightsail.probe")), emit: { _ in })
        guard let url = session.url("/orgs/\(account)") else { throw PipelineError(.configuration, "cannot form the organization's URL") }
        let response = try await transport.send(session.request(url))
        switch response.status {
        case 200:
            let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any]
            let name = (object?["name"] as? String).map { " (\(quotedForMessage($0, limit: 80)))" } ?? ""
            let remaining = response.header("x-ratelimit-remaining").map { "; rate limit: \($0) requests left" } ?? ""
            return "read organization \(account)\(name)\(remaining)"
        case 401:
            throw PipelineError(.authentication, "GitHub refused the credentials (HTTP 401\(Session.gitHubMessage(response)))",
                                fields: [.httpStatus: "401"])
        case 403, 404:
            throw PipelineError(.authentication, "the credentials cannot read organization \(account) (HTTP \(response.status)\(Session.gitHubMessage(response))): is it the right login, and is the token or App granted to it?",
                                fields: [.httpStatus: "\(response.status)"])
        default:
            throw PipelineError(.transport, "GitHub answered \(response.status) reading organization \(account)",
                                fields: [.httpStatus: "\(response.status)"])
        }
    }

    /// Repositories found so far, in listing order.
    final class ActiveRepositories: @unchecked Sendable {
        private let lock = NSLock()
        private var repositories: [(name: String, branch: String)] = []
        func append(_ repository: (name: String, branch: String)) { lock.withLock { repositories.append(repository) } }
        var all: [(name: String, branch: String)] { lock.withLock { repositories } }
    }

    /// An API root URL as given (`https://ghe.example.com/api/v3/`), without a trailing slash.
    public static func apiRoot(_ text: String) throws -> URL {
        let trimmed = text.hasSuffix("/") ? String(text.dropLast()) : text
        guard let url = URL(string: trimmed), let scheme = url.scheme?.lowercased(), scheme == "https" || scheme == "http",
              url.host != nil, url.query == nil, url.user == nil else {
            throw PipelineError(.configuration, "GitHub API URL \(quotedForMessage(text)) is not an http(s) URL without query or user")
        }
        return url
    }

    /// GitHub logins: alphanumerics and single hyphens, at most 39 characters.
    static func isValidLogin(_ login: String) -> Bool {
        guard (1...39).contains(login.count), !login.hasPrefix("-"), !login.hasSuffix("-") else { return false }
        return login.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || $0 == "-" }
    }

    static func isValidRepoName(_ name: String) -> Bool {
        guard (1...100).contains(name.count), name != ".", name != ".." else { return false }
        return name.unicodeScalars.allSatisfy { ($0.isASCII && CharacterSet.alphanumerics.contains($0)) || "-_.".unicodeScalars.contains($0) }
    }

    /// One collection run against one GitHub organization.
    struct Session: Sendable {
        let collector: GitHubCollector
        let base: URL
        let organization: Organization
        let context: CollectContext
        let emit: @Sendable (CollectEvent) async -> Void

        func request(_ url: URL) -> HTTPRequest {
            HTTPRequest(method: "GET", url: url, headers: [
                ("Accept", "application/vnd.github+json"),
                ("X-GitHub-Api-Version", "2022-11-28"),
                ("User-Agent", "lightsail-pipeline"),
            ])
        }

        /// `pathAndQuery` under the API root (which may itself have a path, as on GitHub Enterprise).
        func url(_ pathAndQuery: String) -> URL? {
            URL(string: base.absoluteString + pathAndQuery)
        }

        /// Fetches the organization's settings as evidence; returns the answer's status (0 when
        /// there was none). Credentials the transport could not get (an App's token refused)
        /// throw: nothing else could be read either.
        func fetchOrganization(_ account: String) async throws -> Int {
            let operation = Operation.getOrganization
            guard let url = url("/orgs/\(account)") else { return 0 }
            let request = request(url)
            let response: HTTPResponse
            do {
                response = try await context.transport.send(request)
            } catch let error as PipelineError where error.code == .authentication {
                throw error
            } catch {
                await fail(operation, account, "\(request.summary): \(error)")
                return 0
            }
            guard response.status == 200 else {
                await fail(operation, account, "\(request.summary) answered \(response.status)\(Self.gitHubMessage(response))")
                return response.status
            }
            await record(operation, resource: account, request: request, response: response)
            return 200
        }

        /// Fetches one URL; an answer with one of `evidenceStatuses` becomes evidence, unless
        /// `refuse` gives a reason it cannot stand for what it seems to say.
        func fetch(_ operation: String, _ pathAndQuery: String, resource: String,
                   evidenceStatuses: Set<Int> = [200], refuse: (HTTPResponse) -> String? = { _ in nil }) async {
            guard let url = url(pathAndQuery) else {
                await fail(operation, resource, "cannot form a URL for \(quotedForMessage(pathAndQuery))")
                return
            }
            let request = request(url)
            guard let response = await answer(operation, request, resource: resource, accepting: evidenceStatuses) else {
                return
            }
            if let reason = refuse(response) {
                await fail(operation, resource, "\(request.summary) answered \(response.status)\(Self.gitHubMessage(response)): \(reason)")
                return
            }
            await record(operation, resource: resource, request: request, response: response)
        }

        /// Sends a request; an error or a status outside `accepting` is reported as a failure.
        func answer(_ operation: String, _ request: HTTPRequest, resource: String,
                    accepting statuses: Set<Int>) async -> HTTPResponse? {
            let response: HTTPResponse
            do {
                response = try await context.transport.send(request)
            } catch {
                await fail(operation, resource, "\(request.summary): \(error)")
                return nil
            }
            guard statuses.contains(response.status) else {
                await fail(operation, resource, "\(request.summary) answered \(response.status)\(Self.gitHubMessage(response))")
                return nil
            }
            return response
        }

        /// Makes evidence of an answer and passes it on.
        func record(_ operation: String, resource: String, request: HTTPRequest, response: HTTPResponse) async {
            let evidence: Evidence
            do {
                evidence = try EvidenceFactory.make(
                    organization: organization.id, source: collector.source, operation: operation, resource: resource,
                    request: request.summary, status: response.status,
                    mediaType: response.header("Content-Type") ?? (response.body.isEmpty ? "text/plain" : "application/json"),
                    body: response.body, collectedAt: context.asOf, freshFor: context.freshFor)
            } catch {
                await fail(operation, resource, "\(request.summary): \(error)")
                return
            }
            await emit(.evidence(evidence, body: response.body))
        }

        /// Follows `Link: rel="next"` from the first page, staying on the API's host, handing each
        /// page's body to `onPage`. A link back to a page already read (the same URL, or its query
        /// in another order) ends the listing with a warning: nothing is read or counted twice.
        func paginate(_ operation: String, _ firstPath: String, resource: String,
                      onPage: (Data) -> Void) async {
            guard var url = url(firstPath) else { return }
            var pages = 0
            var seen: Set<String> = [LinkHeader.identity(of: url)]
            while pages < collector.maxPages {
                let request = request(url)
                guard let response = await answer(operation, request, resource: resource, accepting: [200]) else { return }
                pages += 1
                onPage(response.body)
                await record(operation, resource: resource, request: request, response: response)
                guard let link = response.header("Link"), let next = LinkHeader.parse(link)["next"] else { return }
                guard next.host == base.host, next.scheme == base.scheme, next.port == base.port else {
                    await fail(operation, resource, "\(request.summary): next page link leaves \(base.host ?? "the API host"); not followed")
                    return
                }
                guard seen.insert(LinkHeader.identity(of: next)).inserted else {
                    context.logger.warning("pagination loops back to a page already read; the listing ends here",
                                           metadata: ["operation": "\(operation)", "resource": "\(resource)",
                                                      "page": "\(pages)", "next": "\(next.path)"])
                    return
                }
                url = next
            }
            await fail(operation, resource, "more than \(collector.maxPages) pages; the listing was cut short")
        }

        func fail(_ operation: String, _ resource: String, _ reason: String) async {
            context.logger.warning("evidence not collected", metadata: ["operation": "\(operation)", "resource": "\(resource)",
                                                                         "reason": "\(reason)"])
            await emit(.failure(CollectionFailure(source: collector.source, operation: operation,
                                                  resource: resource, reason: reason)))
        }

        /// GitHub's error `message`, quoted and cut short, when the body carries one.
        static func gitHubMessage(_ response: HTTPResponse) -> String {
            gitHubMessageText(response).map { ": \(quotedForMessage($0, limit: 120))" } ?? ""
        }

        static func gitHubMessageText(_ response: HTTPResponse) -> String? {
            guard response.body.count < 64 << 10,
                  let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any] else { return nil }
            return object["message"] as? String
        }
    }
}
