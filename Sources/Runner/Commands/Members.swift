import ArgumentParser
import Foundation
import Pipeline

struct Members: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List and manage an organization's members and their roles (owner, admin, member, viewer).",
        subcommands: [ListMembers.self, Add.self, Remove.self]
    )

    struct ListMembers: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List members and roles.")
        @Option(name: .long, help: "Organization id.") var org: String
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption

        func run() async throws {
            do {
                let context = try await AuthorizedContext(org: org, backends: backends, actorOption: actorOption,
                                                          permission: .manageMembers, what: "see members")
                for member in try await context.store.members(of: context.organization) {
                    print("\(member.role.rawValue)\t\(member.actor)")
                }
            } catch {
                throw report(error)
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a member, or change a member's role.")
        @Option(name: .long, help: "Organization id.") var org: String
        @Option(name: .long, help: "The member's actor id (an email).") var user: String
        @Option(name: .long, help: "owner, admin, member or viewer.") var role: String
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption

        func validate() throws {
            guard Role(rawValue: role) != nil else { throw ValidationError("--role must be owner, admin, member or viewer") }
            guard Actor.isValidName(user), user != Actor.systemName else { throw ValidationError("--user \(quotedForMessage(user)) is not a valid actor id") }
        }

        func run() async throws {
            do {
                let context = try await AuthorizedContext(org: org, backends: backends, actorOption: actorOption,
                                                          permission: .manageMembers, what: "manage members")
                try await context.store.setMember(Member(actor: user, role: Role(rawValue: role)!), in: context.organization,
                                                  actor: context.actor)
                print("\(context.organization): \(user) is \(role)")
            } catch {
                throw report(error)
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a member.")
        @Option(name: .long, help: "Organization id.") var org: String
        @Option(name: .long, help: "The member's actor id.") var user: String
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption

        func run() async throws {
            do {
                let context = try await AuthorizedContext(org: org, backends: backends, actorOption: actorOption,
                                                          permission: .manageMembers, what: "manage members")
                guard try await context.store.removeMember(user, from: context.organization, actor: context.actor) else {
                    throw PipelineError(.invalidInput, "\(quotedForMessage(user)) is not a member of \(context.organization)")
                }
                print("\(context.organization): \(user) removed")
            } catch {
                throw report(error)
            }
        }
    }
}
