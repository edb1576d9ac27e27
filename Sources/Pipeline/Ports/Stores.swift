import Foundation

/// Where evidence rows, runs, results, scores and exports live (SQLite by default, PostgreSQL in
/// production). Every call names its organization; an implementation must never return or touch
/// another organization's rows.
public protocol EvidenceStore: Sendable {
    func beginRun(_ run: RunRecord) async throws
    /// Stores evidence rows (one transaction). Evidence already stored is left as it is.
    /// Returns how many were new.
    @discardableResult
    func storeEvidence(_ batch: [Evidence], run: RunRecord) async throws -> Int
    /// Stores a run's check results and scores (one transaction).
    func storeResults(_ results: [CheckResult], scores: ScoreSummary, run: RunRecord) async throws
    func storeExport(_ export: ExportRecord, run: RunRecord) async throws
    /// The organization's exports, newest first by their run's clock (only those whose run's clock
    /// is before `before`, and the one with `id`, when given): `pipeline exports list`, the export
    /// `export share` names, and the link a new export's manifest carries to the one before it.
    func exports(of organization: OrganizationID, before: Date?, id: String?, limit: Int) async throws -> [ExportSummary]
    func finishRun(_ run: RunRecord, status: RunRecord.Status, message: String?) async throws
    /// The organization's runs, newest first (only those with `status` when given).
    func runs(of organization: OrganizationID, status: RunRecord.Status?, limit: Int) async throws -> [RunSummary]
    /// Marks a run still recorded as running as abandoned (its process died without a word) and
    /// audits it as `run.abandoned`; returns false when it was not running.
    @discardableResult
    func abandonRun(_ id: String, of organization: OrganizationID, reason: String) async throws -> Bool
    func evidenceCount(organization: OrganizationID) async throws -> Int

    /// Every organization in the store with its integrations' settings (never their secrets), in
    /// id order: what `--all-orgs` runs.
    func organizations() async throws -> [Organization]
    /// The organization, or nil when the store has none with this id.
    func organization(_ id: OrganizationID) async throws -> Organization?
    /// Adds an organization with its first members and integrations, in one transaction, audited
    /// (`organization.created`, `member.added`, `integration.added`). When it already exists
    /// nothing is written and this returns false: an import never overwrites what changed since.
    @discardableResult
    func addOrganization(_ organization: Organization, members: [Member], integrations: [Integration],
                         actor: String) async throws -> Bool
    /// Removes the organization with its members and integrations (audited
    /// `organization.removed`); its evidence, runs and audit log are history and stay. False when
    /// there was none.
    @discardableResult
    func removeOrganization(_ id: OrganizationID, actor: String) async throws -> Bool
    /// The actor's role in the organization, or nil when not a member.
    func role(of actor: String, in organization: OrganizationID) async throws -> Role?
    func members(of organization: OrganizationID) async throws -> [Member]
    /// Adds or changes a member (audited as `member.added` or `member.role_changed`).
    func setMember(_ member: Member, in organization: OrganizationID, actor: String) async throws
    /// Returns whether there was such a member (audited as `member.removed`).
    @discardableResult
    func removeMember(_ memberActor: String, from organization: OrganizationID, actor: String) async throws -> Bool
    /// Connected integrations: kind → settings (never credentials).
    func integrations(of organization: OrganizationID) async throws -> [String: [String: String]]
    /// Connects an integration, or replaces the one of its kind (audited `integration.added` or
    /// `integration.changed`).
    func setIntegration(_ integration: Integration, in organization: OrganizationID, actor: String) async throws
    /// The sealed credentials of an integration, or nil when it has none (a replay, say).
    func integrationSecret(_ kind: String, of organization: OrganizationID) async throws -> SealedSecret?
    /// Replaces the sealed credentials of an integration when they are still sealed with
    /// `oldKeyID` (audited `integration.resealed`); false when they were not.
    func resealIntegration(_ kind: String, of organization: OrganizationID, secret: SealedSecret,
                           replacing oldKeyID: String, actor: String) async throws -> Bool
    /// Every integration's sealed credentials, for `pipeline keys rotate`.
    func allIntegrationSecrets(of organization: OrganizationID) async throws -> [String: SealedSecret]
    /// Returns whether there was such an integration (audited as `integration.removed`).
    @discardableResult
    func removeIntegration(_ kind: String, from organization: OrganizationID, actor: String) async throws -> Bool
    /// The organization's risk exceptions, expired ones included (the results say they expired).
    func exceptions(of organization: OrganizationID) async throws -> [RiskException]
    /// Records an exception (audited `exception.added`).
    func addException(_ exception: RiskException, to organization: OrganizationID, actor: String) async throws
    /// Returns whether there was such an exception (audited `exception.removed`).
    @discardableResult
    func removeException(_ id: String, from organization: OrganizationID, actor: String) async throws -> Bool
    /// The latest earlier run of `pipeline` with results (other than `run`), with its evidence's
    /// resources; nil when there is none.
    func previousResults(of organization: OrganizationID, pipeline: String, before run: String) async throws -> PreviousResults?
    /// `source resource` of the evidence a run collected.
    func evidenceResources(of organization: OrganizationID, run: String) async throws -> Set<String>
    /// Stores what changed since the previous run, with the run (append-only).
    func storeChanges(_ changes: RunChanges, run: RunRecord) async throws
    /// What changed in a run, as stored.
    func changes(of organization: OrganizationID, run: String) async throws -> RunChanges?
    /// Framework scores of the organization's latest `runs` runs with scores, newest first.
    func scoreHistory(of organization: OrganizationID, runs: Int) async throws -> [ScoreRecord]
    /// What the latest run before `clock` collected of `operation` (about `resource`): that
    /// run's clock and the evidence, for a run whose own collection of it failed.
    func lastCollected(of organization: OrganizationID, source: String, operation: String, resource: String,
                       before clock: Date) async throws -> (asOf: Date, evidence: [Evidence])?
    /// Evidence people uploaded, with the controls each supports (for manual controls).
    func uploadedEvidence(of organization: OrganizationID) async throws -> [(evidence: Evidence, controls: [String])]
    /// Links evidence to the controls it supports (uploads name them).
    func linkEvidence(_ evidenceID: String, to controls: [String], organization: OrganizationID) async throws
    func audit(_ entry: AuditEntry) async throws
    func auditLog(of organization: OrganizationID) async throws -> [AuditEntry]
    /// Applied and known migration versions, for health checks.
    func migrationState() async throws -> (applied: Int, latest: Int)
    /// Records how a run's collection from an integration went (nil error: it worked).
    func recordIntegrationOutcome(_ kind: String, of organization: OrganizationID, run: String, at: Date, error: String?) async throws
    /// Each integration's last attempt, success and error, as runs recorded them.
    func integrationStatuses(of organization: OrganizationID) async throws -> [IntegrationStatus]
}

