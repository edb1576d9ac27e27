import CCurl
import Foundation
import Pipeline

/// The live HTTP transport: libcurl, one easy handle per transfer, at most `maxConcurrent`
/// transfers at once, each run to completion on a `BlockingExecutor` of its own (never on the
/// cooperative pool). A request waiting for its turn stops waiting at once when cancelled. Handles are reused so connections stay warm. Connect and stall timeouts are set on
/// every transfer; cancelling the awaiting task aborts the transfer through curl's progress
/// callback. TLS verification stays on; proxies come from the environment as libcurl reads them
/// (`http_proxy`, `https_proxy`, `no_proxy`).
/// `@unchecked Sendable`: the handle pool is guarded by `lock`; a handle is used by one transfer at a time.
public final class CurlHTTPClient: HTTPTransport, @unchecked Sendable {
    public struct Options: Sendable {
        public var connectTimeout: Duration = .seconds(10)
        /// Limit for a whole transfer; zero for none (large uploads rely on the stall limit).
        public var timeout: Duration = .seconds(120)
        /// A transfer slower than `stallBytesPerSecond` for `stallTime` is aborted.
        public var stallBytesPerSecond = 1
        public var stallTime: Duration = .seconds(30)
        /// Transfers in flight at once across the process (every source of every organization);
        /// each stage bounds its own below this.
        public var maxConcurrent = 64
        public var userAgent = "lightsail-pipeline/1"
        public init() {}
    }

    public let options: Options
    private let lock = NSLock()
    private var idleHandles: [UnsafeMutableRawPointer] = []
    private let limiter: AsyncSemaphore
    private let executor: BlockingExecutor

    static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    /// Threads that wait on transfers: as many as transfers may be in flight, apart from the shared
    /// executor, so that waiting on the network never holds up the store's and the renderer's work.
    public static let transfers = BlockingExecutor(threads: 64, name: "lightsail-http")

    public init(options: Options = Options(), executor: BlockingExecutor = CurlHTTPClient.transfers) {
        _ = Self.globalInit
        self.options = options
        self.executor = executor
        limiter = AsyncSemaphore(permits: options.maxConcurrent)
    }

    deinit {
        for handle in idleHandles { curl_easy_cleanup(handle) }
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        try await limiter.withPermit {
            let transfer = Transfer()
            return try await withTaskCancellationHandler {
                try await executor.run {
                    try transfer.open(upload: request.body, download: request.responseFile)
                    defer { transfer.close() }
                    return try self.run(request, transfer)
                }
            } onCancel: {
                transfer.cancel()
            }
        }
    }

    private func takeHandle() throws -> UnsafeMutableRawPointer {
        if let handle = lock.withLock({ idleHandles.popLast() }) {
            curl_easy_reset(handle)
            return handle
        }
        guard let handle = curl_easy_init() else { throw PipelineError(.transport, "libcurl could not start a transfer") }
        return handle
    }

    private func returnHandle(_ handle: UnsafeMutableRawPointer) {
        lock.withLock { idleHandles.append(handle) }
    }

    /// Where a message may name the request: scheme, host and path, never the query (a presigned
    /// URL's query is a credential).
    static func safeTarget(_ url: URL) -> String {
        var components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        components?.query = nil
        components?.user = nil
        components?.password = nil
        return components?.string ?? url.path
    }

