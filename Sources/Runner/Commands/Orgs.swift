import ArgumentParser
import Foundation
import Pipeline
import Storage

struct Orgs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The organizations in the store: add, list, remove, or import the demo ones from fixtures.",
        discussion: """
        The store (SQLite or PostgreSQL) is the one source of truth for organizations, their members and \
        integrations. Adding and importing organizations is the operator's (the system actor's); removing \
        one needs its owner. A removed organization's evidence, runs and audit log stay, as history.
        """,
        subcommands: [AddOrg.self, ListOrgs.self, RemoveOrg.self, ImportOrgs.self]
    )

    /// Adding organizations is for the operator, not for a member of one.
    static func requireOperator(_ actor: String, _ what: String) throws {
        guard Actor(actor) == .system else {
            throw PipelineError(.forbidden, "refused: \(actor) may not \(what); the operator (the system actor) does")
        }
    }

    struct AddOrg: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add", abstract: "Add an organization.")
        @Argument(help: "Organization id: 1-63 lowercase letters, digits and '-'.") var id: String
        @Option(name: .long, help: "Display name.") var name: String
        @Option(name: .long, help: "Its first owner (an actor id), who may then add members and integrations.") var owner: String?
        @Option(name: .long, help: "The IANA time zone its schedules are read in (default UTC), such as Europe/Berlin.") var timeZone: String?
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption

        func validate() throws {
            guard !name.trimmingCharacters(in: .whitespaces).isEmpty, name.count <= 200,
                  name.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) else {
                throw ValidationError("--name must be 1-200 printable characters")
            }
            if let owner, !Actor.isValidName(owner) || owner == Actor.systemName {
                throw ValidationError("--owner \(quotedForMessage(owner)) is not a valid actor id")
            }
            if let timeZone, !Organization.isValidTimeZone(timeZone) {
                throw ValidationError("--time-zone \(quotedForMessage(timeZone)) is not an IANA time zone such as Europe/Berlin")
            }
        }

        func run() async throws {
            do {
                let organization = try OrganizationID(id)
                let actor = try actorOption.resolve()
                try Orgs.requireOperator(actor, "add organizations")
                let store = try await backends.openStore()
                let members = owner.map { [Member(actor: $0, role: .owner)] } ?? []
                guard try await store.addOrganization(Organization(id: organization, name: name, integrations: [:], timeZone: timeZone),
                                                      members: members, integrations: [], actor: actor) else {
                    throw PipelineError(.invalidInput, "organization \(organization) already exists")
                }
                print("\(organization): added" + (owner.map { " (owner \($0))" } ?? ""))
            } catch {
                throw report(error)
            }
        }
    }

    struct ListOrgs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the organizations.")
        enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }
        @Option(name: .long, help: "Output format: text or json.") var format: Format = .text
        @OptionGroup var backends: BackendOptions

        func run() async throws {
            do {
                let organizations = try await backends.openStore().organizations()
                switch format {
                case .text:
                    for organization in organizations {
                        print("\(organization.id)\t\(organization.name)\t\(organization.integrations.keys.sorted().joined(separator: ","))")
                    }
                case .json:
                    let list: [JSONValue] = organizations.map {
                        .object(["id": .string($0.id.rawValue), "name": .string($0.name),
                                 "integrations": .array($0.integrations.keys.sorted().map(JSONValue.string))])
                    }
                    print(String(decoding: JSONValue.object(["organizations": .array(list)]).canonicalData(), as: UTF8.self),
                          terminator: "")
                }
            } catch {
                throw report(error)
            }
        }
    }

    struct RemoveOrg: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove",
            abstract: "Remove an organization with its members and integrations (its history stays).")
        @Argument(help: "Organization id.") var id: String
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption

        func run() async throws {
            do {
                let context = try await AuthorizedContext(org: id, backends: backends, actorOption: actorOption,
                                                          permission: "organizations:delete", what: "remove the organization")
                guard try await context.store.removeOrganization(context.organization, actor: context.actor) else {
                    throw PipelineError(.unknownOrganization, "unknown organization '\(context.organization)'")
                }
                print("\(context.organization): removed")
            } catch {
                throw report(error)
            }
        }
    }

    struct ImportOrgs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Import organizations described by organization.yml files (the demo ones: fixtures/orgs).",
            discussion: """
            Each path is an organization's folder (holding organization.yml and its recordings) or a folder \
            of such folders. An organization already in the store is left exactly as it is, and one \
            removed from it is not brought back unless --restore-removed says so: an import never \
            overwrites a change made since. Integrations that name a recording replay it.
            """)
        @Argument(help: "Organization folders, or folders of them.") var paths: [String]
        @Flag(name: .long, help: "Import again organizations that were removed from the store.") var restoreRemoved = false
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption

        func run() async throws {
            do {
                let actor = try actorOption.resolve()
                try Orgs.requireOperator(actor, "import organizations")
                let found = try DemoImport.organizations(in: paths)
                let store = try await backends.openStore()
                var failed = false
                for item in found {
                    switch item {
                    case .failure(let problem):
                        StandardError.write("pipeline: error: \(problem.description)\n")
                        failed = true
                    case .success(let (organization, members, integrations, documents, exceptions)):
                        if !restoreRemoved, try await store.organization(organization.id) == nil,
                           let removal = try await store.auditLog(of: organization.id).last(where: { $0.action == "organization.removed" }) {
                            print("\(organization.id): removed by \(removal.actor); not imported again (--restore-removed does)")
                            continue
                        }
                        let added = try await store.addOrganization(organization, members: members, integrations: integrations,
                                                                    actor: actor)
                        if added, !documents.isEmpty {
                            try await DocumentUpload.importDocuments(documents, of: organization.id, store: store,
                                                                     objects: try await backends.openObjects(), actor: actor)
                        }
                        if added {
                            for exception in exceptions { try await store.addException(exception, to: organization.id, actor: actor) }
                        }
                        print(added ? "\(organization.id): imported (\(members.count) members, integrations: "
                                        + integrations.map(\.kind).sorted().joined(separator: ", ")
                                        + (documents.isEmpty ? "" : ", \(documents.count) document\(documents.count == 1 ? "" : "s")")
                                        + (exceptions.isEmpty ? "" : ", \(exceptions.count) exception\(exceptions.count == 1 ? "" : "s")") + ")"
                                    : "\(organization.id): already in the store; left as it is")
                    }
                }
                if failed { throw Exit.problems }
            } catch let exit as ExitCode {
                throw exit
            } catch {
                throw report(error)
            }
        }
    }
}

