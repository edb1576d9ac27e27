import Foundation

/// RFC 8288 Link header, as GitHub sends it for pagination:
/// `<https://api.github.com/...&page=2>; rel="next", <...>; rel="last"`.
public enum LinkHeader {
    /// Relation name → target URL.
    public static func parse(_ value: String) -> [String: URL] {
        var links: [String: URL] = [:]
        var rest = Substring(value)
        while let open = rest.firstIndex(of: "<") {
            guard let close = rest[open...].firstIndex(of: ">") else { break }
            let target = rest[rest.index(after: open)..<close]
            let paramsEnd = rest[close...].firstIndex(of: "<") ?? rest.endIndex
            let params = rest[rest.index(after: close)..<paramsEnd]
            for param in params.split(separator: ";") {
                let pair = param.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard pair.count == 2, pair[0].lowercased() == "rel" else { continue }
                let rels = pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\","))
                for rel in rels.split(separator: " ") {
                    if let url = URL(string: String(target)) { links[String(rel).lowercased()] = url }
                }
            }
            rest = rest[paramsEnd...]
        }
        return links
    }
}

extension LinkHeader {
    /// What makes two page URLs the same page: scheme, host, port, path and the query items in
    /// sorted order (a server may repeat a link with its parameters reordered).
    public static func identity(of url: URL) -> String {
        let components = URLComponents(url: url, resolvingAgainstBaseURL: true)
        let query = (components?.percentEncodedQueryItems ?? []).map { "\($0.name)=\($0.value ?? "")" }.sorted()
        return "\(url.scheme ?? "")://\(url.host ?? ""):\(url.port ?? -1)\(url.path)?\(query.joined(separator: "&"))"
    }
}

extension LinkHeader {
    /// The URLs of pages 2 to N when `next` is page 2 and `last` page N of the same listing (the
    /// same URL but for its `page` parameter), each made from `last` with its page number
    /// replaced, parameters kept in their order. Nil for any other kind of pagination (cursors).
    public static func numberedPages(next: URL, last: URL) -> [URL]? {
        func page(_ url: URL) -> (number: Int, others: [URLQueryItem])? {
            guard let items = URLComponents(url: url, resolvingAgainstBaseURL: true)?.percentEncodedQueryItems,
                  let value = items.first(where: { $0.name == "page" })?.value, let number = Int(value) else { return nil }
            return (number, items.filter { $0.name != "page" })
        }
        guard let nextPage = page(next), let lastPage = page(last), nextPage.number == 2, lastPage.number >= 2,
              nextPage.others == lastPage.others, next.path == last.path, next.host == last.host else { return nil }
        return (2...lastPage.number).compactMap { number in
            guard var components = URLComponents(url: last, resolvingAgainstBaseURL: true) else { return nil }
            components.percentEncodedQueryItems = components.percentEncodedQueryItems?.map {
                $0.name == "page" ? URLQueryItem(name: "page", value: String(number)) : $0
            }
            return components.url
        }
    }
}
