import ArgumentParser
import Foundation
import Pipeline
import Stages

/// What `integrations add` (and `record`) accept for each kind. Secrets are read from an
/// environment variable or a file, never from the command line (where `ps` shows them).
struct IntegrationOptions: ParsableArguments {
    @Option(name: .long, help: "Integration kind: github, aws, google_workspace.") var kind: String
    @Option(name: .long, help: "Replay this recording instead of calling the live API.") var recording: String?

    // GitHub
    @Option(name: .long, help: "github: the organization's login.") var account: String?
    @Option(name: .long, help: ArgumentHelp("github: read a personal or fine-grained token from this environment variable.", valueName: "var"))
    var tokenEnv: String?
    @Option(name: .long, help: ArgumentHelp("github: read the token from this file.", valueName: "file")) var tokenFile: String?
    @Option(name: .long, help: "github: a GitHub App's id (with --installation-id and --private-key-file).") var appID: String?
    @Option(name: .long, help: "github: the App's installation id in the organization.") var installationID: String?
    @Option(name: .long, help: ArgumentHelp("github: the App's private key (PEM).", valueName: "file")) var privateKeyFile: String?
    @Option(name: .long, help: "github: the enterprise (slug) the organization belongs to, to read its audit-log streams.")
    var enterprise: String?
    @Option(name: .long, help: ArgumentHelp("github, google_workspace: the API's root (GitHub Enterprise: https://host/api/v3).", valueName: "url"))
    var apiURL: String?

    // AWS
    @Option(name: .long, help: "aws: regions to read, comma-separated (default us-east-1).") var regions: String?
    @Option(name: .long, help: ArgumentHelp("aws: one endpoint for every service (an S3/IAM/EC2-compatible server).", valueName: "url"))
    var endpoint: String?
    @Option(name: .long, help: "aws: a role in the customer's account to assume (cross-account access).") var roleARN: String?
    @Option(name: .long, help: "aws: the external id the role's trust policy requires.") var externalID: String?
    @Option(name: .long, help: ArgumentHelp("aws: read an access key id from this environment variable (default: the standard credential chain at run time).", valueName: "var"))
    var accessKeyIDEnv: String?
    @Option(name: .long, help: ArgumentHelp("aws: read the secret access key from this environment variable.", valueName: "var"))
    var secretAccessKeyEnv: String?

    // Google Workspace
    @Option(name: .long, help: ArgumentHelp("google_workspace: the service account's JSON key file.", valueName: "file"))
    var serviceAccountFile: String?
    @Option(name: .long, help: "google_workspace: the admin the service account acts as (domain-wide delegation).") var subject: String?
    @Option(name: .long, help: "google_workspace: the customer id (default my_customer).") var customer: String?
    @Option(name: .long, help: ArgumentHelp("google_workspace: the OAuth2 token endpoint (default: the key file's token_uri).", valueName: "url"))
    var tokenURL: String?

    // A source declared in a definition (type: http)
    @Option(name: .long, help: "http: the declared source's name (its `sources:` entry in a definition); the integration's kind.")
    var source: String?
    @Option(name: .long, help: ArgumentHelp("http: the API's base URL, under which the declared paths go.", valueName: "url"))
    var baseURL: String?
    @Option(name: .long, parsing: .singleValue,
            help: ArgumentHelp("http: a value for a placeholder of the declared paths (repeatable).", valueName: "key=value"))
    var setting: [String] = []
    @Option(name: .long, help: ArgumentHelp("http: read the secret (token, API key, password) from this environment variable.", valueName: "var"))
    var secretEnv: String?
    @Option(name: .long, help: ArgumentHelp("http: read the secret from this file.", valueName: "file")) var secretFile: String?
    @Option(name: .long, help: "http: the user name of basic authentication.") var username: String?

    static let kinds = ["github", "aws", "google_workspace", "http"]

    /// The kind the integration is stored under: an http integration is its declared source's.
    var storedKind: String { kind == "http" ? (source ?? kind) : kind }