/// Reads organization folders for `orgs import`.
enum DemoImport {
    typealias Found = Result<(Organization, [Member], [Integration], [FixtureOrganizations.Document], [RiskException]),
                             FixtureOrganizations.Problem>

    static func organizations(in paths: [String]) throws -> [Found] {
        var found: [Found] = []
        for path in paths {
            let url = URL(fileURLWithPath: path).standardizedFileURL
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw PipelineError(.invalidInput, "no such folder: \(path)")
            }
            let folders: [URL]
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("organization.yml").path) {
                folders = [url]
            } else {
                folders = try FileManager.default.contentsOfDirectory(atPath: url.path).sorted()
                    .map { url.appendingPathComponent($0) }
                    .filter { FileManager.default.fileExists(atPath: $0.appendingPathComponent("organization.yml").path) }
                guard !folders.isEmpty else {
                    throw PipelineError(.invalidInput, "\(path) holds no organization.yml, nor folders that do")
                }
            }
            for folder in folders {
                let name = folder.lastPathComponent
                guard OrganizationID.isValid(name) else {
                    throw PipelineError(.invalidInput, "folder name \(quotedForMessage(name)) is not a valid organization id")
                }
                let id = try OrganizationID(name)
                let directory = FixtureOrganizations(root: folder.deletingLastPathComponent())
                do {
                    let organization = try directory.load(id)
                    var integrations: [Integration] = []
                    for (kind, settings) in organization.integrations.sorted(by: { $0.key < $1.key }) {
                        var settings = settings
                        if settings["recording"] != nil {
                            // Kept as a path, so that runs replay it from wherever the store is used.
                            settings["recording"] = try directory.recording(for: kind, of: organization)
                        }
                        integrations.append(Integration(kind: kind, settings: settings))
                    }
                    found.append(.success((Organization(id: id, name: organization.name, integrations: [:], timeZone: organization.timeZone),
                                           organization.members, integrations, try directory.documents(id),
                                           try directory.exceptions(id, createdAt: Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))))))
                } catch let problem as FixtureOrganizations.Problem {
                    found.append(.failure(problem))
                }
            }
        }
        return found
    }
}
