import Foundation
import Pipeline
import Cryptography
import Stages
import Storage
import Transport

/// Errors about organizations the store does not have, saying what it has and how to add one.
enum OrganizationLookup {
    static func unknown(_ id: OrganizationID?, in store: any EvidenceStore) async throws -> PipelineError {
        let known = try await store.organizations().map(\.id.rawValue)
        let hint = known.isEmpty
            ? "the store has no organizations: add one with `pipeline orgs add`, or import the demo ones with `pipeline orgs import fixtures/orgs`"
            : "known: \(known.joined(separator: ", "))"
        guard let id else { return PipelineError(.unknownOrganization, "no organizations to run: \(hint)") }
        return PipelineError(.unknownOrganization, "unknown organization '\(id)' (\(hint))")
    }

    /// The organization named, or every one when none is (the store is the one source of truth),
    /// with their integrations' environment settings applied.
    static func selected(_ id: OrganizationID?, in store: any EvidenceStore) async throws -> [Organization] {
        if let id {
            guard let found = try await store.organization(id) else { throw try await unknown(id, in: store) }
            return [IntegrationTransports.withEnvironment(found)]
        }
        let all = try await store.organizations().map { IntegrationTransports.withEnvironment($0) }
        if all.isEmpty { throw try await unknown(nil, in: store) }
        return all
    }
}

/// The transport each source of an organization talks through: replay when its integration
/// names a recording, the live libcurl client with the integration's credentials otherwise. The
/// source never knows which. Credentials are opened only here, only when a run needs them.
struct IntegrationTransports: Sendable {
    let store: any EvidenceStore
    let keys: LazyKeyring
    let http: any HTTPTransport
    /// Where answers are kept for conditional requests (a run's object store), if anywhere.
    let answers: (any ObjectStore)?

    /// Sources the run's definition declares (`type: http`), by name: how their APIs authenticate.
    let declared: [String: HTTPSourceDefinition]

