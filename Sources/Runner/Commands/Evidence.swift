import ArgumentParser
import Foundation
import Pipeline
import Stages
import Storage
import Transport

struct EvidenceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evidence",
        abstract: "Work with evidence directly.",
        subcommands: [Upload.self]
    )

    struct Upload: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Upload a file as evidence for some controls.",
            discussion: """
            The product's upload flow: the file is hashed, a presigned PUT is obtained for its place \
            {org}/evidence/{evidence_id}/original.{ext}, the file goes up through it, its size is \
            checked, and only then is the evidence recorded (with metadata.json beside it) and linked \
            to the controls. Uploading the same file again records nothing new.
            """
        )

        @Option(name: .long, help: "Organization id.")
        var org: String

        @Option(name: .long, help: ArgumentHelp("The file to upload.", valueName: "path"))
        var file: String

        @Option(name: .long, help: ArgumentHelp("Controls it supports, comma-separated (CC6.1,A.8.5).", valueName: "ids"))
        var controls: String

        @Option(name: .long, help: "Media type (default: from the file's extension).")
        var type: String?

        @Option(name: .long, help: "Who reviewed the document (a policy's owner, the access reviewer).")
        var reviewer: String?

        @Option(name: .long, help: "When it was reviewed: a date (2026-11-01; default today).")
        var reviewed: String?

        @Option(name: .long, help: "How long the review stays valid (default 365d): then the control it meets is not verified, as stale.")
        var validFor = "365d"

        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption
        @OptionGroup var locations: LocationOptions

        func validate() throws {
            _ = try actorOption.resolve()
            if controlList.isEmpty { throw ValidationError("--controls names no control") }
        }

        var controlList: [String] {
            controls.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }

        func run() async throws {
            do {
                let organizationID = try OrganizationID(org)
                let known = Set(try CatalogFiles.load(locations.pipelines).frameworks.values.flatMap { $0.controls.map(\.id) })
                if let unknown = controlList.first(where: { !known.contains($0) }) {
                    let hint = closest(unknown, in: Array(known)).map { "; did you mean '\($0)'?" } ?? ""
                    throw PipelineError(.invalidInput, "unknown control '\(unknown)'\(hint) (the catalog's controls: pipeline controls list)")
                }
                let context = try await AuthorizedContext(org: org, backends: backends, actorOption: actorOption,
                                                          permission: .runPipeline, what: "upload evidence")
                let (actor, store) = (context.actor, context.store)
                let objects = try await backends.openObjects()

                let source = URL(fileURLWithPath: file)
                let now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
                guard let validity = parseDuration(validFor), validity > .zero else {
                    throw PipelineError(.invalidInput, "--valid-for \(quotedForMessage(validFor)) is not a duration (365d, 90d)")
                }
                var reviewedAt = now
                if let reviewed {
                    guard let date = Timestamp.parse(reviewed), date <= now else {
                        throw PipelineError(.invalidInput, "--reviewed \(quotedForMessage(reviewed)) is not a date that has passed (2026-11-01)")
                    }
                    reviewedAt = date
                }
                if let reviewer, !Actor.isValidName(reviewer) {
                    throw PipelineError(.invalidInput, "--reviewer \(quotedForMessage(reviewer)) is not a valid name")
                }
                let evidence = try await UploadedEvidence.describe(file: source, organization: organizationID, mediaType: type,
                                                                   at: reviewedAt, freshFor: validity, reviewer: reviewer)
                let inserted = try await DocumentUpload.store(evidence, file: source, controls: controlList, store: store,
                                                              objects: objects, actor: actor, at: now)
                print("\(organizationID): evidence \(evidence.id) \(inserted == 0 ? "already stored" : "stored")")
                print("  file:     \(source.lastPathComponent) (\(evidence.size) bytes, sha256 \(evidence.sha256))")
                print("  controls: \(controlList.joined(separator: ", "))")
                print("  valid:    reviewed \(Timestamp.day(evidence.collectedAt))\(reviewer.map { " by \($0)" } ?? ""), until \(Timestamp.day(evidence.freshUntil))")
                print("  object:   \(objects.location(of: evidence.originalKey))")
            } catch {
                throw report(error)
            }
        }
    }
}

/// Stores an uploaded document as evidence: the object first (durable), then its row and its links
/// to controls, in a run of its own (`evidence-upload`), failed if anything fails.
enum DocumentUpload {
    @discardableResult
    /// `presigned`: the product's upload flow (a presigned PUT, then the size checked); otherwise
    /// the file is written as any object is (streamed, signed), as an import does.
    static func store(_ evidence: Evidence, file: URL, controls: [String], store: any EvidenceStore, objects: any ObjectStore,
                      actor: String, at now: Date, presigned: Bool = true) async throws -> Int {
        let run = RunRecord(id: UUID().uuidString.lowercased(), organizationID: evidence.organizationID,
                            pipeline: "evidence-upload", asOf: now, actor: actor)
        try await store.beginRun(run)
        do {
            if try await !objects.exists(evidence.originalKey) {
                if presigned {
                    try await objects.upload(evidence.originalKey, file: file, size: evidence.size, contentType: evidence.mediaType)
                } else {
                    _ = try await objects.put(evidence.originalKey, file: file, contentType: evidence.mediaType, ifAbsent: true)
                }
            }
            try await objects.put(evidence.metadataKey, data: evidence.canonicalJSON(), contentType: "application/json", ifAbsent: true)
            try await objects.sync()  // the objects are durable before the row that points at them
            let inserted = try await store.storeEvidence([evidence], run: run)
            try await store.linkEvidence(evidence.id, to: controls, organization: evidence.organizationID)
            try await store.finishRun(run, status: .succeeded, message: nil)
            return inserted
        } catch {
            try? await store.finishRun(run, status: .failed, message: "\(error)")
            throw error
        }
    }

    /// Uploads an imported organization's documents (its organization.yml's `documents:`).
    static func importDocuments(_ documents: [FixtureOrganizations.Document], of organization: OrganizationID,
                                store: any EvidenceStore, objects: any ObjectStore, actor: String) async throws {
        for document in documents {
            let evidence = try await UploadedEvidence.describe(file: document.file, organization: organization, mediaType: nil,
                                                               at: document.reviewed, freshFor: document.validFor, reviewer: document.reviewer)
            try await Self.store(evidence, file: document.file, controls: document.controls, store: store, objects: objects,
                                 actor: actor, at: document.reviewed, presigned: false)
        }
    }
}