    private func run(_ request: HTTPRequest, _ transfer: Transfer) throws -> HTTPResponse {
        let handle = try takeHandle()
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer {
            curl_slist_free_all(headerList)
            returnHandle(handle)
        }
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        func set(_ code: CURLcode) throws {
            guard code == CURLE_OK else {
                throw PipelineError(.transport, "libcurl option refused: \(String(cString: curl_easy_strerror(code)))")
            }
        }
        try set(lightsail_curl_setopt_string(handle, CURLOPT_URL, request.url.absoluteString))
        try set(lightsail_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1))
        try set(lightsail_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(options.connectTimeout)))
        try set(lightsail_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, Self.milliseconds(options.timeout)))
        try set(lightsail_curl_setopt_long(handle, CURLOPT_LOW_SPEED_LIMIT, options.stallBytesPerSecond))
        try set(lightsail_curl_setopt_long(handle, CURLOPT_LOW_SPEED_TIME, max(1, Self.milliseconds(options.stallTime) / 1000)))
        try set(lightsail_curl_setopt_long(handle, CURLOPT_SSL_VERIFYPEER, 1))
        try set(lightsail_curl_setopt_long(handle, CURLOPT_SSL_VERIFYHOST, 2))
        try set(lightsail_curl_setopt_string(handle, CURLOPT_USERAGENT, options.userAgent))
        // Large buffers: fewer callbacks and reads per transfer for big objects.
        try set(lightsail_curl_setopt_long(handle, CURLOPT_UPLOAD_BUFFERSIZE, 1 << 20))
        try set(lightsail_curl_setopt_long(handle, CURLOPT_BUFFERSIZE, 512 << 10))
        try set(lightsail_curl_setopt_write_callback(handle) { buffer, size, count, context in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            return transfer.receive(buffer, size * count)
        })
        try set(lightsail_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, context))
        try set(lightsail_curl_setopt_header_callback(handle) { buffer, size, count, context in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            transfer.header(buffer, size * count)
            return size * count
        })
        try set(lightsail_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, context))
        try set(lightsail_curl_setopt_long(handle, CURLOPT_NOPROGRESS, 0))
        try set(lightsail_curl_setopt_xferinfo_callback(handle) { context, _, _, _, _ in
            Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue().isCancelled ? 1 : 0
        })
        try set(lightsail_curl_setopt_pointer(handle, CURLOPT_XFERINFODATA, context))

        var headers = request.headers
        let method = request.method.uppercased()
        let length = request.body.length
        switch method {
        case "GET":
            break
        case "HEAD":
            try set(lightsail_curl_setopt_long(handle, CURLOPT_NOBODY, 1))
        case "PUT":
            try set(lightsail_curl_setopt_long(handle, CURLOPT_UPLOAD, 1))
            try set(lightsail_curl_setopt_offset(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(length)))
        case "POST":
            try set(lightsail_curl_setopt_long(handle, CURLOPT_POST, 1))
            try set(lightsail_curl_setopt_offset(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(length)))
            if !headers.contains(where: { $0.0.lowercased() == "content-type" }) { headers.append(("Content-Type", "")) }
        default:
            try set(lightsail_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method))
            if length > 0 {
                try set(lightsail_curl_setopt_long(handle, CURLOPT_UPLOAD, 1))
                try set(lightsail_curl_setopt_offset(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(length)))
            }
        }
        if method == "PUT" || method == "POST" || length > 0 {
            try set(lightsail_curl_setopt_read_callback(handle) { buffer, size, count, context in
                Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue().send(buffer!, size * count)
            })
            try set(lightsail_curl_setopt_pointer(handle, CURLOPT_READDATA, context))
            headers.append(("Expect", ""))
        }
        for (name, value) in headers {
            // "Name:" removes a header curl would add; "Name;" sends it empty.
            headerList = curl_slist_append(headerList, value.isEmpty ? "\(name):" : "\(name): \(value)")
        }
        try set(lightsail_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList))

        let code = curl_easy_perform(handle)
        try transfer.finish()
        let target = "\(method) \(Self.safeTarget(request.url))"
        if code == CURLE_ABORTED_BY_CALLBACK, transfer.isCancelled { throw CancellationError() }
        if let failure = transfer.failure { throw PipelineError(.transport, "\(target): \(failure)") }
        guard code == CURLE_OK else {
            let transient = [CURLE_OPERATION_TIMEDOUT, CURLE_COULDNT_CONNECT, CURLE_RECV_ERROR, CURLE_SEND_ERROR,
                             CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_COULDNT_RESOLVE_HOST].contains(code)
            let kind: PipelineError.Code = code == CURLE_OPERATION_TIMEDOUT ? .timeout : .transport
            throw PipelineError(kind, "\(target): \(String(cString: curl_easy_strerror(code)))",
                                fields: [.curlCode: String(code.rawValue)], transient: transient)
        }
        var status = 0
        _ = lightsail_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, headers: transfer.headers, body: transfer.body)
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds) * 1000 + Int(duration.components.attoseconds / 1_000_000_000_000_000)
    }
}