    init(store: any EvidenceStore, backends: BackendOptions, http: any HTTPTransport = CurlHTTPClient(),
         answers: (any ObjectStore)? = nil, declared: [HTTPSourceDefinition] = []) {
        self.store = store
        self.keys = LazyKeyring { try backends.keyring(creating: false) }
        self.http = http
        self.answers = answers
        self.declared = Dictionary(declared.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    func transport(for source: String, of organization: Organization) async throws -> (any HTTPTransport)? {
        guard let settings = organization.integrations[source] else { return nil }
        if let recording = settings["recording"] {
            return try await ReplayTransport.open(recording: recording)
        }
        let transport = try await live(source, of: organization).transport
        // GitHub and Google answer with ETags; a re-run of an unchanged organization revalidates
        // instead of fetching again. AWS's answers carry none.
        guard let answers, source != "aws" else { return transport }
        return ConditionalTransport(base: transport, cache: ObjectAnswerCache(objects: answers, organization: organization.id, source: source))
    }

    /// The live transport of a connected integration, the secret values it holds (for a
    /// recording to scrub), and its API root as configured against the public one (for a
    /// recording to rewrite).
    func live(_ source: String, of organization: Organization) async throws
        -> (transport: any HTTPTransport, secrets: [String], rewrites: [(from: String, to: String)]) {
        guard let settings = organization.integrations[source] else {
            throw PipelineError(.invalidInput, "\(organization.id) has no \(source) integration")
        }
        let credentials = try await credentials(source, of: organization.id)
        switch source {
        case "google_workspace":
            let root = settings["api_url"].map { [(from: $0.hasSuffix("/") ? String($0.dropLast()) : $0, to: "https://admin.googleapis.com")] } ?? []
            return (try google(settings, credentials, organization: organization.id), Array(credentials.values), root)
        case "aws":
            return (try aws(settings, credentials, organization: organization.id), Array(credentials.values), [])
        case "github":
            let root = try settings["api_url"].map(GitHubCollector.apiRoot)
            let rewrites = root.map { [(from: $0.absoluteString, to: "https://api.github.com")] } ?? []
            return (try github(settings, credentials, organization: organization.id), Array(credentials.values), rewrites)
        default:
            guard settings["type"] == "http" else {
                throw PipelineError(.configuration, "live \(source) collection is not built in")
            }
            guard let declaration = declared[source] else {
                throw PipelineError(.configuration, "the \(source) integration of \(organization.id) reads an http source that this definition does not declare (sources: - name: \(source))")
            }
            return (try declaredHTTP(declaration, settings, credentials, organization: organization.id), Array(credentials.values), [])
        }
    }

    /// A declared http source: its secret in the header its declaration names, sent only to the
    /// integration's base URL.
    func declaredHTTP(_ declaration: HTTPSourceDefinition, _ settings: [String: String], _ credentials: [String: String],
                      organization: OrganizationID) throws -> any HTTPTransport {
        let origin = try HTTPSourceCollector.baseURL(settings, source: declaration.name,
                                                     organization: Organization(id: organization, name: "", integrations: [:]))
        if case .none = declaration.auth { return http }
        guard let secret = credentials["secret"] else {
            throw PipelineError(.configuration, "the \(declaration.name) integration of \(organization) has no secret: add it with `pipeline integrations add --org \(organization) --kind http --source \(declaration.name) --secret-env VAR`")
        }
        switch declaration.auth {
        case .none:
            return http
        case .bearer:
            return AuthorizingTransport(base: http, origin: origin) { "Bearer \(secret)" }
        case .basic:
            let pair = Data("\(settings["username"] ?? ""):\(secret)".utf8).base64EncodedString()
            return AuthorizingTransport(base: http, origin: origin) { "Basic \(pair)" }
        case .header(let name, let prefix):
            let value = prefix.isEmpty ? secret : (prefix.hasSuffix(" ") ? prefix + secret : "\(prefix) \(secret)")
            return AuthorizingTransport(base: http, origin: origin, header: name) { value }
        }
    }

    func credentials(_ kind: String, of organization: OrganizationID) async throws -> [String: String] {
        guard let sealed = try await store.integrationSecret(kind, of: organization) else { return [:] }
        let keyring: Keyring
        do {
            keyring = try keys.get()
        } catch let error as PipelineError {
            throw PipelineError(error.code, "cannot open the credentials of \(organization)'s \(kind) integration: \(error.message)")
        }
        return try IntegrationCredentials.open(sealed, organization: organization, kind: kind, keyring: keyring)
    }

    /// AWS: a sealed access key or the standard chain (environment, AWS_PROFILE), then the
    /// customer's role assumed with its external id when the integration names one.
    func aws(_ settings: [String: String], _ credentials: [String: String], organization: OrganizationID) throws -> any HTTPTransport {
        let base: any AWSCredentialProvider
        if let key = credentials["access_key_id"], let secret = credentials["secret_access_key"] {
            base = StaticAWSCredentials(AWSCredentials(accessKeyID: key, secretAccessKey: secret))
        } else {
            base = StaticAWSCredentials(try AWSCredentialChain.resolve())
        }
        guard let role = settings["role_arn"] else { return AWSSigningTransport(base: http, credentials: base) }
        let home = (settings["regions"] ?? "us-east-1").split(separator: ",").first.map(String.init) ?? "us-east-1"
        let endpoint = settings["endpoint"].flatMap(URL.init(string:)) ?? URL(string: "https://sts.\(home).amazonaws.com")!
        let assumed = AssumedRoleCredentials(base: base, roleARN: role, externalID: settings["external_id"],
                                             sessionName: "lightsail-\(organization)", endpoint: endpoint, region: home, http: http)
        return AWSSigningTransport(base: http, credentials: assumed)
    }

    /// Google Workspace: the service account's key signs a JWT assertion naming the admin it acts
    /// as; the access token it is exchanged for is kept until five minutes before it expires.
    func google(_ settings: [String: String], _ credentials: [String: String], organization: OrganizationID) throws -> any HTTPTransport {
        guard let key = credentials["service_account"], let subject = settings["subject"] else {
            throw PipelineError(.configuration, "the google_workspace integration of \(organization) has no service account key or subject: add them with `pipeline integrations add --org \(organization) --kind google_workspace --service-account-file F --subject ADMIN`")
        }
        let account = try GoogleServiceAccount(json: Data(key.utf8), tokenURL: settings["token_url"].flatMap(URL.init(string:)),
                                               what: "the service account key of \(organization)'s google_workspace integration")
        let api = settings["api_url"].flatMap(URL.init(string:)) ?? URL(string: "https://admin.googleapis.com")!
        let http = self.http
        let tokens = CachedToken { try await account.accessToken(subject: subject, scopes: GoogleWorkspaceCollector.scopes, http: http) }
        return AuthorizingTransport(base: http, origin: api) { "Bearer \(try await tokens.token())" }
    }

    /// Settings the environment supplies where the integration names none: AWS_ENDPOINT_URL for
    /// an AWS integration without `--endpoint`.
    static func withEnvironment(_ organization: Organization,
                                _ environment: [String: String] = ProcessInfo.processInfo.environment) -> Organization {
        guard var aws = organization.integrations["aws"], aws["endpoint"] == nil, aws["recording"] == nil,
              let endpoint = environment["AWS_ENDPOINT_URL"], !endpoint.isEmpty else { return organization }
        aws["endpoint"] = endpoint
        var integrations = organization.integrations
        integrations["aws"] = aws
        return Organization(id: organization.id, name: organization.name, integrations: integrations, members: organization.members,
                            timeZone: organization.timeZone)
    }

    func github(_ settings: [String: String], _ credentials: [String: String],
                organization: OrganizationID) throws -> any HTTPTransport {
        let api = try GitHubCollector.apiRoot(settings["api_url"] ?? "https://api.github.com")
        if let token = credentials["token"] {
            return AuthorizingTransport(base: http, origin: api) { "Bearer \(token)" }
        }
        if let pem = credentials["private_key"], let appID = settings["app_id"], let installation = settings["installation_id"] {
            let app = GitHubAppCredentials(appID: appID, installationID: installation,
                                           key: try RSASigningKey(pem: pem, what: "the private key of \(organization)'s github integration"),
                                           apiURL: api)
            let http = self.http
            let tokens = CachedToken { try await app.installationToken(http: http) }
            return AuthorizingTransport(base: http, origin: api) { "Bearer \(try await tokens.token())" }
        }
        throw PipelineError(.configuration, "the github integration of \(organization) has no credentials: add them with `pipeline integrations add --org \(organization) --kind github --token-env VAR`")
    }
}

/// The keyring, read the first time a credential needs it (a run replaying recordings needs none).
final class LazyKeyring: @unchecked Sendable {
    private let lock = NSLock()
    private let load: () throws -> Keyring
    private var loaded: Result<Keyring, any Error>?

    init(_ load: @escaping () throws -> Keyring) { self.load = load }

    func get() throws -> Keyring {
        try lock.withLock {
            if let loaded { return try loaded.get() }
            let result = Result { try load() }
            loaded = result
            return try result.get()
        }
    }
}
