import ArgumentParser
import Foundation
import Cryptography
import Pipeline
import Stages
import Transport

struct Integrations: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Connect, list or remove an organization's integrations.",
        subcommands: [AddIntegration.self, ListIntegrations.self, TestIntegration.self, RemoveIntegration.self, IntegrationStatusCommand.self]
    )

    struct AddIntegration: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Connect an integration, or replace the one of its kind.",
            discussion: """
            Credentials are read from an environment variable or a file, never from the command line, \
            and stored sealed with AES-256-GCM under the current encryption key (see --key-file). \
            With --recording the integration replays a recording (JSON Lines of exchanges, as \
            `pipeline record` writes them) instead of calling the live API: the demo organizations do.

            github:            --account LOGIN (--token-env VAR | --token-file F | --app-id N --installation-id N --private-key-file F) [--api-url URL]
            aws:               [--regions R1,R2] [--endpoint URL] [--role-arn ARN [--external-id ID]] [--access-key-id-env VAR --secret-access-key-env VAR]
            google_workspace:  --service-account-file F --subject ADMIN [--customer C] [--token-url URL] [--api-url URL]
            http:              --source NAME --base-url URL [--setting KEY=VALUE]... [--secret-env VAR | --secret-file F] [--username U]
                               (a source a definition declares under `sources:`; the integration's kind is NAME)
            """)
        @Option(name: .long, help: "Organization id.") var org: String
        @OptionGroup var options: IntegrationOptions
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption

        func run() async throws {
            do {
                let context = try await AuthorizedContext(org: org, backends: backends, actorOption: actorOption,
                                                          permission: .manageIntegrations, what: "manage integrations")
                let (settings, values) = try options.resolve()
                let kind = options.storedKind
                // Keys are checked now, not at the first run; a bad one is the user's mistake.
                do {
                    if let pem = values["private_key"] {
                        _ = try RSASigningKey(pem: pem, what: "the private key in \(options.privateKeyFile ?? "the key file")")
                    }
                    if let key = values["service_account"] {
                        _ = try GoogleServiceAccount(json: Data(key.utf8), tokenURL: nil, what: options.serviceAccountFile ?? "the key file")
                    }
                } catch let error as PipelineError {
                    throw PipelineError(.invalidInput, error.message)
                }
                var sealed: SealedSecret?
                if !values.isEmpty {
                    let keyring = try backends.keyring(creating: true)
                    sealed = try IntegrationCredentials.seal(values, organization: context.organization, kind: kind, keyring: keyring)
                }
                let existed = try await context.store.integrations(of: context.organization)[kind] != nil
                try await context.store.setIntegration(Integration(kind: kind, settings: settings, secret: sealed),
                                                       in: context.organization, actor: context.actor)
                print("\(context.organization): \(kind) \(existed ? "replaced" : "connected")"
                      + (sealed.map { " (credentials sealed with key \($0.keyID))" } ?? ""))
            } catch {
                throw report(error)
            }
        }
    }

    struct TestIntegration: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "test",
            abstract: "Make one cheap authenticated call through an integration and say whether it works.")
        @Option(name: .long, help: "Organization id.") var org: String
        @Option(name: .long, help: "Integration kind.") var kind: String
        @Option(name: .long, help: "Where definitions declaring http sources are.") var pipelines = "pipelines"
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption

        /// The declaration of an http source in the folder's definitions (the first that has it).
        static func declarations(of source: String, in folder: String) -> [HTTPSourceDefinition] {
            let loader = DefinitionLoader(vocabulary: BuiltIn.vocabulary(folder))
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".yml") }.sorted()
            for file in files {
                let path = (folder as NSString).appendingPathComponent(file)
                if let found = loader.load(file: path, within: folder).definition?.httpSources.first(where: { $0.name == source }) {
                    return [found]
                }
            }
            return []
        }

        func run() async throws {
            do {
                let context = try await AuthorizedContext(org: org, backends: backends, actorOption: actorOption,
                                                          permission: .manageIntegrations, what: "manage integrations")
                guard let organization = try await context.store.organization(context.organization).map({ IntegrationTransports.withEnvironment($0) }),
                      organization.integrations[kind] != nil else {
                    throw PipelineError(.invalidInput, "\(context.organization) has no \(quotedForMessage(kind)) integration")
                }
                // A declared source is found in the definitions that declare it.
                let declared = organization.integrations[kind]?["type"] == "http" ? Self.declarations(of: kind, in: pipelines) : []
                let transports = IntegrationTransports(store: context.store, backends: backends, declared: declared)
                let collectors = BuiltIn.collectors + declared.map { HTTPSourceCollector($0) }
                if organization.integrations[kind]?["type"] == "http", declared.isEmpty {
                    throw PipelineError(.invalidInput, "no definition in \(pipelines) declares the source \(quotedForMessage(kind))")
                }
                guard let transport = try await transports.transport(for: kind, of: organization),
                      let collector = collectors.first(where: { $0.source == kind }) else {
                    throw PipelineError(.invalidInput, "\(context.organization) has no \(quotedForMessage(kind)) integration")
                }
                let probe = try await collector.probe(organization, transport: ResilientTransport(
                    base: transport, retry: RetryPolicy(maxAttempts: 2, initialBackoff: .milliseconds(200), maxBackoff: .seconds(1)),
                    timeout: .seconds(30)))
                print("\(context.organization): \(kind) works: \(probe)")
            } catch {
                throw report(error)
            }
        }
    }

    struct ListIntegrations: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List integrations and their settings.")
        @Option(name: .long, help: "Organization id.") var org: String
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption

        func run() async throws {
            do {
                let context = try await AuthorizedContext(org: org, backends: backends, actorOption: actorOption,
                                                          permission: .manageIntegrations, what: "see integrations")
                for (kind, settings) in try await context.store.integrations(of: context.organization).sorted(by: { $0.key < $1.key }) {
                    print("\(kind)\t" + settings.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
                }
            } catch {
                throw report(error)
            }
        }
    }

    struct RemoveIntegration: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "remove", abstract: "Disconnect an integration.")
        @Option(name: .long, help: "Organization id.") var org: String
        @Option(name: .long, help: "Integration kind (github).") var kind: String
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption

        func run() async throws {
            do {
                let context = try await AuthorizedContext(org: org, backends: backends, actorOption: actorOption,
                                                          permission: .manageIntegrations, what: "manage integrations")
                guard try await context.store.removeIntegration(kind, from: context.organization, actor: context.actor) else {
                    throw PipelineError(.invalidInput, "\(context.organization) has no \(quotedForMessage(kind)) integration")
                }
                print("\(context.organization): \(kind) removed")
            } catch {
                throw report(error)
            }
        }
    }

    struct IntegrationStatusCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "status",
            abstract: "Each integration's last success, last error and when it is next due.",
            discussion: "Next due: the earliest slot of a scheduled pipeline that collects from it (now, when one is due).")
        enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

        @Option(name: .long, help: "Organization id.") var org: String
        @Option(name: .long, help: "Output format: text or json.") var format: Format = .text
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption
        @OptionGroup var locations: LocationOptions

        func run() async throws {
            do {
                let context = try await AuthorizedContext(org: org, backends: backends, actorOption: actorOption,
                                                          permission: .manageIntegrations, what: "see integrations")
                let now = Date()
                let integrations = try await context.store.integrations(of: context.organization)
                let statuses = Dictionary(uniqueKeysWithValues: try await context.store.integrationStatuses(of: context.organization)
                    .map { ($0.kind, $0) })
                let entries = try Schedules.scheduled(in: locations.pipelines)
                guard let organization = try await context.store.organization(context.organization) else {
                    throw try await OrganizationLookup.unknown(context.organization, in: context.store)
                }
                let decisions = try await Schedules.decisions(entries, organizations: [organization], store: context.store, now: now)
                var rows: [[String: Any]] = []
                for kind in Set(integrations.keys).union(statuses.keys).sorted() {
                    let status = statuses[kind] ?? IntegrationStatus(kind: kind)
                    // The soonest of the scheduled pipelines reading it: due now, or at its next slot.
                    let next = decisions.filter { $0.entry.sources.contains(kind) }.compactMap { decision -> (Date, String)? in
                        if decision.due.due { return (now, decision.entry.name) }
                        return decision.entry.schedule.next(after: now, in: organization.scheduleTimeZone).map { ($0, decision.entry.name) }
                    }.min { $0.0 < $1.0 }
                    rows.append([
                        "kind": kind, "connected": integrations[kind] != nil,
                        "last_attempt": status.lastAttemptAt.map(Timestamp.iso8601) ?? NSNull(),
                        "last_success": status.lastSuccessAt.map(Timestamp.iso8601) ?? NSNull(),
                        "last_error_at": status.lastErrorAt.map(Timestamp.iso8601) ?? NSNull(),
                        "last_error": status.lastError ?? NSNull(), "last_run_id": status.lastRunID ?? NSNull(),
                        "next_due": next.map { $0.0 == now ? "now" : Timestamp.iso8601($0.0) } ?? NSNull(),
                        "next_due_pipeline": next?.1 ?? NSNull(),
                    ])
                }
                switch format {
                case .json:
                    let data = try JSONSerialization.data(withJSONObject: ["organization_id": context.organization.rawValue, "integrations": rows],
                                                          options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
                    print(String(decoding: data, as: UTF8.self))
                case .text:
                    for row in rows {
                        func text(_ key: String) -> String { row[key] as? String ?? "never" }
                        var line = "\(row["kind"] as? String ?? "")\(row["connected"] as? Bool == true ? "" : " (disconnected)"): "
                            + "last success \(text("last_success"))"
                        if let error = row["last_error"] as? String { line += "; last error \(text("last_error_at")): \(error)" }
                        if let due = row["next_due"] as? String { line += "; next due \(due) (\(row["next_due_pipeline"] as? String ?? ""))" }
                        print(line)
                    }
                }
            } catch {
                throw report(error)
            }
        }
    }
}
