import Foundation
import Logging
import Pipeline

/// Collects GitHub organization evidence through the REST API (version 2022-11-28): the
/// organization's settings, members without 2FA, owners, outside collaborators (and those without
/// 2FA), repositories (with their secret scanning settings), and per repository the default
/// branch's protection, the rules of rulesets that apply to it, and whether Dependabot alerts are
/// on; with an enterprise named, its audit-log streams.
///
/// Everything that does not depend on something else is asked for at once: the organization-wide
/// listings beside the repositories, the pages of a listing together once the first names the
/// last, and a repository's three answers together. The stage's `concurrency` bounds what is in
/// flight (the transport given is limited), so the collector need not.
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
        public static let listOwners = "orgs/list-members?role=admin"
        public static let listOutsideCollaborators = "orgs/list-outside-collaborators"
        public static let listOutsideCollaboratorsWithout2FA = "orgs/list-outside-collaborators?filter=2fa_disabled"
        public static let listRepositories = "repos/list-for-org"
        public static let getBranchProtection = "repos/get-branch-protection"
        public static let getBranchRules = "repos/get-branch-rules"
        public static let checkVulnerabilityAlerts = "repos/check-vulnerability-alerts"
        public static let listAuditLogStreams = "enterprise-admin/get-audit-log-streams"
    }

    public func collect(for organization: Organization, context: CollectContext,
                        emit: @escaping @Sendable (CollectEvent) async -> Void) async throws {
        let settings = organization.integrations[source] ?? [:]
        guard let account = settings["account"] else {
            throw PipelineError(.configuration, "organization \(organization.id) has no GitHub integration (integrations.github.account)")
        }
        guard Self.isValidLogin(account) else {
            throw PipelineError(.configuration, "GitHub account \(quotedForMessage(account)) of organization \(organization.id) is not a valid login")
        }
        let enterprise = settings["enterprise"]
        if let enterprise, !Self.isValidLogin(enterprise) {
            throw PipelineError(.configuration, "GitHub enterprise \(quotedForMessage(enterprise)) of organization \(organization.id) is not a valid slug")
        }
        // The API's root: api.github.com, or GitHub Enterprise Server's https://host/api/v3.
        let base = try settings["api_url"].map(Self.apiRoot) ?? baseURL
        let session = Session(collector: self, base: base, organization: organization, context: context, emit: emit)

        // The organization first: credentials GitHub refuses fail the source at once, with the
        // reason, instead of once per request.
        let first = try await session.fetchOrganization(account)
        if first == 401 {
            throw PipelineError(.authentication, "GitHub refused the credentials (HTTP 401) reading organization \(account): the token is wrong, expired or revoked",
                                fields: [.httpStatus: "401"])
        }
        async let organizationWide: Void = withTaskGroup(of: Void.self) { group in
            let listings = [
                (Operation.listMembersWithout2FA, "/orgs/\(account)/members?filter=2fa_disabled&per_page=100"),
                (Operation.listOwners, "/orgs/\(account)/members?role=admin&per_page=100"),
                (Operation.listOutsideCollaborators, "/orgs/\(account)/outside_collaborators?per_page=100"),
                (Operation.listOutsideCollaboratorsWithout2FA, "/orgs/\(account)/outside_collaborators?filter=2fa_disabled&per_page=100"),
            ]
            for (operation, path) in listings {
                group.addTask { _ = await session.paginate(operation, path, resource: account) { _ in () } }
            }
            if let enterprise {
                group.addTask {
                    await session.fetch(Operation.listAuditLogStreams, "/enterprises/\(enterprise)/audit-log/streams", resource: enterprise)
                }
            }
        }
        // Of each page of repositories only the few fields needed next are kept; the page itself
        // goes on as evidence.
        let repositoryFields = JSONProjection(["[].name", "[].archived", "[].default_branch"])
        let pages = await session.paginate(Operation.listRepositories, "/orgs/\(account)/repos?type=all&per_page=100",
                                           resource: account) { body -> [(name: String, branch: String)] in
            guard case .array(let list)? = try? repositoryFields.apply(body) else { return [] }
            return list.compactMap { repo in
                guard let name = repo["name"]?.string, Self.isValidRepoName(name), repo["archived"]?.bool != true else { return nil }
                return (name, repo["default_branch"]?.string ?? "main")
            }
        }
        // Enough repositories under way to keep every permitted request busy, and no more.
        try await forEachConcurrently(pages.joined(), width: max(1, context.concurrency)) { repo in
            let branch = repo.branch.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(.init(charactersIn: "/"))) ?? repo.branch
            let branchResource = "\(account)/\(repo.name)@\(repo.branch)"
            async let protection: Void = session.fetch(
                Operation.getBranchProtection, "/repos/\(account)/\(repo.name)/branches/\(branch)/protection",
                resource: branchResource, evidenceStatuses: [200, 403, 404]
            ) { response in
                // 404 means "not protected" only when GitHub says so; any other 404 (or a 403) is a
                // token that cannot see the protection, which must never read as unprotected.
                response.status == 200 || (response.status == 404 && Session.gitHubMessageText(response) == "Branch not protected")
                    ? nil : "the token cannot read this branch's protection (it needs the Administration read permission)"
            }
            // Rules of active rulesets (the repository's and the organization's) for the branch.
            async let rules: Void = session.fetch(Operation.getBranchRules,
                                                  "/repos/\(account)/\(repo.name)/rules/branches/\(branch)?per_page=100",
                                                  resource: branchResource)
            async let alerts: Void = session.fetch(Operation.checkVulnerabilityAlerts, "/repos/\(account)/\(repo.name)/vulnerability-alerts",
                                                   resource: "\(account)/\(repo.name)", evidenceStatuses: [204, 404])
            _ = await (protection, rules, alerts)
        }
        _ = await organizationWide
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
    public static func isValidLogin(_ login: String) -> Bool {
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

        /// Reads every page of a listing, handing each page's body to `onPage` and returning what
        /// it made of each, in page order. When the first page's `Link` names a numbered last page
        /// on the API's host, the others are asked for together (as many at once as the stage
        /// allows); otherwise `rel="next"` is followed page by page. A link back to a page already
        /// read (the same URL, or its query in another order) ends the listing with a warning:
        /// nothing is read or counted twice.
        func paginate<T: Sendable>(_ operation: String, _ firstPath: String, resource: String,
                                   onPage: @escaping @Sendable (Data) -> T) async -> [T] {
            guard let firstURL = url(firstPath) else { return [] }
            let request = request(firstURL)
            guard let response = await answer(operation, request, resource: resource, accepting: [200]) else { return [] }
            let firstValue = onPage(response.body)
            await record(operation, resource: resource, request: request, response: response)
            let links = response.header("Link").map(LinkHeader.parse) ?? [:]
            guard let next = links["next"] else { return [firstValue] }
            if let last = links["last"], let numbered = LinkHeader.numberedPages(next: next, last: last), onAPIHost(last) {
                guard numbered.count < collector.maxPages else {
                    await fail(operation, resource, "\(numbered.count + 1) pages, more than \(collector.maxPages); the listing was not read")
                    return [firstValue]
                }
                let rest = (try? await mapConcurrently(numbered, width: max(1, context.concurrency)) { url -> T? in
                    let request = self.request(url)
                    guard let response = await answer(operation, request, resource: resource, accepting: [200]) else { return nil }
                    let value = onPage(response.body)
                    await record(operation, resource: resource, request: request, response: response)
                    return value
                }) ?? []
                return [firstValue] + rest.compactMap { $0 }
            }
            return await follow(operation, from: next, after: firstURL, resource: resource, first: firstValue, onPage: onPage)
        }

        func onAPIHost(_ url: URL) -> Bool {
            url.host == base.host && url.scheme == base.scheme && url.port == base.port
        }

        /// Follows `rel="next"` one page at a time.
        func follow<T: Sendable>(_ operation: String, from start: URL, after firstURL: URL, resource: String, first: T,
                                 onPage: @Sendable (Data) -> T) async -> [T] {
            var values = [first]
            var url = start
            var seen: Set<String> = [LinkHeader.identity(of: firstURL)]
            while values.count < collector.maxPages {
                guard onAPIHost(url) else {
                    await fail(operation, resource, "next page link leaves \(base.host ?? "the API host"); not followed")
                    return values
                }
                guard seen.insert(LinkHeader.identity(of: url)).inserted else {
                    context.logger.warning("pagination loops back to a page already read; the listing ends here",
                                           metadata: ["operation": "\(operation)", "resource": "\(resource)",
                                                      "page": "\(values.count)", "next": "\(url.path)"])
                    return values
                }
                let request = request(url)
                guard let response = await answer(operation, request, resource: resource, accepting: [200]) else { return values }
                values.append(onPage(response.body))
                await record(operation, resource: resource, request: request, response: response)
                guard let link = response.header("Link"), let next = LinkHeader.parse(link)["next"] else { return values }
                url = next
            }
            await fail(operation, resource, "more than \(collector.maxPages) pages; the listing was cut short")
            return values
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
