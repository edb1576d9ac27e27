import Foundation
import Logging
import Pipeline

/// Collects a source declared in a definition (`sources:` with `type: http`): each request's
/// pages are read as the declaration says (Link, a next-page token, or page numbers), and either
/// every page, or every item of each page's list (its declared fields, under the resource its
/// template names), becomes evidence. The integration gives the base URL (`base_url`) and the
/// values of the path's placeholders; the transport beneath carries the secret.
public struct HTTPSourceCollector: EvidenceCollector {
    public let definition: HTTPSourceDefinition
    public var source: String { definition.name }
    /// Follow at most this many pages of one listing.
    public let maxPages: Int

    public init(_ definition: HTTPSourceDefinition, maxPages: Int = 500) {
        self.definition = definition
        self.maxPages = maxPages
    }

    public func collect(for organization: Organization, context: CollectContext,
                        emit: @escaping @Sendable (CollectEvent) async -> Void) async throws {
        let settings = organization.integrations[source] ?? [:]
        let base = try Self.baseURL(settings, source: source, organization: organization)
        let session = Session(collector: self, base: base, settings: settings, organization: organization,
                              context: context, emit: emit)
        var first = true
        for request in definition.requests {
            // The first request's refusal fails the source at once: nothing else would be read.
            try await session.read(request, failOnRefusal: first)
            first = false
        }
        try Task.checkCancellation()
    }

    public func probe(_ organization: Organization, transport: any HTTPTransport) async throws -> String {
        let settings = organization.integrations[source] ?? [:]
        let base = try Self.baseURL(settings, source: source, organization: organization)
        guard let request = definition.requests.first else { throw PipelineError(.configuration, "source \(source) declares no request") }
        let session = Session(collector: self, base: base, settings: settings, organization: organization,
                              context: CollectContext(transport: transport, concurrency: 1, asOf: Date(), freshFor: .seconds(0),
                                                      logger: Logger(label: "lightsail.probe")), emit: { _ in })
        let url = try session.url(for: request)
        let response = try await transport.send(session.request(url))
        switch response.status {
        case 200..<300: return "\(request.operation) answered \(response.status)"
        case 401, 403:
            throw PipelineError(.authentication, "\(base.host ?? "the API") refused the credentials (HTTP \(response.status)) for \(request.operation)",
                                fields: [.httpStatus: "\(response.status)"])
        default:
            throw PipelineError(.transport, "\(request.operation) answered \(response.status)", fields: [.httpStatus: "\(response.status)"])
        }
    }

    public static func baseURL(_ settings: [String: String], source: String, organization: Organization) throws -> URL {
        guard let text = settings["base_url"] else {
            throw PipelineError(.configuration, "the \(source) integration of \(organization.id) has no base URL (integrations add --base-url)")
        }
        let trimmed = text.hasSuffix("/") ? String(text.dropLast()) : text
        guard let url = URL(string: trimmed), let scheme = url.scheme?.lowercased(), scheme == "https" || scheme == "http",
              url.host != nil, url.query == nil, url.user == nil else {
            throw PipelineError(.configuration, "the base URL \(quotedForMessage(text)) of \(source) is not an http(s) URL without query or user")
        }
        return url
    }

    struct Session: Sendable {
        let collector: HTTPSourceCollector
        let base: URL
        let settings: [String: String]
        let organization: Organization
        let context: CollectContext
        let emit: @Sendable (CollectEvent) async -> Void

        var source: String { collector.source }
        /// The resource of whole-page evidence: the integration's account if it names one.
        var account: String { settings["account"] ?? organization.id.rawValue }

        func request(_ url: URL) -> HTTPRequest {
            HTTPRequest(method: "GET", url: url, headers: [("Accept", "application/json"), ("User-Agent", "lightsail-pipeline")])
        }

        /// The request's first URL: its path under the base URL, placeholders filled from the
        /// integration's settings, each value percent-encoded.
        func url(for request: HTTPSourceDefinition.Request) throws -> URL {
            var missing: String?
            let allowed = CharacterSet.urlPathAllowed.subtracting(CharacterSet(charactersIn: "/?&=#+"))
            let path = HTTPSourceDefinition.expand(request.path) { name in
                guard let value = settings[name] else { missing = name; return nil }
                return value.addingPercentEncoding(withAllowedCharacters: allowed)
            }
            guard let path else {
                throw PipelineError(.configuration, "\(source) request \(request.operation) needs the setting '\(missing ?? "?")' (integrations add --setting \(missing ?? "?")=…)")
            }
            guard let url = URL(string: base.absoluteString + path) else {
                throw PipelineError(.configuration, "\(source) request \(request.operation): cannot form a URL from \(quotedForMessage(path))")
            }
            return url
        }

