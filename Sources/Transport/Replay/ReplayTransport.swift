import Foundation
import Pipeline

/// Answers requests from a recording of real exchanges (status, headers, body), so sources run
/// over fixtures exactly as they run against the live API.
///
/// Recording format: JSON Lines, one exchange per line.
/// ```
/// {"request": {"method": "GET", "path": "/orgs/acme?per_page=100"},
///  "response": {"status": 200, "headers": [["Content-Type", "application/json"]], "body": "<raw body text>"}}
/// ```
/// Requests match on method, path and query (query parameters in any order), the request's
/// attributes (an AWS signing scope) and its body when it has one; the host is ignored. A response may carry `"delay_ms"`, answered that much later (a slow API, for timeout
/// and cancellation tests). Several exchanges for the same request answer in turn, the last one
/// repeating, so a recording can hold a 500 followed by a 200.
///
/// Opening a recording reads it once, line by line, checking every exchange and keeping only where
/// each line is; an answer's body is read from the file when it is asked for. Memory holds one
/// line at a time, whatever the size of the recording.
public final class ReplayTransport: HTTPTransport, @unchecked Sendable {
    struct Entry: Sendable {
        let offset: UInt64
        let length: Int
        let delay: Duration
    }

    // Immutable after init except `cursor`, which `lock` guards.
    private let entries: [String: [Entry]]
    private var cursor: [String: Int] = [:]
    private let lock = NSLock()
    private let executor: BlockingExecutor
    /// Lines being read and parsed at once, by bytes: parsing a line holds a few copies of it, so
    /// large answers are read one or two at a time, whatever the collector's concurrency.
    private let reading = AsyncSemaphore(permits: 16 << 20)
    public let file: String

    private init(file: String, entries: [String: [Entry]], executor: BlockingExecutor) {
        self.file = file
        self.entries = entries
        self.executor = executor
    }

    /// Reads and checks the recording at `file` (on the blocking executor).
    public static func open(recording file: String, executor: BlockingExecutor = .shared) async throws -> ReplayTransport {
        let entries = try await executor.run { try index(file) }
        return ReplayTransport(file: file, entries: entries, executor: executor)
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        var target = request.url.path
        if let query = request.url.query { target += "?" + query }
        var body: Data?
        if case .data(let data) = request.body { body = data }
        guard let key = Self.key(method: request.method, pathAndQuery: target, attributes: request.attributes, body: body) else {
            throw PipelineError(.transport, "\(request.summary): not a valid request")
        }
        let entry: Entry? = lock.withLock {
            guard let answers = entries[key] else { return nil }
            let index = cursor[key, default: 0]
            cursor[key] = index + 1
            return answers[min(index, answers.count - 1)]
        }
        guard let entry else {
            throw PipelineError(.transport, "\(request.summary): no recorded answer in \(file)")
        }
        if entry.delay > .zero { try await Task.sleep(for: entry.delay) }
        try Task.checkCancellation()
        let file = self.file
        try await reading.acquire(weight: entry.length)
        defer { reading.release(weight: entry.length) }
        let response = try await executor.run {
            let handle = try Self.openFile(file)
            defer { try? handle.close() }
            try handle.seek(toOffset: entry.offset)
            let line = try handle.read(upToCount: entry.length) ?? Data()
            guard line.count == entry.length else { throw PipelineError(.fixture, "\(file): changed while it was replayed") }
            return try Self.parse(line, at: file).response
        }
        if let destination = request.responseFile {
            try await executor.run { try response.body.write(to: destination) }
            return HTTPResponse(status: response.status, headers: response.headers)
        }
        return response
    }

    // MARK: Reading the file

