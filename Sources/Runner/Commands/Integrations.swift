import ArgumentParser
import Foundation
import Pipeline

struct Integrations: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Connect, list or remove an organization's integrations.",
        subcommands: [AddIntegration.self, ListIntegrations.self, RemoveIntegration.self]
    )

    struct AddIntegration: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Connect an integration, or replace the one of its kind.",
            discussion: """
            With --recording the integration replays a recording (a JSON Lines file of exchanges, as \
            `pipeline record` writes them) instead of calling the live API: the demo organizations do.
            """)
        @Option(name: .long, help: "Organization id.") var org: String
        @Option(name: .long, help: "Integration kind: github.") var kind: String
        @Option(name: .long, help: "The account at the source: the GitHub organization's login.") var account: String?
        @Option(name: .long, help: "Replay this recording instead of calling the live API.") var recording: String?
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption

        func run() async throws {
            do {
                let context = try await AuthorizedContext(org: org, backends: backends, actorOption: actorOption,
                                                          permission: .manageIntegrations, what: "manage integrations")
                guard BuiltIn.collectors.contains(where: { $0.source == kind }) else {
                    throw PipelineError(.invalidInput, "unknown integration kind \(quotedForMessage(kind)) (known: \(BuiltIn.collectors.map(\.source).sorted().joined(separator: ", ")))")
                }
                var settings: [String: String] = [:]
                guard let account, !account.isEmpty else { throw PipelineError(.invalidInput, "--account is required for \(kind)") }
                settings["account"] = account
                if let recording {
                    let url = URL(fileURLWithPath: recording).standardizedFileURL
                    guard FileManager.default.isReadableFile(atPath: url.path) else {
                        throw PipelineError(.invalidInput, "no such recording: \(recording)")
                    }
                    settings["recording"] = url.path
                }
                let existed = try await context.store.integrations(of: context.organization)[kind] != nil
                try await context.store.setIntegration(Integration(kind: kind, settings: settings), in: context.organization,
                                                       actor: context.actor)
                print("\(context.organization): \(kind) \(existed ? "replaced" : "connected")")
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
}