        func read(_ request: HTTPSourceDefinition.Request, failOnRefusal: Bool) async throws {
            var url = try url(for: request)
            var seen: Set<String> = []
            var page = 0
            if case .page(let parameter, let start) = request.pagination { url = Self.setting(url, parameter, String(start)) }
            while page < collector.maxPages {
                guard seen.insert(LinkHeader.identity(of: url)).inserted else {
                    context.logger.warning("pagination loops back to a page already read; the listing ends here",
                                           metadata: ["operation": "\(request.operation)", "page": "\(page)"])
                    return
                }
                let sent = self.request(url)
                let response: HTTPResponse
                do {
                    response = try await context.transport.send(sent)
                } catch let error as PipelineError where error.code == .authentication {
                    throw error
                } catch {
                    await fail(request.operation, "\(sent.summary): \(error)")
                    return
                }
                if failOnRefusal, page == 0, response.status == 401 || response.status == 403 {
                    throw PipelineError(.authentication, "\(base.host ?? "the API") refused the credentials (HTTP \(response.status)) for \(request.operation)",
                                        fields: [.httpStatus: "\(response.status)"])
                }
                guard response.status == 200 else {
                    await fail(request.operation, "\(sent.summary) answered \(response.status)")
                    return
                }
                page += 1
                let body: JSONValue
                do {
                    body = try JSONProjection([FieldPath("")]).apply(response.body)
                } catch {
                    await fail(request.operation, "\(sent.summary): the answer is not JSON: \(error)")
                    return
                }
                var itemCount = 0
                if let itemsPath = request.items {
                    guard case .array(let items)? = Self.value(body, at: itemsPath) else {
                        await fail(request.operation, "\(sent.summary): no list at '\(itemsPath)' in the answer")
                        return
                    }
                    itemCount = items.count
                    for item in items {
                        await record(item: item, of: request, sent: sent, status: response.status)
                    }
                } else {
                    await record(request.operation, resource: account, sent: sent, status: response.status,
                                 mediaType: response.header("Content-Type") ?? "application/json", body: response.body)
                }
                // The next page, if there is one.
                switch request.pagination {
                case .none:
                    return
                case .link:
                    guard let link = response.header("Link"), let next = LinkHeader.parse(link)["next"] else { return }
                    guard next.host == base.host, next.scheme == base.scheme, next.port == base.port else {
                        await fail(request.operation, "\(sent.summary): next page link leaves \(base.host ?? "the API host"); not followed")
                        return
                    }
                    url = next
                case .nextToken(let field, let parameter):
                    guard let token = Self.value(body, at: field)?.string, !token.isEmpty else { return }
                    url = Self.setting(url, parameter, token)
                case .page(let parameter, let start):
                    guard itemCount > 0 else { return }
                    url = Self.setting(url, parameter, String(start + page))
                }
            }
            await fail(request.operation, "more than \(collector.maxPages) pages; the listing was cut short")
        }

        /// One item of a page as evidence: its declared fields (or all of it), in canonical JSON,
        /// under the resource its template names.
        func record(item: JSONValue, of request: HTTPSourceDefinition.Request, sent: HTTPRequest, status: Int) async {
            let kept: JSONValue
            if request.fields.isEmpty {
                kept = item
            } else {
                var object: [String: JSONValue] = [:]
                for field in request.fields {
                    if let value = Self.value(item, at: field) { object[field.description] = value }
                }
                kept = .object(object)
            }
            guard let resource = HTTPSourceDefinition.expand(request.resource ?? "", { name in
                Self.value(item, at: FieldPath(name)).flatMap(Self.text)
            }), !resource.isEmpty else {
                await fail(request.operation, "\(sent.summary): an item has no value for resource \(quotedForMessage(request.resource ?? ""))")
                return
            }
            await record(request.operation, resource: resource, sent: sent, status: status, mediaType: "application/json",
                         body: kept.canonicalData())
        }

        func record(_ operation: String, resource: String, sent: HTTPRequest, status: Int, mediaType: String, body: Data) async {
            do {
                let evidence = try EvidenceFactory.make(
                    organization: organization.id, source: source, operation: operation, resource: resource,
                    request: sent.summary, status: status, mediaType: mediaType, body: body,
                    collectedAt: context.asOf, freshFor: context.freshFor)
                await emit(.evidence(evidence, body: body))
            } catch {
                await fail(operation, "\(sent.summary): \(error)")
            }
        }

        func fail(_ operation: String, _ reason: String) async {
            context.logger.warning("evidence not collected", metadata: ["operation": "\(operation)", "reason": "\(reason)"])
            await emit(.failure(CollectionFailure(source: source, operation: operation, resource: account, reason: reason)))
        }

        static func value(_ value: JSONValue, at path: FieldPath) -> JSONValue? {
            var current = value
            for component in path.components {
                guard let next = current[component] else { return nil }
                current = next
            }
            return current
        }

        static func text(_ value: JSONValue) -> String? {
            switch value {
            case .string(let text): return text
            case .number: return value.int.map(String.init) ?? value.number.map { String($0) }
            case .bool(let flag): return String(flag)
            default: return nil
            }
        }

        /// `url` with query parameter `name` set to `value` (added, or replaced where it is).
        static func setting(_ url: URL, _ name: String, _ value: String) -> URL {
            guard var components = URLComponents(url: url, resolvingAgainstBaseURL: true) else { return url }
            var items = components.queryItems ?? []
            if let index = items.firstIndex(where: { $0.name == name }) {
                items[index].value = value
            } else {
                items.append(URLQueryItem(name: name, value: value))
            }
            components.queryItems = items
            // A token may hold '+' or '/', which a query would otherwise read as a space or leave bare.
            components.percentEncodedQuery = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
            return components.url ?? url
        }
    }
}
