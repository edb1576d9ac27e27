import ArgumentParser
import Foundation
import Pipeline
import Stages
import Storage
import Transport

/// Where state lives, chosen by configuration alone: the embedded default (SQLite and a directory
/// under the data directory) or production (PostgreSQL and S3-compatible storage).
struct BackendOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Data directory of the embedded default (env LIGHTSAIL_DATA_DIR, default ./.lightsail).", valueName: "dir"))
    var dataDir: String?

    @Option(name: .long, help: ArgumentHelp("""
        Database: postgres://user:pass@host:port/db (or key=value, or 'postgres' for the PG* environment \
        variables), or sqlite:///path. Env LIGHTSAIL_DATABASE_URL. Default: SQLite in the data directory.
        """, valueName: "url"))
    var database: String?

    @Option(name: .long, help: ArgumentHelp("""
        Object storage: s3://bucket/prefix?endpoint=URL&region=R&path_style=true, or file:///path. \
        Env LIGHTSAIL_STORAGE_URL. Default: the data directory's objects folder.
        """, valueName: "url"))
    var storage: String?

    @Option(name: .long, help: ArgumentHelp("""
        File of the keys that seal integration credentials (env LIGHTSAIL_KEY_FILE). Otherwise \
        LIGHTSAIL_ENCRYPTION_KEY (and LIGHTSAIL_PREVIOUS_ENCRYPTION_KEYS), or on the embedded default \
        the data directory's encryption.key, made on first use.
        """, valueName: "file"))
    var keyFile: String?

    @Option(name: .long, help: ArgumentHelp("""
        File of the Ed25519 key that signs export manifests (env LIGHTSAIL_SIGNING_KEY_FILE). Otherwise \
        LIGHTSAIL_SIGNING_KEY (the 32-byte seed as base64), or the data directory's signing.key, made on \
        first use (mode 0600).
        """, valueName: "file"))
    var signingKeyFile: String?

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    var dataRoot: URL {
        URL(fileURLWithPath: dataDir ?? environment["LIGHTSAIL_DATA_DIR"] ?? ".lightsail")
    }

    enum DatabaseChoice {
        case sqlite(String)
        case postgres(String)
    }

    /// The database configured: `sqlite:///path`, `postgres://…` (or `postgresql://`), a libpq
    /// `key=value` string, or `postgres` for the PG* environment. Any other scheme is refused.
    func databaseChoice() throws -> DatabaseChoice {
        let value = database ?? environment["LIGHTSAIL_DATABASE_URL"]
        guard let value, !value.isEmpty else { return .sqlite(dataRoot.appendingPathComponent("lightsail.sqlite").path) }
        if value == "postgres" || value == "postgresql" { return .postgres("") }
        if let scheme = value.range(of: "://") {
            switch value[..<scheme.lowerBound].lowercased() {
            case "sqlite":
                let path = String(value[scheme.upperBound...])
                guard !path.isEmpty else { throw PipelineError(.configuration, "database URL sqlite:// names no file: use sqlite:///path") }
                return .sqlite(path)
            case "postgres", "postgresql": return .postgres(value)
            default:
                throw PipelineError(.configuration, "database URL scheme \(quotedForMessage(String(value[..<scheme.lowerBound]), limit: 20)) is not supported: use postgres://, postgresql://, sqlite:/// or libpq key=value")
            }
        }
        guard value.contains("=") else {
            throw PipelineError(.configuration, "database \(quotedForMessage(ConnectionString.redact(value), limit: 40)) is not a URL or libpq key=value string")
        }
        return .postgres(value)
    }

    func databaseDescription(_ choice: DatabaseChoice) -> String {
        switch choice {
        case .sqlite(let path): return "sqlite://\(path)"
        case .postgres(let url): return PostgresConnection.Settings(url: url).redacted
        }
    }

    func ensureDataRoot() throws {
        do {
            try FileManager.default.createDirectory(at: dataRoot, withIntermediateDirectories: true)
        } catch {
            throw PipelineError(.storage, "cannot create data directory \(dataRoot.path): \(error.localizedDescription)")
        }
    }

    func openStore() async throws -> any EvidenceStore {
        switch try databaseChoice() {
        case .sqlite(let path):
            if dataDir != nil || environment["LIGHTSAIL_DATA_DIR"] != nil || database == nil { try ensureDataRoot() }
            return try await SQLiteEvidenceStore(path: path)
        case .postgres(let url):
            return try await PostgresEvidenceStore(settings: .init(url: url))
        }
    }

    func openObjects() async throws -> any ObjectStore {
        let value = storage ?? environment["LIGHTSAIL_STORAGE_URL"]
        guard let value, !value.isEmpty else {
            try ensureDataRoot()
            return try await LocalObjectStore.open(root: dataRoot.appendingPathComponent("objects"))
        }
        switch try StorageURL.parse(value) {
        case .local(let url):
            return try await LocalObjectStore.open(root: url)
        case .s3(let location):
            let credentials = try AWSCredentialChain.resolve()
            return S3ObjectStore(client: S3Client(location: location, credentials: credentials))
        }
    }
}

/// Who acts on demand (`--actor`, LIGHTSAIL_ACTOR), or the system for scheduled work.
struct ActorOption: ParsableArguments {
    @Option(name: .long, help: "Who acts, for permissions and the audit log (env LIGHTSAIL_ACTOR; default: system, as the scheduler).")
    var actor: String?

    func resolve() throws -> String {
        let name = actor ?? ProcessInfo.processInfo.environment["LIGHTSAIL_ACTOR"] ?? Actor.systemName
        guard Actor.isValidName(name) else {
            throw ValidationError("--actor \(quotedForMessage(name)) is not a valid actor id")
        }
        return name
    }
}

/// Checks an actor may do something in an organization; a refusal is audited and explained.
enum Authorization {
    static func require(_ permission: Permission, actor: String, organization: OrganizationID, what: String,
                        store: any EvidenceStore) async throws {
        guard Actor(actor) != .system else { return }
        let role = try await store.role(of: actor, in: organization)
        let reason: String?
        if let role {
            reason = PermissionMatrix.allows(role, permission) ? nil
                : "\(actor) is a \(role.rawValue) of \(organization) and may not \(what) (needs \(permission))"
        } else {
            reason = "\(actor) is not a member of \(organization)"
        }
        guard let reason else { return }
        try await store.audit(AuditEntry(organizationID: organization, actor: actor, action: "access.refused",
                                         entityType: "permission", entityID: permission.description, detail: what))
        throw PipelineError(.forbidden, "refused: \(reason)")
    }
}

/// What a management command needs: the organization, an open store, and the actor, already
/// checked for `permission`.
struct AuthorizedContext {
    let organization: OrganizationID
    let store: any EvidenceStore
    let actor: String

    init(org: String, backends: BackendOptions, actorOption: ActorOption, permission: Permission, what: String) async throws {
        organization = try OrganizationID(org)
        actor = try actorOption.resolve()
        store = try await backends.openStore()
        guard try await store.organization(organization) != nil else {
            throw try await OrganizationLookup.unknown(organization, in: store)
        }
        try await Authorization.require(permission, actor: actor, organization: organization, what: what, store: store)
    }
}
