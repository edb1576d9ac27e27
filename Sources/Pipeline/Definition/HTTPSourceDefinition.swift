import Foundation

/// A source declared in a definition (`sources:`), read over HTTP without Swift: where each
/// request goes, how the API authenticates, how its listings page, and which JSON becomes
/// evidence under which resource name. The integration supplies the base URL, the values of the
/// path's placeholders and the secret.
public struct HTTPSourceDefinition: Sendable, Hashable {
    public let name: String
    public let auth: Auth
    public let requests: [Request]

    public init(name: String, auth: Auth, requests: [Request]) {
        self.name = name
        self.auth = auth
        self.requests = requests
    }

    /// How the integration's secret goes with every request.
    public enum Auth: Sendable, Hashable {
        case none
        /// `Authorization: Bearer SECRET`.
        case bearer
        /// `Authorization: Basic base64(username:SECRET)`, the username from the integration.
        case basic
        /// `NAME: PREFIX SECRET` (`Authorization: SSWS …`, `X-Api-Key: …`).
        case header(name: String, prefix: String)
    }

    public enum Pagination: Sendable, Hashable {
        case none
        /// `Link: <…>; rel="next"` on the API's host.
        case link
        /// The next page's token at `field` of the body, sent as the query parameter `parameter`;
        /// the listing ends when the field is absent or empty.
        case nextToken(field: FieldPath, parameter: String)
        /// Pages numbered from `start` in the query parameter `parameter`; the listing ends at the
        /// first page without items.
        case page(parameter: String, start: Int)
    }

    public struct Request: Sendable, Hashable {
        /// The evidence's operation, as `users/list`.
        public let operation: String
        /// A path and query under the base URL, with `{setting}` placeholders filled from the
        /// integration's settings (each percent-encoded).
        public let path: String
        public let pagination: Pagination
        /// Where the list of items is in each page (empty: the body is the list). With `each`,
        /// every item becomes evidence of its own; without, every page does.
        public let items: FieldPath?
        /// The resource of each item's evidence: `{field.path}` placeholders over the item.
        public let resource: String?
        /// The fields of each item kept as its evidence (all when empty).
        public let fields: [FieldPath]

        public init(operation: String, path: String, pagination: Pagination, items: FieldPath?, resource: String?,
                    fields: [FieldPath]) {
            self.operation = operation
            self.path = path
            self.pagination = pagination
            self.items = items
            self.resource = resource
            self.fields = fields
        }
    }

    /// The `{name}` placeholders of a template, or the problem with it.
    public static func placeholders(_ template: String) -> Result<[String], TemplateError> {
        var names: [String] = []
        var rest = Substring(template)
        while let open = rest.firstIndex(where: { $0 == "{" || $0 == "}" }) {
            guard rest[open] == "{" else { return .failure(TemplateError("a '}' without its '{'")) }
            guard let close = rest[open...].firstIndex(of: "}") else { return .failure(TemplateError("a '{' without its '}'")) }
            let name = String(rest[rest.index(after: open)..<close])
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-[]".contains($0)) }) else {
                return .failure(TemplateError("'{\(name)}' is not a placeholder: use letters, digits, '_', '-' and '.'"))
            }
            names.append(name)
            rest = rest[rest.index(after: close)...]
        }
        return .success(names)
    }

    /// Fills a template's placeholders with `value(name)`; nil when one has no value.
    public static func expand(_ template: String, _ value: (String) -> String?) -> String? {
        var out = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            out += rest[..<open]
            guard let filled = value(String(rest[rest.index(after: open)..<close])) else { return nil }
            out += filled
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }

    public struct TemplateError: Error, Sendable {
        public let message: String
        init(_ message: String) { self.message = message }
    }
}
