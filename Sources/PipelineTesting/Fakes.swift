import Foundation
import Pipeline

/// An evidence store in memory that records what it is asked: for executor and command tests that
/// need no database.
public actor InMemoryEvidenceStore: EvidenceStore {
    public private(set) var integrationStatus: [String: IntegrationStatus] = [:]

    public func recordIntegrationOutcome(_ kind: String, of organization: OrganizationID, run: String, at: Date, error: String?) {
        let key = "\(organization)/\(kind)"
        integrationStatus[key] = (integrationStatus[key] ?? IntegrationStatus(kind: kind)).recording(run: run, at: at, error: error)
    }

    public func integrationStatuses(of organization: OrganizationID) -> [IntegrationStatus] {
        integrationStatus.filter { $0.key.hasPrefix("\(organization)/") }.values.sorted { $0.kind < $1.kind }
    }

    public private(set) var batches: [[Evidence]] = []
    public private(set) var ids = Set<String>()
    public private(set) var finished: [RunRecord.Status] = []
    public private(set) var resultsStored = 0
    public private(set) var exports: [ExportRecord] = []
    public private(set) var entries: [AuditEntry] = []

    /// Called with each batch before it is stored (a test checks what must hold by then).
    private var beforeStoring: (@Sendable ([Evidence]) async -> Void)?

    public init() {}

    public func beforeStoringEvidence(_ hook: @escaping @Sendable ([Evidence]) async -> Void) { beforeStoring = hook }

    public func beginRun(_ run: RunRecord) {}
    public func storeEvidence(_ batch: [Evidence], run: RunRecord) async -> Int {
        await beforeStoring?(batch)
        batches.append(batch)
        return batch.filter { ids.insert($0.id).inserted }.count
    }
    public func storeResults(_ results: [CheckResult], scores: ScoreSummary, run: RunRecord) { resultsStored += 1 }
    public func storeExport(_ export: ExportRecord, run: RunRecord) { exports.append(export) }
    public func exports(of organization: OrganizationID, before: Date?, id: String?, limit: Int) -> [ExportSummary] { [] }
    public func finishRun(_ run: RunRecord, status: RunRecord.Status, message: String?) { finished.append(status) }
    public func runs(of organization: OrganizationID, status: RunRecord.Status?, limit: Int) -> [RunSummary] { [] }
    public func abandonRun(_ id: String, of organization: OrganizationID, reason: String) -> Bool { false }
    public func evidenceCount(organization: OrganizationID) -> Int { ids.count }
    public func organizations() -> [Organization] { [] }
    public func organization(_ id: OrganizationID) -> Organization? { nil }
    @discardableResult
    public func addOrganization(_ organization: Organization, members: [Member], integrations: [Integration],
                                actor: String) -> Bool { false }
    @discardableResult
    public func removeOrganization(_ id: OrganizationID, actor: String) -> Bool { false }
    public func setIntegration(_ integration: Integration, in organization: OrganizationID, actor: String) {}
    public func resealIntegration(_ kind: String, of organization: OrganizationID, secret: SealedSecret,
                                  replacing oldKeyID: String, actor: String) -> Bool { false }
    public func integrationSecret(_ kind: String, of organization: OrganizationID) -> SealedSecret? { nil }
    public func allIntegrationSecrets(of organization: OrganizationID) -> [String: SealedSecret] { [:] }
    public func role(of actor: String, in organization: OrganizationID) -> Role? { nil }
    public func members(of organization: OrganizationID) -> [Member] { [] }
    public func setMember(_ member: Member, in organization: OrganizationID, actor: String) {}
    public func removeMember(_ memberActor: String, from organization: OrganizationID, actor: String) -> Bool { false }
    public func linkEvidence(_ evidenceID: String, to controls: [String], organization: OrganizationID) {}
    public private(set) var storedChanges: [RunChanges] = []
    public func uploadedEvidence(of organization: OrganizationID) -> [(evidence: Evidence, controls: [String])] { [] }
    public func lastCollected(of organization: OrganizationID, source: String, operation: String, resource: String,
                              before clock: Date) -> (asOf: Date, evidence: [Evidence])? { nil }
    public func previousResults(of organization: OrganizationID, pipeline: String, before run: String) -> PreviousResults? { nil }
    public func evidenceResources(of organization: OrganizationID, run: String) -> Set<String> { [] }
    public func storeChanges(_ changes: RunChanges, run: RunRecord) { storedChanges.append(changes) }
    public func changes(of organization: OrganizationID, run: String) -> RunChanges? { storedChanges.last }
    public func scoreHistory(of organization: OrganizationID, runs: Int) -> [ScoreRecord] { [] }
    public private(set) var riskExceptions: [RiskException] = []
    public func exceptions(of organization: OrganizationID) -> [RiskException] { riskExceptions }
    public func addException(_ exception: RiskException, to organization: OrganizationID, actor: String) { riskExceptions.append(exception) }
    public func removeException(_ id: String, from organization: OrganizationID, actor: String) -> Bool {
        let before = riskExceptions.count
        riskExceptions.removeAll { $0.id == id }
        return riskExceptions.count < before
    }
    public func integrations(of organization: OrganizationID) -> [String: [String: String]] { [:] }
    public func removeIntegration(_ kind: String, from organization: OrganizationID, actor: String) -> Bool { false }
    public func audit(_ entry: AuditEntry) { entries.append(entry) }
    public func auditLog(of organization: OrganizationID) -> [AuditEntry] { entries.filter { $0.organizationID == organization } }
    public func migrationState() -> (applied: Int, latest: Int) { (1, 1) }
}