/// How an organization's integration has been doing, run after run.
public struct IntegrationStatus: Sendable, Equatable, Codable {
    public var kind: String
    public var lastAttemptAt: Date?
    public var lastSuccessAt: Date?
    public var lastErrorAt: Date?
    public var lastError: String?
    public var lastRunID: String?

    public init(kind: String, lastAttemptAt: Date? = nil, lastSuccessAt: Date? = nil, lastErrorAt: Date? = nil,
                lastError: String? = nil, lastRunID: String? = nil) {
        self.kind = kind
        self.lastAttemptAt = lastAttemptAt
        self.lastSuccessAt = lastSuccessAt
        self.lastErrorAt = lastErrorAt
        self.lastError = lastError
        self.lastRunID = lastRunID
    }

    /// The status after one more attempt.
    public func recording(run: String, at: Date, error: String?) -> IntegrationStatus {
        var next = self
        next.lastAttemptAt = at
        next.lastRunID = run
        if let error {
            next.lastErrorAt = at
            next.lastError = error
        } else {
            next.lastSuccessAt = at
        }
        return next
    }
}

extension EvidenceStore {
    public func exports(of organization: OrganizationID, before: Date?, limit: Int) async throws -> [ExportSummary] {
        try await exports(of: organization, before: before, id: nil, limit: limit)
    }
}

public struct RunRecord: Sendable, Hashable {
    public enum Status: String, Sendable, CaseIterable { case running, succeeded, failed, cancelled, abandoned }
    public let id: String
    public let organizationID: OrganizationID
    public let pipeline: String
    public let asOf: Date
    public let actor: String
    /// Where it runs: a later run tells from these whether a run left `running` is still alive.
    public let host: String
    public let pid: Int32

    public init(id: String, organizationID: OrganizationID, pipeline: String, asOf: Date, actor: String,
                host: String = Residue.host, pid: Int32 = Residue.pid) {
        self.id = id
        self.organizationID = organizationID
        self.pipeline = pipeline
        self.asOf = asOf
        self.actor = actor
        self.host = host
        self.pid = pid
    }
}

/// A run as the store keeps it, for `pipeline runs list`.
public struct RunSummary: Sendable, Hashable, Codable {
    public let id: String
    public let pipeline: String
    public let actor: String
    public let status: String
    public let asOf: Date
    public let startedAt: Date
    public let finishedAt: Date?
    public let host: String
    public let pid: Int32
    public let message: String?

    public init(id: String, pipeline: String, actor: String, status: String, asOf: Date, startedAt: Date, finishedAt: Date?,
                host: String, pid: Int32, message: String?) {
        self.id = id
        self.pipeline = pipeline
        self.actor = actor
        self.status = status
        self.asOf = asOf
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.host = host
        self.pid = pid
        self.message = message
    }

    enum CodingKeys: String, CodingKey {
        case id, pipeline, actor, status, host, pid, message
        case asOf = "as_of"
        case startedAt = "started_at"
        case finishedAt = "finished_at"
    }
}

public struct ExportRecord: Sendable, Hashable, Codable {
    public let id: String
    public let organizationID: OrganizationID
    public let artifacts: [Artifact]

