import Foundation
import Pipeline

/// Answers requests from a recording of real exchanges (status, headers, body), so sources run
/// over fixtures exactly as they run against the live API.
///
/// Recording format (JSON):
/// ```
/// {"exchanges": [{"request": {"method": "GET", "path": "/orgs/acme?per_page=100"},
///                 "response": {"status": 200, "headers": [["Content-Type", "application/json"]],
///                              "body": "<raw body text>"}}]}
/// ```
/// Requests match on method, path and query (query parameters in any order); the host is
/// ignored. A response may carry `"delay_ms"`, answered that much later (a slow API, for
/// timeout and cancellation tests). Several exchanges for the same request answer in turn, the last one repeating, so a
/// recording can hold a 500 followed by a 200.
public final class ReplayTransport: HTTPTransport, @unchecked Sendable {
    // Immutable after init except `cursor`, which `lock` guards.
    private let exchanges: [String: [(response: HTTPResponse, delay: Duration)]]
    private var cursor: [String: Int] = [:]
    private let lock = NSLock()
    public let file: String

    public init(recording file: String) throws {
        self.file = file
        guard let data = FileManager.default.contents(atPath: file) else {
            throw PipelineError(.fixture, "\(file): recording not found")
        }
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw PipelineError(.fixture, "\(file): recording is not valid JSON (\(Self.describe(error)))")
        }
        guard let object = root as? [String: Any], let list = object["exchanges"] as? [Any] else {
            throw PipelineError(.fixture, "\(file): recording must be an object with an 'exchanges' list")
        }
        var table: [String: [(response: HTTPResponse, delay: Duration)]] = [:]
        for (index, item) in list.enumerated() {
            let at = "\(file): exchanges[\(index)]"
            guard let exchange = item as? [String: Any],
                  let request = exchange["request"] as? [String: Any],
                  let response = exchange["response"] as? [String: Any] else {
                throw PipelineError(.fixture, "\(at) needs 'request' and 'response' objects")
            }
            guard let method = request["method"] as? String, let path = request["path"] as? String, path.hasPrefix("/")
            else {
                throw PipelineError(.fixture, "\(at).request needs 'method' and a 'path' starting with '/'")
            }
            guard let status = response["status"] as? Int, (100...599).contains(status) else {
                throw PipelineError(.fixture, "\(at).response needs a 'status' between 100 and 599")
            }
            var headers: [(String, String)] = []
            if let rawHeaders = response["headers"] {
                guard let pairs = rawHeaders as? [[String]], pairs.allSatisfy({ $0.count == 2 }) else {
                    throw PipelineError(.fixture, "\(at).response.headers must be a list of [name, value] pairs")
                }
                headers = pairs.map { ($0[0], $0[1]) }
            }
            let body: Data
            switch response["body"] {
            case nil, is NSNull: body = Data()
            case let text as String: body = Data(text.utf8)
            default: throw PipelineError(.fixture, "\(at).response.body must be the raw body as a string")
            }
            guard let key = Self.key(method: method, pathAndQuery: path) else {
                throw PipelineError(.fixture, "\(at).request.path \(quotedForMessage(path)) is not a valid path")
            }
            var delay = Duration.zero
            if let rawDelay = response["delay_ms"] {
                guard let ms = rawDelay as? Int, ms >= 0 else {
                    throw PipelineError(.fixture, "\(at).response.delay_ms must be a whole number of milliseconds")
                }
                delay = .milliseconds(ms)
            }
            table[key, default: []].append((HTTPResponse(status: status, headers: headers, body: body), delay))
        }
        exchanges = table
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        var target = request.url.path
        if let query = request.url.query { target += "?" + query }
        guard let key = Self.key(method: request.method, pathAndQuery: target) else {
            throw PipelineError(.transport, "\(request.summary): not a valid request")
        }
        let answer: (response: HTTPResponse, delay: Duration)? = lock.withLock {
            guard let answers = exchanges[key] else { return nil }
            let index = cursor[key, default: 0]
            cursor[key] = index + 1
            return answers[min(index, answers.count - 1)]
        }
        guard let answer else {
            throw PipelineError(.transport, "\(request.summary): no recorded answer in \(file)")
        }
        if answer.delay > .zero { try await Task.sleep(for: answer.delay) }
        try Task.checkCancellation()
        return answer.response
    }

    /// `GET /path?a=1&b=2` with query parameters sorted.
    static func key(method: String, pathAndQuery: String) -> String? {
        guard let components = URLComponents(string: pathAndQuery) else { return nil }
        let items = (components.percentEncodedQueryItems ?? [])
            .map { "\($0.name)=\($0.value ?? "")" }
            .sorted()
        let query = items.isEmpty ? "" : "?" + items.joined(separator: "&")
        return "\(method.uppercased()) \(components.percentEncodedPath)\(query)"
    }

    private static func describe(_ error: any Error) -> String {
        let nsError = error as NSError
        return (nsError.userInfo[NSDebugDescriptionErrorKey] as? String) ?? nsError.localizedDescription
    }
}
