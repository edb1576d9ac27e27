import ArgumentParser
import Foundation
import Pipeline

/// Risk acceptances: a check (or one resource of it) accepted as failing, by an approver, for a
/// reason, until a date. Audited; adding and removing need a role that manages controls.
struct Exceptions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Accept a failing check as a risk (for a while), list or remove such exceptions.",
        subcommands: [AddException.self, ListExceptions.self, RemoveException.self]
    )

    /// Risk acceptances are reviewed at least yearly.
    static let longest: TimeInterval = 366 * 86_400

    struct AddException: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Accept a check's failure as a risk until a date.",
            discussion: """
            With --resource, only that resource (as the check's findings name it: acme-corp/web, \
            arn:aws:s3:::logs) is accepted; the check still fails on any other. The approver must be a \
            member allowed to manage controls (an admin or owner). An exception lasts at most 366 days; \
            once expired it stops applying and the result says so.
            """)
        @Option(name: .long, help: "Organization id.") var org: String
        @Option(name: .customLong("check"), help: "The check's id (pipeline controls list).") var checkID: String
        @Option(name: .long, help: "Only this resource of the check.") var resource: String?
        @Option(name: .long, help: "Who approved the risk (a member who manages controls).") var approver: String
        @Option(name: .long, help: "Why the risk is accepted.") var justification: String
        @Option(name: .long, help: "Until when: a date (2027-03-31) or a duration from now (90d).") var expires: String
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption
        @OptionGroup var locations: LocationOptions

        func run() async throws {
            do {
                let catalog = try CatalogFiles.load(locations.pipelines)
                guard catalog.check(checkID) != nil else {
                    let hint = closest(checkID, in: catalog.checks.map(\.id)).map { "; did you mean '\($0)'?" } ?? ""
                    throw PipelineError(.invalidInput, "no check \(quotedForMessage(checkID)) in the catalog\(hint)")
                }
                let text = justification.trimmingCharacters(in: .whitespacesAndNewlines)
                guard (10...2000).contains(text.count) else {
                    throw PipelineError(.invalidInput, "--justification must say why, in 10 to 2000 characters")
                }
                if let resource, resource.isEmpty || resource.count > 512 || resource.contains(where: \.isNewline) {
                    throw PipelineError(.invalidInput, "--resource must be one line of at most 512 characters")
                }
                let now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
                let until: Date
                if let duration = parseDuration(expires) {
                    until = now.addingTimeInterval(Double(duration.components.seconds))
                } else if let date = Timestamp.parse(expires) {
                    until = date
                } else {
                    throw PipelineError(.invalidInput, "--expires \(quotedForMessage(expires)) is not a date (2027-03-31) or a duration (90d)")
                }
                guard until > now else { throw PipelineError(.invalidInput, "--expires \(expires) is not in the future") }
                guard until.timeIntervalSince(now) <= Exceptions.longest else {
                    throw PipelineError(.invalidInput, "an exception lasts at most 366 days (until \(Timestamp.day(now.addingTimeInterval(Exceptions.longest)))): review it again then")
                }
                let context = try await AuthorizedContext(org: org, backends: backends, actorOption: actorOption,
                                                          permission: .manageExceptions, what: "manage exceptions")
                guard let role = try await context.store.role(of: approver, in: context.organization),
                      PermissionMatrix.allows(role, .manageExceptions) else {
                    throw PipelineError(.invalidInput, "\(quotedForMessage(approver)) cannot approve a risk in \(context.organization): the approver must be a member who manages controls (an admin or owner)")
                }
                let exception = RiskException(id: RiskException.newID(), checkID: checkID, resource: resource, approver: approver,
                                              justification: text, expires: until, createdBy: context.actor, createdAt: now)
                try await context.store.addException(exception, to: context.organization, actor: context.actor)
                print("\(context.organization): \(exception.id) accepts \(checkID)\(resource.map { " for \($0)" } ?? "") until \(Timestamp.iso8601(until)), approved by \(approver)")
            } catch {
                throw report(error)
            }
        }
    }

    struct ListExceptions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List an organization's exceptions.")
        @Option(name: .long, help: "Organization id.") var org: String
        @Option(name: .long, help: "Output format: text or json.") var format: Controls.Format = .text
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption

        func run() async throws {
            do {
                let context = try await AuthorizedContext(org: org, backends: backends, actorOption: actorOption,
                                                          permission: .readControls, what: "see exceptions")
                let now = Date()
                let list = try await context.store.exceptions(of: context.organization)
                if format == .json {
                    let encoder = JSONEncoder()
                    encoder.dateEncodingStrategy = .custom { date, encoder in
                        var container = encoder.singleValueContainer()
                        try container.encode(Timestamp.iso8601(date))
                    }
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                    print(String(decoding: try encoder.encode(list), as: UTF8.self))
                    return
                }
                if list.isEmpty { print("\(context.organization): no exceptions") }
                for item in list {
                    let state = item.expires > now ? "until \(Timestamp.iso8601(item.expires))" : "EXPIRED \(Timestamp.iso8601(item.expires))"
                    print("\(item.id)\t\(item.checkID)\t\(item.resource ?? "*")\t\(state)\tapproved by \(item.approver)\t\(item.justification)")
                }
            } catch {
                throw report(error)
            }
        }
    }

    struct RemoveException: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "remove", abstract: "Withdraw an exception.")
        @Option(name: .long, help: "Organization id.") var org: String
        @Option(name: .long, help: "The exception's id (exc-…).") var id: String
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption

        func run() async throws {
            do {
                let context = try await AuthorizedContext(org: org, backends: backends, actorOption: actorOption,
                                                          permission: .manageExceptions, what: "manage exceptions")
                guard try await context.store.removeException(id, from: context.organization, actor: context.actor) else {
                    throw PipelineError(.invalidInput, "\(context.organization) has no exception \(quotedForMessage(id))")
                }
                print("\(context.organization): \(id) removed")
            } catch {
                throw report(error)
            }
        }
    }
}
