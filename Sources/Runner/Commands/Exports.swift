import ArgumentParser
import Foundation
import Pipeline

struct Exports: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exports",
        abstract: "An organization's exports: list them with their hashes and shares, share one with an auditor.",
        discussion: "`pipeline export share` is the same as `pipeline exports share`.",
        subcommands: [ListExports.self, ShareExport.self],
        aliases: ["export"])

    struct ListExports: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "Exports, newest first, with the bundle's and the manifest's SHA-256 and who they were shared with.")
        enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

        @Option(name: .long, help: "Organization id.") var org: String
        @Option(name: .long, help: "At most this many exports.") var limit = 50
        @Option(name: .long, help: "Output format: text or json.") var format: Format = .text
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption

        func validate() throws {
            guard (1...10_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 10000") }
        }

        func run() async throws {
            do {
                let context = try await AuthorizedContext(org: org, backends: backends, actorOption: actorOption,
                                                          permission: .readReports, what: "see exports")
                let exports = try await context.store.exports(of: context.organization, before: nil, limit: limit)
                let shares = Dictionary(grouping: try await context.store.auditLog(of: context.organization)
                    .filter { $0.action == "export.shared" }, by: \.entityID)
                switch format {
                case .json:
                    let rows: [[String: JSONValue]] = exports.map { export in
                        var row: [String: JSONValue] = [
                            "id": .string(export.id), "run_id": .string(export.runID), "pipeline": .string(export.pipeline),
                            "as_of": .string(Timestamp.iso8601(export.asOf)), "created_at": .string(Timestamp.iso8601(export.createdAt)),
                            "artifacts": .array(export.artifacts.map { artifact in
                                .object(["kind": .string(artifact.kind.rawValue), "key": .string(artifact.key),
                                         "sha256": .string(artifact.sha256), "size": .number(Double(artifact.size))])
                            }),
                        ]
                        row["shares"] = .array((shares[export.id] ?? []).map { entry in
                            .object(["by": .string(entry.actor), "detail": .string(entry.detail)])
                        })
                        return row
                    }
                    var out: [UInt8] = []
                    try JSONValue.object(["exports": .array(rows.map(JSONValue.object))]).writeCanonical { out += $0 }
                    print(String(decoding: out, as: UTF8.self), terminator: "")
                case .text:
                    if exports.isEmpty { print("no exports for \(context.organization)") }
                    for export in exports {
                        print("\(export.id)\t\(export.pipeline)\tas of \(Timestamp.iso8601(export.asOf))\tmade \(Timestamp.iso8601(export.createdAt))")
                        for artifact in export.artifacts {
                            print("  \(artifact.kind.rawValue)\t\(artifact.sha256)\t\(artifact.size) bytes\t\(artifact.key)")
                        }
                        for share in shares[export.id] ?? [] { print("  shared by \(share.actor): \(share.detail)") }
                    }
                }
            } catch {
                throw report(error)
            }
        }
    }

    struct ShareExport: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "share",
            abstract: "Print a presigned download link for an export's bundle, and record the share in the audit log.",
            discussion: """
            Needs a role that manages reports (admin, owner) and S3-compatible storage: the embedded \
            default's directory has no links to give. A link lasts at most 7 days (SigV4's limit). \
            The audit log records who shared which export with whom, until when.
            """)
        @Option(name: .long, help: "Organization id.") var org: String
        @Option(name: .long, help: "The export's id (exp-…; `pipeline exports list` shows them).") var export: String
        @Option(name: .long, help: "How long the link works: 1s to 7d.") var expires = "7d"
        @Option(name: .long, help: "Who it is for (an email address), for the audit log.") var to: String
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption

        func validate() throws {
            guard let lifetime = parseDuration(expires), lifetime >= .seconds(1), lifetime <= .seconds(604_800) else {
                throw ValidationError("--expires '\(expires)' must be a duration from 1s to 7d")
            }
            let parts = to.split(separator: "@", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), to.count <= 254, Actor.isValidName(to) else {
                throw ValidationError("--to \(quotedForMessage(to)) is not an email address")
            }
            guard export.hasPrefix("exp-"), export.count <= 64, export.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
                throw ValidationError("--export \(quotedForMessage(export)) is not an export id (exp-…)")
            }
        }

        func run() async throws {
            do {
                let context = try await AuthorizedContext(org: org, backends: backends, actorOption: actorOption,
                                                          permission: .manageReports, what: "share exports")
                guard let found = try await context.store.exports(of: context.organization, before: nil, id: export, limit: 1).first else {
                    throw PipelineError(.invalidInput, "\(context.organization) has no export \(export) (see `pipeline exports list --org \(context.organization)`)")
                }
                guard let bundle = found.artifacts.first(where: { $0.kind == .bundle }) else {
                    throw PipelineError(.invalidInput, "export \(export) has no bundle to share (its pipeline renders a PDF only)")
                }
                // The key comes from a row: it must still be the organization's before a link to it exists.
                try validateObjectKey(bundle.key, organization: context.organization)
                let objects = try await backends.openObjects()
                let lifetime = parseDuration(expires)!
                guard let link = try objects.shareableLink(for: bundle.key, expires: lifetime) else {
                    throw PipelineError(.configuration, "the \(objects.backend) storage has no download links to give: share \(objects.location(of: bundle.key)) by other means, or use S3 storage (--storage s3://…)")
                }
                guard try await objects.exists(bundle.key) else {
                    throw PipelineError(.storage, "the bundle of \(export) is not in storage (\(bundle.key)): nothing to share")
                }
                let until = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + Double(lifetime.components.seconds)).rounded(.down))
                try await context.store.audit(AuditEntry(organizationID: context.organization, actor: context.actor, action: "export.shared",
                                                         entityType: "export", entityID: export,
                                                         detail: "with \(to) until \(Timestamp.iso8601(until)) (bundle sha256 \(bundle.sha256))"))
                print(link.absoluteString)
                StandardError.write("shared \(export) with \(to) until \(Timestamp.iso8601(until)); recorded in the audit log\n")
            } catch {
                throw report(error)
            }
        }
    }
}