    static func openFile(_ file: String) throws -> FileHandle {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) else {
            throw PipelineError(.fixture, "\(file): recording not found")
        }
        guard !isDirectory.boolValue, let handle = FileHandle(forReadingAtPath: file) else {
            throw PipelineError(.fixture, "\(file): recording cannot be read")
        }
        return handle
    }

    /// Every exchange's key and place in the file, checking each line as it goes.
    static func index(_ file: String) throws -> [String: [Entry]] {
        let handle = try openFile(file)
        defer { try? handle.close() }
        var table: [String: [Entry]] = [:]
        var buffer: [UInt8] = []
        var position = 0            // start of the current line in `buffer`
        var bufferStart: UInt64 = 0 // file offset of buffer[0]
        var lineNumber = 0
        var atEnd = false
        while true {
            var newline = buffer[position...].firstIndex(of: 0x0A)
            while newline == nil, !atEnd {
                // Keep only the unfinished line, then read more.
                if position > 0 {
                    buffer.removeFirst(position)
                    bufferStart += UInt64(position)
                    position = 0
                }
                let chunk = try handle.read(upToCount: 1 << 20) ?? Data()
                if chunk.isEmpty { atEnd = true } else { buffer.append(contentsOf: chunk) }
                newline = buffer[position...].firstIndex(of: 0x0A)
            }
            let end = newline ?? buffer.endIndex
            if position == end, newline == nil { break }
            lineNumber += 1
            let line = buffer[position..<end]
            if !line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) {
                let parsed = try parse(Data(line), at: "\(file):\(lineNumber)", body: false)
                table[parsed.key, default: []].append(Entry(offset: bufferStart + UInt64(position), length: line.count,
                                                            delay: parsed.delay))
            }
            position = newline.map { $0 + 1 } ?? end
        }
        return table
    }

    /// What an exchange's line is read for: everything, or all but the body (while indexing, the
    /// body is checked for syntax and skipped without being built).
    static let whole = JSONProjection(["request.method", "request.path", "request.attributes", "request.body",
                                       "response.status", "response.headers", "response.body", "response.delay_ms"])
    static let withoutBody = JSONProjection(["request.method", "request.path", "request.attributes", "request.body",
                                             "response.status", "response.headers", "response.delay_ms"])

    /// One exchange from its line: the key it answers and the response (with an empty body unless
    /// `body`).
    static func parse(_ line: Data, at place: String, body wantBody: Bool = true) throws
        -> (key: String, response: HTTPResponse, delay: Duration) {
        let root: JSONValue
        do {
            root = try (wantBody ? whole : withoutBody).apply(line)
        } catch {
            throw PipelineError(.fixture, "\(place): recording line is not valid JSON (\(error))")
        }
        guard let request = root["request"], request.object != nil, let response = root["response"], response.object != nil else {
            throw PipelineError(.fixture, "\(place): an exchange needs 'request' and 'response' objects")
        }
        guard let method = request["method"]?.string, let path = request["path"]?.string, path.hasPrefix("/") else {
            throw PipelineError(.fixture, "\(place): request needs 'method' and a 'path' starting with '/'")
        }
        guard let status = response["status"]?.int, (100...599).contains(status) else {
            throw PipelineError(.fixture, "\(place): response needs a 'status' between 100 and 599")
        }
        var headers: [(String, String)] = []
        if let rawHeaders = response["headers"] {
            guard let pairs = rawHeaders.array?.map({ $0.array?.compactMap(\.string) ?? [] }),
                  pairs.allSatisfy({ $0.count == 2 }) else {
                throw PipelineError(.fixture, "\(place): response.headers must be a list of [name, value] pairs")
            }
            headers = pairs.map { ($0[0], $0[1]) }
        }
        var body = Data()
        switch response["body"] {
        case nil, .null?: break
        case .string(let text)?: body = Data(text.utf8)
        default: if wantBody { throw PipelineError(.fixture, "\(place): response.body must be the raw body as a string") }
        }
        var attributes: [String: String] = [:]
        if let raw = request["attributes"] {
            guard let object = raw.object, object.values.allSatisfy({ $0.string != nil }) else {
                throw PipelineError(.fixture, "\(place): request.attributes must be an object of strings")
            }
            attributes = object.mapValues { $0.string ?? "" }
        }
        let requestBody = request["body"]?.string.map { Data($0.utf8) }
        guard let key = key(method: method, pathAndQuery: path, attributes: attributes, body: requestBody) else {
            throw PipelineError(.fixture, "\(place): request.path \(quotedForMessage(path)) is not a valid path")
        }
        var delay = Duration.zero
        if let rawDelay = response["delay_ms"] {
            guard let ms = rawDelay.int, ms >= 0 else {
                throw PipelineError(.fixture, "\(place): response.delay_ms must be a whole number of milliseconds")
            }
            delay = .milliseconds(ms)
        }
        return (key, HTTPResponse(status: status, headers: headers, body: body), delay)
    }

    /// `GET /path?a=1&b=2` with query parameters sorted, then the attributes sorted, then the
    /// body's text when there is one.
    public static func key(method: String, pathAndQuery: String, attributes: [String: String] = [:],
                           body: Data? = nil) -> String? {
        guard let components = URLComponents(string: pathAndQuery) else { return nil }
        let items = (components.percentEncodedQueryItems ?? [])
            .map { "\($0.name)=\($0.value ?? "")" }
            .sorted()
        let query = items.isEmpty ? "" : "?" + items.joined(separator: "&")
        var key = "\(method.uppercased()) \(components.percentEncodedPath)\(query)"
        if !attributes.isEmpty {
            key += " [" + attributes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") + "]"
        }
        if let body, !body.isEmpty { key += " " + String(decoding: body, as: UTF8.self) }
        return key
    }

}
