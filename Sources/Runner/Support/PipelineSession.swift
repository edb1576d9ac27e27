import Foundation
import Logging
import Pipeline
import Reporting
import Stages
import Storage
import Transport

/// A definition loaded from the pipelines folder (or a path), with its diagnostics printed.
enum DefinitionLookup {
    /// The definition named (a file of `folder`, which must stay inside it) or given by path. A
    /// definition given by path is never echoed: its problems are printed without the offending
    /// line, as the file may be anything the caller can name.
    static func load(_ pipeline: String, folder pipelines: String, catalog: Catalog) throws -> (PipelineDefinition, source: String?) {
        let file: String
        var folder: String?
        let byPath = pipeline.contains("/") || pipeline.hasSuffix(".yml") || pipeline.hasSuffix(".yaml")
        if byPath {
            file = pipeline
        } else {
            guard isValidName(pipeline) else {
                throw PipelineError(.unknownPipeline, "pipeline name \(quotedForMessage(pipeline)) is not valid")
            }
            let candidates = ["yml", "yaml"].map { (pipelines as NSString).appendingPathComponent("\(pipeline).\($0)") }
            guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                let known = (try? DefinitionFiles.expand([pipelines]))?
                    .map { (($0 as NSString).lastPathComponent as NSString).deletingPathExtension } ?? []
                throw PipelineError(.unknownPipeline, "unknown pipeline '\(pipeline)': no \(candidates[0])"
                                    + (known.isEmpty ? "" : " (known: \(known.joined(separator: ", ")))"))
            }
            file = found
            folder = pipelines
        }
        let result = DefinitionLoader(vocabulary: BuiltIn.vocabulary(catalog)).load(file: file, within: folder)
        for diagnostic in result.diagnostics {
            StandardError.write((byPath ? diagnostic.description : diagnostic.rendered(source: result.source)) + "\n")
        }
        guard let definition = result.definition else {
            throw PipelineError(.invalidDefinition, "\(file) has errors; nothing was run")
        }
        return (definition, result.source)
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64
            && name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || $0 == "-" || $0 == "_" }
    }
}

/// One pipeline ready to run for organizations: the definition with its catalog, the stages wired
/// to the store, the object store and the integrations, and the scratch folder. `pipeline run`
/// makes one; a worker makes one per pipeline its jobs name.
struct PipelineSession: Sendable {
    let definition: PipelineDefinition
    let executor: PipelineExecutor
    let store: any EvidenceStore
    let objects: any ObjectStore
    let scratch: Scratch
    let logger: Logger
    let linkLifetime: Duration

    /// A definition and the catalog beside it, checked before anything is opened.
    struct Loaded: Sendable {
        let definition: PipelineDefinition
        let catalog: Catalog
        let provenance: Provenance

        static func load(_ pipeline: String, folder: String) throws -> Loaded {
            // The checks and frameworks: data beside the definitions, checked before anything runs.
            let (catalog, catalogFiles) = try CatalogFiles.loadWithDigests(folder)
            let (definition, source) = try DefinitionLookup.load(pipeline, folder: folder, catalog: catalog)
            return Loaded(definition: definition, catalog: catalog,
                          provenance: try CatalogFiles.provenance(catalog, files: catalogFiles, definition: definition,
                                                                  source: source, folder: folder))
        }
    }

    static func open(_ loaded: Loaded, store: any EvidenceStore, objects: any ObjectStore, scratch: Scratch,
                     backends: BackendOptions, linkLifetime: Duration, logger: Logger) throws -> PipelineSession {
        let definition = loaded.definition
        let integrations = IntegrationTransports(store: store, backends: backends, answers: objects, declared: definition.httpSources)
        let stages = StageSet(
            collectors: BuiltIn.collectors + definition.httpSources.map { HTTPSourceCollector($0) },
            transport: { source, organization in try await integrations.transport(for: source, of: organization) },
            validator: CheckValidator(catalog: loaded.catalog), scorer: ControlScorer(catalog: loaded.catalog),
            renderer: BundleRenderer(signingKey: definition.render?.outputs.contains(.bundle) == true
                                        ? try backends.signingKey(creating: true) : nil),
            notifier: definition.notify == nil ? nil : CurlNotifier())
        return PipelineSession(definition: definition,
                               executor: PipelineExecutor(definition: definition, stages: stages, catalog: loaded.catalog,
                                                          provenance: loaded.provenance),
                               store: store, objects: objects, scratch: scratch, logger: logger, linkLifetime: linkLifetime)
    }

    /// Runs the pipeline for one organization as `actor`, after checking the actor may, and
    /// marking runs that dead processes left running as abandoned. Makes a download link for the
    /// bundle where the storage can (S3), and audits the share.
    func run(_ organization: Organization, id: String, clock: Date, actor: String,
             progress: @escaping @Sendable (ProgressEvent) -> Void = { _ in }, logger: Logger? = nil) async throws -> RunOutcome {
        let logger = logger ?? self.logger
        let record = RunRecord(id: id, organizationID: organization.id, pipeline: definition.name, asOf: clock, actor: actor)
        try await Authorization.require(.runPipeline, actor: actor, organization: organization.id, what: "run pipelines", store: store)
        if definition.render != nil {
            try await Authorization.require(.createExport, actor: actor, organization: organization.id, what: "create exports", store: store)
        }
        for id in try await AbandonedRuns.sweep(store, organization: organization.id) {
            logger.notice("an earlier run was left running by a process that is gone; marked abandoned",
                          metadata: ["org.id": "\(organization.id)", "run.id": "\(id)"])
        }
        let started = ContinuousClock.now
        let outcome: RunOutcome
        do {
            outcome = try await scratch.withFolder { folder in
                try await executor.run(RunContext(run: record, organization: organization, logger: logger, store: store,
                                                  objects: objects, scratch: folder, progress: progress))
            }
        } catch {
            RunMetrics.failed(pipeline: definition.name, duration: ContinuousClock.now - started)
            throw error
        }
        RunMetrics.run(outcome, duration: ContinuousClock.now - started)
        var links: [String: URL] = [:]
        for artifact in outcome.export?.artifacts ?? [] where artifact.kind == .bundle {
            guard let link = try objects.shareableLink(for: artifact.key, expires: linkLifetime) else { continue }
            links[artifact.key] = link
            try await store.audit(AuditEntry(organizationID: outcome.run.organizationID, actor: outcome.run.actor,
                                             action: "export.shared", entityType: "export",
                                             entityID: outcome.export?.id ?? artifact.key,
                                             detail: "presigned link for \(linkLifetime.formattedForHumans)"))
        }
        return outcome.withLinks(links)
    }

    /// The scratch folder, sweeping what killed runs left in it and in storage.
    static func openScratch(backends: BackendOptions, objects: any ObjectStore, logger: Logger) async throws -> Scratch {
        try backends.ensureDataRoot()
        let (scratch, sweptScratch) = try await Scratch.open(in: backends.dataRoot)
        let sweptObjects: (files: Int, bytes: Int64)
        do {
            sweptObjects = try await objects.sweep()
        } catch {
            // Sweeping is housekeeping: a storage role without the right to list uploads still runs.
            logger.warning("could not sweep what killed runs left in storage", metadata: ["error": "\(error)"])
            sweptObjects = (0, 0)
        }
        if sweptScratch.files + sweptObjects.files > 0 {
            logger.notice("removed what killed runs left behind", metadata: [
                "files": "\(sweptScratch.files + sweptObjects.files)", "bytes": "\(sweptScratch.bytes + sweptObjects.bytes)"])
        }
        return scratch
    }
}