    /// The settings anyone with `integrations:manage` may see, and the credentials to seal.
    func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> (settings: [String: String], secret: [String: String]) {
        guard Self.kinds.contains(kind) else {
            throw PipelineError(.invalidInput, "unknown integration kind \(quotedForMessage(kind)) (known: \(Self.kinds.joined(separator: ", ")))")
        }
        var settings: [String: String] = [:]
        var secret: [String: String] = [:]
        func refuse(_ options: [(String, String?)]) throws {
            let given = options.filter { $0.1 != nil }.map(\.0)
            guard given.isEmpty else {
                throw PipelineError(.invalidInput, "\(given.joined(separator: ", ")) \(given.count == 1 ? "does" : "do") not apply to \(kind)")
            }
        }
        func url(_ option: String, _ value: String?) throws -> String? {
            guard let value else { return nil }
            guard let url = URL(string: value), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
                  url.host != nil, url.user == nil, url.password == nil else {
                throw PipelineError(.invalidInput, "\(option) \(quotedForMessage(value)) is not an http(s) URL without credentials")
            }
            return value
        }
        let github = [("--token-env", tokenEnv), ("--token-file", tokenFile), ("--app-id", appID), ("--enterprise", enterprise),
                      ("--installation-id", installationID), ("--private-key-file", privateKeyFile)]
        let aws = [("--regions", regions), ("--endpoint", endpoint), ("--role-arn", roleARN), ("--external-id", externalID),
                   ("--access-key-id-env", accessKeyIDEnv), ("--secret-access-key-env", secretAccessKeyEnv)]
        let google = [("--service-account-file", serviceAccountFile), ("--subject", subject), ("--customer", customer),
                      ("--token-url", tokenURL)]
        let declared = [("--source", source), ("--base-url", baseURL), ("--secret-env", secretEnv), ("--secret-file", secretFile),
                        ("--username", username), ("--setting", setting.first)]

        if let recording {
            let url = URL(fileURLWithPath: recording).standardizedFileURL
            guard FileManager.default.isReadableFile(atPath: url.path) else {
                throw PipelineError(.invalidInput, "no such recording: \(recording)")
            }
            settings["recording"] = url.path
        }
        let replay = recording != nil

        switch kind {
        case "github":
            try refuse(aws + google + declared)
            guard let account, !account.isEmpty else { throw PipelineError(.invalidInput, "github needs --account (the organization's login)") }
            settings["account"] = account
            if let api = try url("--api-url", apiURL) { settings["api_url"] = api }
            if let enterprise {
                guard GitHubCollector.isValidLogin(enterprise) else {
                    throw PipelineError(.invalidInput, "--enterprise \(quotedForMessage(enterprise)) is not an enterprise slug (letters, digits and single hyphens)")
                }
                settings["enterprise"] = enterprise
            }
            if tokenEnv != nil || tokenFile != nil {
                guard appID == nil, installationID == nil, privateKeyFile == nil else {
                    throw PipelineError(.invalidInput, "github takes a token or a GitHub App (--app-id, --installation-id, --private-key-file), not both")
                }
                secret["token"] = try Self.secretValue(env: tokenEnv, file: tokenFile, what: "token", environment: environment)
            } else if appID != nil || installationID != nil || privateKeyFile != nil {
                guard let appID, let installationID, let privateKeyFile,
                      appID.allSatisfy(\.isNumber) || appID.hasPrefix("Iv"), installationID.allSatisfy(\.isNumber) else {
                    throw PipelineError(.invalidInput, "a GitHub App needs --app-id (its id or client id), --installation-id (a number) and --private-key-file")
                }
                settings["app_id"] = appID
                settings["installation_id"] = installationID
                secret["private_key"] = try Self.secretValue(env: nil, file: privateKeyFile, what: "private key", environment: environment)
            } else if !replay {
                throw PipelineError(.invalidInput, "github needs credentials: --token-env VAR, --token-file FILE, or a GitHub App (--app-id, --installation-id, --private-key-file); or --recording to replay one")
            }
        case "aws":
            try refuse(github + google + declared + [("--api-url", apiURL)])
            if let account { settings["account"] = account }
            let list = (regions ?? "us-east-1").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard !list.isEmpty, list.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" } }) else {
                throw PipelineError(.invalidInput, "--regions \(quotedForMessage(regions ?? "")) is not a comma-separated list of region names")
            }
            settings["regions"] = list.joined(separator: ",")
            if let endpoint = try url("--endpoint", endpoint) { settings["endpoint"] = endpoint }
            if let roleARN {
                guard roleARN.hasPrefix("arn:"), roleARN.contains(":role/") else {
                    throw PipelineError(.invalidInput, "--role-arn \(quotedForMessage(roleARN)) is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)")
                }
                settings["role_arn"] = roleARN
            }
            if let externalID { settings["external_id"] = externalID }
            if accessKeyIDEnv != nil || secretAccessKeyEnv != nil {
                guard accessKeyIDEnv != nil, secretAccessKeyEnv != nil else {
                    throw PipelineError(.invalidInput, "--access-key-id-env and --secret-access-key-env go together")
                }
                secret["access_key_id"] = try Self.secretValue(env: accessKeyIDEnv, file: nil, what: "access key id", environment: environment)
                secret["secret_access_key"] = try Self.secretValue(env: secretAccessKeyEnv, file: nil, what: "secret access key",
                                                                   environment: environment)
            }
        case "google_workspace":
            try refuse(github + aws + declared)
            if let account { settings["account"] = account }
            settings["customer"] = customer ?? "my_customer"
            if let api = try url("--api-url", apiURL) { settings["api_url"] = api }
            if let token = try url("--token-url", tokenURL) { settings["token_url"] = token }
            if let subject {
                guard Actor.isValidName(subject), subject.contains("@") else {
                    throw PipelineError(.invalidInput, "--subject \(quotedForMessage(subject)) is not an email address")
                }
                settings["subject"] = subject
            }
            if let serviceAccountFile {
                guard settings["subject"] != nil else {
                    throw PipelineError(.invalidInput, "google_workspace needs --subject: the admin the service account acts as")
                }
                secret["service_account"] = try Self.secretValue(env: nil, file: serviceAccountFile, what: "service account key",
                                                                 environment: environment)
            } else if !replay {
                throw PipelineError(.invalidInput, "google_workspace needs --service-account-file and --subject, or --recording to replay one")
            }
        case "http":
            try refuse(github + aws + google + [("--api-url", apiURL), ("--account", account)])
            guard let source, Self.isDeclaredSourceName(source), !Self.kinds.contains(source) else {
                throw PipelineError(.invalidInput, "http needs --source NAME: the name a definition declares it under (lowercase letters, digits and '_', not a built-in source's)")
            }
            settings["type"] = "http"
            // A replay too: the declared paths go under it, as they went when it was recorded.
            guard let base = try url("--base-url", baseURL) else {
                throw PipelineError(.invalidInput, "http needs --base-url (the API's root, also when replaying a recording)")
            }
            settings["base_url"] = base
            for pair in setting {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, Self.isDeclaredSourceName(parts[0]) || parts[0].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }),
                      !["type", "base_url", "recording", "username"].contains(parts[0]), !parts[1].isEmpty else {
                    throw PipelineError(.invalidInput, "--setting \(quotedForMessage(pair)) is not key=value with a key of letters, digits and '_' (not type, base_url, recording or username)")
                }
                settings[parts[0]] = parts[1]
            }
            if let username {
                guard !username.contains(":"), !username.isEmpty else {
                    throw PipelineError(.invalidInput, "--username must be non-empty and without ':'")
                }
                settings["username"] = username
            }
            if secretEnv != nil || secretFile != nil {
                secret["secret"] = try Self.secretValue(env: secretEnv, file: secretFile, what: "secret", environment: environment)
            }
        default:
            break
        }
        return (settings, secret)
    }

    static func isDeclaredSourceName(_ name: String) -> Bool {
        guard let first = name.first, first.isASCII, first.isLowercase, name.count <= 63 else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }
    }

    /// A secret from an environment variable or a file (trimmed of surrounding whitespace).
    static func secretValue(env: String?, file: String?, what: String, environment: [String: String]) throws -> String {
        if let env {
            guard let value = environment[env]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else {
                throw PipelineError(.invalidInput, "the environment variable \(env), which should hold the \(what), is not set")
            }
            return value
        }
        guard let file else { throw PipelineError(.invalidInput, "no \(what) given") }
        var info = stat()
        guard stat(file, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size <= 1 << 20,
              let data = FileManager.default.contents(atPath: file),
              let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else {
            throw PipelineError(.invalidInput, "cannot read the \(what) from \(file) (a non-empty UTF-8 file of at most 1 MiB)")
        }
        return text
    }
}
