import Cryptography
import Foundation
import Pipeline

/// Renders a run into a PDF report and a zip bundle for auditors, both stored under
/// `{organization_id}/exports/`. The export id is derived from the bundle's manifest, so the same
/// evidence and run clock give the same export, byte for byte.
public struct BundleRenderer: ReportRenderer {
    let frameworkTitle: @Sendable (String) -> String

    public init(frameworkTitle: @escaping @Sendable (String) -> String = { $0 }) {
        self.frameworkTitle = frameworkTitle
    }

    public func render(_ input: ReportInput, options: RenderOptions) async throws -> RenderedExport {
        try await withCheckedThrowingContinuation { continuation in
            // cairo and libarchive calls block: keep them off the cooperative pool.
            DispatchQueue.global().async {
                continuation.resume(with: Result { try renderNow(input, options: options) })
            }
        }
    }

    func renderNow(_ input: ReportInput, options: RenderOptions) throws -> RenderedExport {
        let pdf = try PDFReport(input: input, options: options, frameworkTitle: frameworkTitle).render()
        var files: [(String, Data)] = [("report.pdf", pdf)]
        let metadataEncoder = JSONEncoder.canonical
        var seen = Set<String>()
        for evidence in input.evidence where seen.insert(evidence.id).inserted {
            files.append(("evidence/\(evidence.id)/original.\(evidence.fileExtension)", evidence.body))
            files.append(("evidence/\(evidence.id)/metadata.json", try metadataEncoder.encode(evidence.metadata)))
        }
        files.append(("results.json", try metadataEncoder.encode(ResultsDocument(input: input))))
        files.append(("README.txt", Data(readme(input).utf8)))
        let manifest = BundleManifest(input: input, files: files)
        let manifestData = try manifest.json()
        let sums = manifest.sha256sums(including: [("manifest.json", manifestData)])
        files.append(("manifest.json", manifestData))
        files.append(("SHA256SUMS", sums))

        let exportID = "exp-" + String(Digest.sha256Hex(manifestData).prefix(24))
        let zip = try ZipWriter(modified: input.asOf)
        for (path, data) in files.sorted(by: { $0.0 < $1.0 }) {
            try zip.add(path: path, data: data)
        }
        let bundle = try zip.finish()
        let org = input.organization.id
        var out: [RenderedExport.File] = []
        if options.outputs.contains(.pdf) {
            out.append(.init(kind: .pdf, key: "\(org)/exports/\(exportID).pdf", data: pdf,
                             contentType: "application/pdf", sha256: Digest.sha256Hex(pdf)))
        }
        if options.outputs.contains(.bundle) {
            out.append(.init(kind: .bundle, key: "\(org)/exports/\(exportID).zip", data: bundle,
                             contentType: "application/zip", sha256: Digest.sha256Hex(bundle)))
        }
        return RenderedExport(id: exportID, files: out)
    }

    func readme(_ input: ReportInput) -> String {
        """
        Lightsail evidence bundle
        =========================

        Organization: \(input.organization.name) (\(input.organization.id))
        Pipeline:     \(input.pipeline)
        Evidence as of \(Timestamp.iso8601(input.asOf)); period from \(Timestamp.day(input.periodStart)).

        Contents
          report.pdf                         the compliance report
          results.json                       every check result, control status and score
          evidence/<id>/original.<ext>       each piece of evidence exactly as the API answered
          evidence/<id>/metadata.json        where it came from, when, and its SHA-256
          manifest.json                      every file above with its SHA-256 and size
          SHA256SUMS                         the same hashes, for sha256sum

        Checking the bundle needs nothing but standard tools. In the unzipped folder:

          sha256sum -c SHA256SUMS

        Every line must say OK. Each evidence id is the SHA-256 of the evidence's identity
        (organization, source, operation, resource, request, status and content hash); the
        `sha256` in metadata.json is the hash of original.<ext>:

          sha256sum evidence/<id>/original.*

        """
    }
}

/// `results.json`: what the report says, for machines.
struct ResultsDocument: Encodable {
    let organizationID: String
    let asOf: Date
    let overall: String
    let scores: [FrameworkScore]
    let checks: [CheckResult]
    let notCollected: [CollectionFailure]

    init(input: ReportInput) {
        organizationID = input.organization.id.rawValue
        asOf = input.asOf
        overall = input.scores.percentText
        scores = input.scores.frameworks
        checks = input.results
        notCollected = input.failures.sorted { ($0.operation, $0.resource, $0.reason) < ($1.operation, $1.resource, $1.reason) }
    }

    enum CodingKeys: String, CodingKey {
        case overall, scores, checks
        case organizationID = "organization_id"
        case asOf = "as_of"
        case notCollected = "not_collected"
    }
}