    public init(id: String, organizationID: OrganizationID, artifacts: [Artifact]) {
        self.id = id
        self.organizationID = organizationID
        self.artifacts = artifacts
    }
}

/// Blobs under keys that begin `{organization_id}/`. Writes are whole or not at all.
public protocol ObjectStore: Sendable {
    /// Writes the object; with `ifAbsent`, leaves an existing object untouched and returns false.
    /// (Keys are content-addressed, so an existing object has the same bytes; a store whose
    /// objects can be torn by a crash, a directory, replaces one whose size is not the new one's.)
    /// The object may not be durable until `sync()` (a directory defers its flush to the batch).
    @discardableResult
    func put(_ key: String, data: Data, contentType: String, ifAbsent: Bool) async throws -> Bool
    /// Writes the object from a file, streamed from disk (the file stays where it is). The caller
    /// must not change the file afterwards: a directory store may give it a second name.
    @discardableResult
    func put(_ key: String, file: URL, contentType: String, ifAbsent: Bool) async throws -> Bool
    func get(_ key: String) async throws -> Data
    /// Reads the object in pieces of at most `chunkSize` bytes, in order, handing each to `body`
    /// before reading the next: memory holds one piece, whatever the object's size.
    func read(_ key: String, chunkSize: Int, _ body: (Data) async throws -> Void) async throws
    func exists(_ key: String) async throws -> Bool
    /// Removes the object; removing what is not there is not an error.
    func delete(_ key: String) async throws
    /// Makes every object written so far durable: called once per batch, before the rows that
    /// point at the objects commit.
    func sync() async throws
    /// Removes what writers that died (`kill -9`, a crash) left half-written; returns how many
    /// pieces and bytes went.
    func sweep() async throws -> (files: Int, bytes: Int64)
    /// Where a person finds the object (a path for a local directory, a URL for S3).
    func location(of key: String) -> String
    /// A link anyone holding it may download the object with until it expires (a presigned URL),
    /// or nil where the store has no such thing (a local directory).
    func shareableLink(for key: String, expires: Duration) throws -> URL?
    /// Puts a file of `size` bytes under `key` whole, streaming it from disk, and checks what
    /// arrived. A store that makes presigned URLs uploads through one, as the product's upload
    /// flow does.
    func upload(_ key: String, file: URL, size: Int, contentType: String) async throws
    /// `directory`, `s3`: for health output.
    var backend: String { get }
}

extension ObjectStore {
    public func shareableLink(for key: String, expires: Duration) throws -> URL? { nil }
}

/// Checks a key before use: it must start with the organization's prefix, and no segment may be
/// empty, `.` or `..`.
public func validateObjectKey(_ key: String, organization: OrganizationID) throws(PipelineError) {
    let segments = key.split(separator: "/", omittingEmptySubsequences: false)
    guard segments.first.map(String.init) == organization.rawValue, segments.count >= 2,
          segments.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." && !$0.contains("\0") && !$0.contains("\\") })
    else {
        throw PipelineError(.storage, "object key \(quotedForMessage(key)) is outside organization \(organization)")
    }
}

/// Credentials sealed with AES-256-GCM: the id of the key that sealed them, and nonce, ciphertext
/// and tag together. Opening them needs that key (see `Cryptography.SecretBox`).
public struct SealedSecret: Sendable, Hashable {
    public let keyID: String
    public let sealed: Data

    public init(keyID: String, sealed: Data) {
        self.keyID = keyID
        self.sealed = sealed
    }
}

/// A connected integration: its kind (`github`, `aws`, `google_workspace`, `http`), the settings
/// anyone may see (account, API URL, regions, a recording to replay), and its sealed credentials.
public struct Integration: Sendable, Hashable {
    public let kind: String
    public let settings: [String: String]
    public let secret: SealedSecret?

    public init(kind: String, settings: [String: String], secret: SealedSecret? = nil) {
        self.kind = kind
        self.settings = settings
        self.secret = secret
    }
}

/// An organization the pipeline runs for, and the integrations it has connected.
public struct Organization: Sendable, Hashable {
    public let id: OrganizationID
    public let name: String
    /// Integration name → its settings (account, login, recording), as configured.
    public let integrations: [String: [String: String]]
    /// Members an `organization.yml` lists, which an import adds with the organization.
    public let members: [Member]
    /// The IANA time zone its schedules are read in (`Europe/Berlin`); nil is UTC.
    public let timeZone: String?

    public init(id: OrganizationID, name: String, integrations: [String: [String: String]], members: [Member] = [],
                timeZone: String? = nil) {
        self.id = id
        self.name = name
        self.integrations = integrations
        self.members = members
        self.timeZone = timeZone
    }

    /// The zone its schedules are read in.
    public var scheduleTimeZone: TimeZone { timeZone.flatMap(TimeZone.init(identifier:)) ?? TimeZone(identifier: "UTC")! }

    /// Whether `name` is a time zone this machine knows (`Europe/Berlin`, `UTC`).
    public static func isValidTimeZone(_ name: String) -> Bool {
        name.count <= 64 && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "/_-+".contains($0)) }
            && TimeZone(identifier: name) != nil
    }
}