/// One transfer's state, reached from curl's C callbacks through an unmanaged pointer.
/// `@unchecked Sendable`: touched by the one executor thread running the transfer, except
/// `cancelled`, which `lock` guards.
final class Transfer: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false
    private(set) var headers: [(String, String)] = []
    private(set) var body = Data()
    private(set) var failure: String?
    private var uploadData: Data?
    private var uploadPosition = 0
    private var uploadFile: FileHandle?
    private var uploadRemaining: UInt64 = 0
    private var downloadFile: FileHandle?

    /// Opens the files of the transfer; runs on the executor, as it touches the file system.
    func open(upload: HTTPRequest.Body, download: URL?) throws {
        switch upload {
        case .none:
            break
        case .data(let data):
            uploadData = data
        case .file(let url, let offset, let length):
            do {
                let handle = try FileHandle(forReadingFrom: url)
                try handle.seek(toOffset: offset)
                uploadFile = handle
            } catch {
                throw PipelineError(.transport, "cannot read \(url.path): \(error.localizedDescription)")
            }
            uploadRemaining = length
        }
        if let url = download {
            guard FileManager.default.createFile(atPath: url.path, contents: nil),
                  let handle = try? FileHandle(forWritingTo: url) else {
                throw PipelineError(.transport, "cannot write \(url.path)")
            }
            downloadFile = handle
        }
    }

    var isCancelled: Bool { lock.withLock { cancelled } }
    func cancel() { lock.withLock { cancelled = true } }

    func receive(_ buffer: UnsafeMutablePointer<CChar>?, _ count: Int) -> Int {
        guard let buffer, count > 0 else { return 0 }
        if let file = downloadFile {
            do {
                try file.write(contentsOf: UnsafeRawBufferPointer(start: buffer, count: count))
            } catch {
                failure = "cannot write the download: \(error.localizedDescription)"
                return 0
            }
        } else {
            body.append(UnsafeRawPointer(buffer).assumingMemoryBound(to: UInt8.self), count: count)
        }
        return count
    }

    func header(_ buffer: UnsafeMutablePointer<CChar>?, _ count: Int) {
        guard let buffer else { return }
        let line = String(decoding: UnsafeRawBufferPointer(start: buffer, count: count), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if line.hasPrefix("HTTP/") {
            headers.removeAll()  // a new response (after 100 Continue or a redirect)
            return
        }
        guard let colon = line.firstIndex(of: ":") else { return }
        headers.append((String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)))
    }

    func send(_ buffer: UnsafeMutablePointer<CChar>, _ capacity: Int) -> Int {
        if isCancelled { return Int(CURL_READFUNC_ABORT) }
        if let data = uploadData {
            let count = min(capacity, data.count - uploadPosition)
            guard count > 0 else { return 0 }
            data.withUnsafeBytes { raw in
                UnsafeMutableRawPointer(buffer).copyMemory(from: raw.baseAddress! + uploadPosition, byteCount: count)
            }
            uploadPosition += count
            return count
        }
        if let file = uploadFile {
            let want = Int(min(UInt64(capacity), uploadRemaining))
            guard want > 0 else { return 0 }
            guard let chunk = try? file.read(upToCount: want), !chunk.isEmpty else {
                failure = "the upload file ended early"
                return Int(CURL_READFUNC_ABORT)
            }
            chunk.withUnsafeBytes { raw in
                UnsafeMutableRawPointer(buffer).copyMemory(from: raw.baseAddress!, byteCount: chunk.count)
            }
            uploadRemaining -= UInt64(chunk.count)
            return chunk.count
        }
        return 0
    }

    /// Makes the download durable and closes it; a failure here fails the transfer.
    func finish() throws {
        try? uploadFile?.close()
        uploadFile = nil
        if let file = downloadFile {
            downloadFile = nil
            do {
                try file.synchronize()
                try file.close()
            } catch {
                throw PipelineError(.transport, "cannot write the download: \(error.localizedDescription)")
            }
        }
    }

    /// Closes whatever is still open (after an error).
    func close() {
        try? uploadFile?.close()
        try? downloadFile?.close()
        uploadFile = nil
        downloadFile = nil
    }
}
