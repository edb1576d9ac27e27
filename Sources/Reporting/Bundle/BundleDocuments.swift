import Cryptography
import Foundation
import Pipeline

/// The bundle's documents beside the report and the evidence: `controls.csv` for spreadsheets,
/// `assessment-results.json` (OSCAL 1.1) for GRC tools, and `VERIFY.md` for the auditor.
enum BundleDocuments {
    // MARK: controls.csv

    /// One row per check: its criteria, status, severity, the resources it names, and why (RFC 4180).
    static func controlsCSV(_ input: ReportInput) -> Data {
        var out = "check,title,severity,status,criteria,resources,reason,evidence\r\n"
        for result in input.results {
            let severity = input.context.checks[result.checkID]?.severity.rawValue ?? ""
            let criteria = result.controls.map { "\($0.framework) \($0.id)" }.joined(separator: "; ")
            let cells = [result.checkID, result.title, severity, result.status.rawValue, criteria,
                         result.findings.joined(separator: "\n"), result.reason, "\(result.evidenceIDs.count)"]
            out += cells.map(csvCell).joined(separator: ",") + "\r\n"
        }
        return Data(out.utf8)
    }

    /// Quoted when it must be; a cell a spreadsheet would take for a formula (`=`, `+`, `-`, `@`,
    /// a tab or carriage return first) is prefixed with `'`, as OWASP advises: resource names come
    /// from customers' systems.
    static func csvCell(_ text: String) -> String {
        var cell = text
        if let first = cell.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) { cell = "'" + cell }
        guard cell.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return cell }
        return "\"" + cell.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    // MARK: OSCAL assessment results

    /// The run as an OSCAL 1.1 assessment-results document: one result per framework, an
    /// observation per check (its evidence as relevant evidence in the bundle), a finding per
    /// evaluated criterion. UUIDs are name-based (v5) on the organization, run clock and names, so
    /// the same run gives the same document.
    static func oscal(_ input: ReportInput) throws -> Data {
        let namespace = UUID(uuidString: "6ba7b811-9dad-11d1-80b4-00c04fd430c8")!  // RFC 9562's URL namespace
        let base = "https://lightsail.example/\(input.organization.id)/\(input.pipeline)/\(Timestamp.iso8601(input.asOf))"
        func uuid(_ name: String) throws -> JSONValue {
            .string(try Digest.uuidV5(namespace: namespace, name: base + "/" + name).uuidString.lowercased())
        }
        let asOf = JSONValue.string(Timestamp.iso8601(input.asOf))
        func prop(_ name: String, _ value: String) -> JSONValue {
            .object(["name": .string(name), "value": .string(value), "ns": .string("https://lightsail.example/ns/oscal")])
        }
        let resultsByCheck = Dictionary(input.results.map { ($0.checkID, $0) }, uniquingKeysWith: { a, _ in a })
        let evidenceByID = Dictionary(input.evidence.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var results: [JSONValue] = []
        for score in input.scores.frameworks {
            var observations: [JSONValue] = []
            var observed = Set<String>()
            var findings: [JSONValue] = []
            var reviewed: [JSONValue] = []
            for control in score.controls where control.status != .notApplicable {
                reviewed.append(.object(["control-id": .string(control.control.id)]))
                var related: [JSONValue] = []
                for checkID in control.checkIDs {
                    guard let result = resultsByCheck[checkID] else { continue }
                    let observation = try uuid("\(score.framework)/observation/\(checkID)")
                    related.append(.object(["observation-uuid": observation]))
                    guard observed.insert(checkID).inserted else { continue }
                    var fields: [String: JSONValue] = [
                        "uuid": observation,
                        "title": .string(result.title),
                        "description": .string(result.reason.isEmpty ? "Passed." : result.reason),
                        "methods": .array([.string("TEST")]),
                        "types": .array([.string(result.status == .fail ? "finding" : "control-objective")]),
                        "collected": asOf,
                        "props": .array([prop("check-id", checkID), prop("status", result.status.rawValue)]),
                    ]
                    if !result.findings.isEmpty { fields["remarks"] = .string(result.findings.joined(separator: "\n")) }
                    let evidence = result.evidenceIDs.compactMap { evidenceByID[$0] }
                    if !evidence.isEmpty {
                        fields["relevant-evidence"] = .array(evidence.map { item in
                            .object(["href": .string("evidence/\(item.id)/original.\(item.fileExtension)"),
                                     "description": .string("\(item.source) \(item.operation) \(item.resource), collected \(Timestamp.iso8601(item.collectedAt)), SHA-256 \(item.sha256)")])
                        })
                    }
                    observations.append(.object(fields))
                }
                let satisfied = control.status == .pass
                var status: [String: JSONValue] = ["state": .string(satisfied ? "satisfied" : "not-satisfied"),
                                                   "reason": .string(control.status == .pass ? "pass" : control.status == .fail ? "fail" : "other")]
                if control.status != .pass, control.status != .fail { status["remarks"] = .string(control.status.rawValue.replacingOccurrences(of: "_", with: " ")) }
                var finding: [String: JSONValue] = [
                    "uuid": try uuid("\(score.framework)/finding/\(control.control.id)"),
                    "title": .string("\(control.control.id) \(control.title)"),
                    "description": .string("\(score.title) \(control.control.id): \(control.status.rawValue.replacingOccurrences(of: "_", with: " ")) (checks: \(control.checkIDs.joined(separator: ", ")))."),
                    "target": .object(["type": .string("objective-id"), "target-id": .string(control.control.id),
                                       "status": .object(status)]),
                ]
                if !related.isEmpty { finding["related-observations"] = .array(related) }
                findings.append(.object(finding))
            }
            var result: [String: JSONValue] = [
                "uuid": try uuid("\(score.framework)/result"),
                "title": .string(score.title),
                "description": .string("Automated assessment of \(input.organization.name) against \(score.title): score \(score.percentText) (\(score.passed) passed, \(score.failed) failed, \(score.notVerified) not verified)."),
                "start": .string(Timestamp.iso8601(input.periodStart)),
                "end": asOf,
                "props": .array([prop("framework", score.framework), prop("score", score.percentText)]),
                "reviewed-controls": .object(["control-selections": .array([
                    reviewed.isEmpty ? .object(["include-all": .object([:])]) : .object(["include-controls": .array(reviewed)])])]),
            ]
            if !observations.isEmpty { result["observations"] = .array(observations) }
            if !findings.isEmpty { result["findings"] = .array(findings) }
            results.append(.object(result))
        }
        let provenance = input.context.provenance
        let document = JSONValue.object(["assessment-results": .object([
            "uuid": try uuid("assessment-results"),
            "metadata": .object([
                "title": .string("Assessment results: \(input.organization.name), \(input.pipeline)"),
                "last-modified": asOf,
                "version": .string(Timestamp.iso8601(input.asOf)),
                "oscal-version": .string("1.1.2"),
                "props": .array([prop("generator", provenance.generator), prop("organization-id", input.organization.id.rawValue)]),
                "remarks": .string("Made by \(provenance.generator). The assessment plan is the pipeline definition and the catalog named, with their SHA-256, in manifest.json."),
            ]),
            "import-ap": .object(["href": .string("manifest.json")]),
            "results": .array(results),
        ])])
        var out: [UInt8] = []
        try document.writeCanonical { out += $0 }
        return Data(out)
    }

    // MARK: VERIFY.md

    static func verify(_ input: ReportInput, signer: PublicSigningKey?) -> Data {
        let previous = input.context.previousExport
        var text = """
        # Checking this bundle

        Everything below needs only `sha256sum` and `openssl` (1.1.1 or later), or `pipeline bundle
        verify` (which does all of it and names any file changed, added or removed). Unzip the
        bundle into an empty folder and run the commands there.

        ## 1. Every file is the one the manifest lists

            sha256sum -c SHA256SUMS

        Every line must end in `OK`. `SHA256SUMS` lists each file of `manifest.json` and the
        manifest itself. Also check that nothing was added: the files present must be exactly those
        listed, plus `SHA256SUMS` and `manifest.json.sig`:

            find . -type f ! -name SHA256SUMS ! -name manifest.json.sig | sed 's|^\\./||' | sort > present
            cut -c67- SHA256SUMS | sort | diff - present && echo "no file added or removed"

        ## 2. The manifest is the one Lightsail signed

        A changed file with `SHA256SUMS` recomputed passes step 1; the signature catches it, because
        the manifest lists every hash and only the organization's key can sign it. Get the public
        key from the organization (`pipeline keys export-public` prints it) over a channel you trust,
        save it as `lightsail.pem`, and check:

            openssl pkey -pubin -in lightsail.pem -outform DER | tail -c 32 | sha256sum | cut -c1-32
            openssl pkeyutl -verify -pubin -inkey lightsail.pem -rawin -in manifest.json -sigfile manifest.json.sig

        The first prints the key's fingerprint: it must equal the manifest's `signer` without its
        `ed25519:` prefix\(signer.map { " (`\($0.fingerprint)` for this bundle)" } ?? ""). The second must
        say `Signature Verified Successfully`.

        ## 3. The bundle follows the organization's previous export

        `previous` in the manifest names the export before this one and the SHA-256 of its
        `manifest.json`\(previous.map { " (`\($0.id)`, `\($0.manifestSHA256)`)" } ?? " (this bundle is the first: `null`)").
        With the previous bundle unzipped in `../previous`:

            sha256sum ../previous/manifest.json

        must print that hash. Each export's id is `exp-` and the first 24 hex digits of its
        manifest's SHA-256, so the chain can be walked back export by export, as CloudTrail digest
        files are.

        ## 4. What the files mean

        - `report.pdf`: the compliance report; `report.txt` its text, one paragraph or table row a line.
        - `results.json`: every check's result, each criterion's status and the scores.
        - `controls.csv`: one row per check with its criteria, status and the resources it names.
        - `assessment-results.json`: the same results as an OSCAL 1.1 assessment-results document.
        - `evidence/<id>/original.<ext>`: each piece of evidence exactly as the API answered;
          `metadata.json` beside it says where it came from and when. The manifest's `evidence`
          lists each item's source, operation, resource, `collected_at`, `fresh_until` and hash.
        - `manifest.json`: what made the bundle (`generator`, the pipeline `definition` and the
          `catalog` of checks with their SHA-256, `frameworks` with their versions), every file
          with its SHA-256 and size, and the link to the previous export.

        In the definitions folder the bundle was made from, the catalog's hash is

            sha256sum checks/*.yml frameworks/*.yml | sha256sum

        and must equal `catalog.sha256` in the manifest.

        """
        text += "\n"
        return Data(text.utf8)
    }
}
