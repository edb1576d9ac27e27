import Foundation
import Pipeline

/// What the pipeline may show of a PostgreSQL connection string: every form libpq accepts, with
/// each password masked. Over-masking is allowed (a host after an odd `@` may go too); showing a
/// secret is not.
public enum ConnectionString {
    /// Keys whose values are secrets, in `key=value` strings and URL query parameters.
    static let secretKeys: Set<String> = ["password", "sslpassword"]

    public static func redact(_ text: String) -> String {
        if let scheme = text.range(of: "://"), ["postgres", "postgresql"].contains(text[..<scheme.lowerBound].lowercased()) {
            return redactURL(text, afterScheme: scheme.upperBound)
        }
        return redactKeyValues(text)
    }

    /// `postgres://user:secret@host1:5432,host2/db?sslpassword=x`: the user part's password is
    /// everything from the first `:` to the last `@` (a raw `@`, `#`, `/` or `?` in a password
    /// stays masked); then secret query parameters.
    static func redactURL(_ text: String, afterScheme start: String.Index) -> String {
        var result = String(text[..<start])
        var rest = text[start...]
        if let at = rest.lastIndex(of: "@") {
            let user = rest[..<at]
            if let colon = user.firstIndex(of: ":") {
                result += user[..<colon] + ":***"
            } else {
                result += user
            }
            result += "@"
            rest = rest[rest.index(after: at)...]
        }
        guard let question = rest.firstIndex(of: "?") else { return result + rest }
        result += rest[...question]
        let parameters = rest[rest.index(after: question)...].split(separator: "&", omittingEmptySubsequences: false).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = (parts.first.map(String.init) ?? "").removingPercentEncoding?.lowercased() ?? ""
            return secretKeys.contains(key) && parts.count == 2 ? "\(parts[0])=***" : String(pair)
        }
        return result + parameters.joined(separator: "&")
    }

    /// `host=db password = 'my secret' sslpassword=x`: libpq's `key = value` pairs, values bare
    /// (to the next white space) or single-quoted with backslash escapes.
    static func redactKeyValues(_ text: String) -> String {
        var out = ""
        var index = text.startIndex
        while index < text.endIndex {
            // White space between pairs is kept as it is.
            while index < text.endIndex, text[index].isWhitespace {
                out.append(text[index])
                index = text.index(after: index)
            }
            guard index < text.endIndex else { break }
            let keyStart = index
            while index < text.endIndex, !text[index].isWhitespace, text[index] != "=" { index = text.index(after: index) }
            let key = text[keyStart..<index].lowercased()
            out += text[keyStart..<index]
            while index < text.endIndex, text[index].isWhitespace {
                out.append(text[index])
                index = text.index(after: index)
            }
            guard index < text.endIndex, text[index] == "=" else { continue }
            out.append("=")
            index = text.index(after: index)
            while index < text.endIndex, text[index].isWhitespace {
                out.append(text[index])
                index = text.index(after: index)
            }
            let valueStart = index
            if index < text.endIndex, text[index] == "'" {
                index = text.index(after: index)
                while index < text.endIndex, text[index] != "'" {
                    if text[index] == "\\", text.index(after: index) < text.endIndex { index = text.index(after: index) }
                    index = text.index(after: index)
                }
                if index < text.endIndex { index = text.index(after: index) }
            } else {
                while index < text.endIndex, !text[index].isWhitespace { index = text.index(after: index) }
            }
            out += secretKeys.contains(key) ? "***" : String(text[valueStart..<index])
        }
        return out
    }
}