/// An object store in memory, counting syncs; objects can be changed behind its back, as a
/// tampered bucket would be.
public actor InMemoryObjectStore: ObjectStore {
    public private(set) var objects: [String: Data] = [:]
    public private(set) var syncs = 0
    /// Objects written since the last sync.
    public private(set) var unsynced = Set<String>()
    /// Each put takes this long (a slow disk or network).
    private var putDelay: Duration = .zero
    public private(set) var puts = 0

    public init() {}

    public func slowDown(_ delay: Duration) { putDelay = delay }

    public func put(_ key: String, data: Data, contentType: String, ifAbsent: Bool) async -> Bool {
        if putDelay > .zero { try? await Task.sleep(for: putDelay) }
        puts += 1
        if ifAbsent, objects[key] != nil { return false }
        objects[key] = data
        unsynced.insert(key)
        return true
    }
    public func put(_ key: String, file: URL, contentType: String, ifAbsent: Bool) async throws -> Bool {
        await put(key, data: try Data(contentsOf: file), contentType: contentType, ifAbsent: ifAbsent)
    }
    public func get(_ key: String) throws -> Data {
        guard let data = objects[key] else { throw PipelineError(.storage, "object \(key) not found", fields: [.httpStatus: "404"]) }
        return data
    }
    public nonisolated func read(_ key: String, chunkSize: Int, _ body: (Data) async throws -> Void) async throws {
        let data = try await get(key)
        var offset = 0
        while offset < data.count {
            let end = min(offset + chunkSize, data.count)
            try await body(data.subdata(in: offset..<end))
            offset = end
        }
    }
    public func exists(_ key: String) -> Bool { objects[key] != nil }
    public func delete(_ key: String) { objects[key] = nil }
    public func sync() {
        syncs += 1
        unsynced.removeAll()
    }
    public func sweep() -> (files: Int, bytes: Int64) { (0, 0) }
    public nonisolated func location(of key: String) -> String { "mem://\(key)" }
    public nonisolated var backend: String { "memory" }
    public func upload(_ key: String, file: URL, size: Int, contentType: String) throws {
        objects[key] = try Data(contentsOf: file)
    }
    /// Replaces an object's bytes without going through the pipeline.
    public func tamper(_ key: String, with data: Data) { objects[key] = data }
}

/// A transport answering from a script: each request gets the next step (the last one repeats),
/// a response or an error. Records what it was asked; a request whose answer goes to a file gets
/// the body written there, as the live transport does.
public final class ScriptedTransport: HTTPTransport, @unchecked Sendable {
    public enum Step: Sendable {
        case answer(HTTPResponse)
        case fail(PipelineError)
        /// Answers after a delay (honouring cancellation).
        case slow(Duration, HTTPResponse)
    }

    private let lock = NSLock()
    private var steps: [Step]
    private var handler: (@Sendable (HTTPRequest) throws -> HTTPResponse)?
    private var _requests: [HTTPRequest] = []

    public init(_ steps: [Step]) {
        self.steps = steps
    }

    /// Answers with these statuses and a `{}` body.
    public convenience init(statuses: [Int]) {
        self.init(statuses.map { .answer(HTTPResponse(status: $0, body: Data("{}".utf8))) })
    }

    /// Answers every request with `handler`.
    public init(_ handler: @escaping @Sendable (HTTPRequest) throws -> HTTPResponse) {
        steps = []
        self.handler = handler
    }

    public var requests: [HTTPRequest] { lock.withLock { _requests } }
    public var requestCount: Int { lock.withLock { _requests.count } }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let step: Step = try lock.withLock {
            _requests.append(request)
            if let handler { return .answer(try handler(request)) }
            return steps.count > 1 ? steps.removeFirst() : steps[0]
        }
        let response: HTTPResponse
        switch step {
        case .answer(let answer): response = answer
        case .fail(let error): throw error
        case .slow(let delay, let answer):
            try await Task.sleep(for: delay)
            response = answer
        }
        if let file = request.responseFile {
            try response.body.write(to: file)
            return HTTPResponse(status: response.status, headers: response.headers)
        }
        return response
    }
}

/// Records the waits a retry asks for instead of sleeping.
public final class RecordingSleeper: @unchecked Sendable {
    private let lock = NSLock()
    private var _waits: [Duration] = []

    public init() {}

    public var waits: [Duration] { lock.withLock { _waits } }

    public var sleeper: Sleeper {
        Sleeper { duration in self.lock.withLock { self._waits.append(duration) } }
    }
}
