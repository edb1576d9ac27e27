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
    /// the same run gives the same document. Written observation by observation: a check over
    /// thousands of repositories lists thousands of evidence items.
    static func writeOSCAL(_ input: ReportInput, positions: [String: Int], _ piece: ([UInt8]) throws -> Void) throws {
        let namespace = UUID(uuidString: "6ba7b811-9dad-11d1-80b4-00c04fd430c8")!  // RFC 9562's URL namespace
        let base = "https://lightsail.example/\(input.organization.id)/\(input.pipeline)/\(Timestamp.iso8601(input.asOf))"
        func uuid(_ name: String) throws -> JSONValue {
            .string(try Digest.uuidV5(namespace: namespace, name: base + "/" + name).uuidString.lowercased())
        }
        let asOf = JSONValue.string(Timestamp.iso8601(input.asOf))
        func prop(_ name: String, _ value: String) -> JSONValue {
            .object(["name": .string(name), "value": .string(value), "ns": .string("https://lightsail.example/ns/oscal")])
        }
        func words(_ status: CheckStatus) -> String { status.rawValue.replacingOccurrences(of: "_", with: " ") }
        let resultsByCheck = Dictionary(input.results.map { ($0.checkID, $0) }, uniquingKeysWith: { a, _ in a })
        let provenance = input.context.provenance
        try withoutActuallyEscaping(piece) { piece in
            var json = JSONStream(piece)
            json.beginObject()
            json.key("assessment-results")
            json.beginObject()
            try json.member("import-ap", .object(["href": .string("manifest.json")]))
            try json.member("metadata", .object([
                "title": .string("Assessment results: \(input.organization.name), \(input.pipeline)"),
                "last-modified": asOf,
                "version": .string(Timestamp.iso8601(input.asOf)),
                "oscal-version": .string("1.1.2"),
                "props": .array([prop("generator", provenance.generator), prop("organization-id", input.organization.id.rawValue)]),
                "remarks": .string("Made by \(provenance.generator). The assessment plan is the pipeline definition and the catalog named, with their SHA-256, in manifest.json."),
            ]))
            json.key("results")
            json.beginArray()
            for score in input.scores.frameworks {
                let assessed = score.controls.filter { $0.status != .notApplicable }
                var checks: [CheckResult] = []
                var seen = Set<String>()
                for control in assessed {
                    for id in control.checkIDs where seen.insert(id).inserted { if let result = resultsByCheck[id] { checks.append(result) } }
                }
                json.beginObject()
                try json.member("description", .string("Automated assessment of \(input.organization.name) against \(score.title): score \(score.percentText) (\(score.passed) passed, \(score.failed) failed, \(score.notVerified) not verified)."))
                try json.member("end", asOf)
                if !assessed.isEmpty {
                    json.key("findings")
                    json.beginArray()
                    for control in assessed {
                        var status: [String: JSONValue] = ["state": .string(control.status == .pass ? "satisfied" : "not-satisfied"),
                                                           "reason": .string(control.status == .pass ? "pass" : control.status == .fail ? "fail" : "other")]
                        if control.status != .pass, control.status != .fail { status["remarks"] = .string(words(control.status)) }
                        var finding: [String: JSONValue] = [
                            "uuid": try uuid("\(score.framework)/finding/\(control.control.id)"),
                            "title": .string("\(control.control.id) \(control.title)"),
                            "description": .string("\(score.title) \(control.control.id): \(words(control.status)) (checks: \(control.checkIDs.joined(separator: ", ")))."),
                            "target": .object(["type": .string("objective-id"), "target-id": .string(control.control.id),
                                               "status": .object(status)]),
                        ]
                        let related = try control.checkIDs.filter { resultsByCheck[$0] != nil }.map { id in
                            JSONValue.object(["observation-uuid": try uuid("\(score.framework)/observation/\(id)")])
                        }
                        if !related.isEmpty { finding["related-observations"] = .array(related) }
                        try json.value(.object(finding))
                    }
                    json.endArray()
                }
                if !checks.isEmpty {
                    json.key("observations")
                    json.beginArray()
                    for result in checks {
                        var fields: [String: JSONValue] = [
                            "uuid": try uuid("\(score.framework)/observation/\(result.checkID)"),
                            "title": .string(result.title),
                            "description": .string(result.reason.isEmpty ? "Passed." : result.reason),
                            "methods": .array([.string("TEST")]),
                            "types": .array([.string(result.status == .fail ? "finding" : "control-objective")]),
                            "collected": asOf,
                            "props": .array([prop("check-id", result.checkID), prop("status", result.status.rawValue)]),
                        ]
                        if !result.findings.isEmpty { fields["remarks"] = .string(result.findings.joined(separator: "\n")) }
                        let evidence = result.evidenceIDs.compactMap { positions[$0].map { input.evidence[$0] } }
                        if !evidence.isEmpty {
                            fields["relevant-evidence"] = .array(evidence.map { item in
                                .object(["href": .string("evidence/\(item.id)/original.\(item.fileExtension)"),
                                         "description": .string("\(item.source) \(item.operation) \(item.resource), collected \(Timestamp.iso8601(item.collectedAt)), SHA-256 \(item.sha256)")])
                            })
                        }
                        try json.value(.object(fields))
                    }
                    json.endArray()
                }
                try json.member("props", .array([prop("framework", score.framework), prop("score", score.percentText)]))
                try json.member("reviewed-controls", .object(["control-selections": .array([
                    assessed.isEmpty ? .object(["include-all": .object([:])])
                        : .object(["include-controls": .array(assessed.map { .object(["control-id": .string($0.control.id)]) })])])]))
                try json.member("start", .string(Timestamp.iso8601(input.periodStart)))
                try json.member("title", .string(score.title))
                try json.member("uuid", try uuid("\(score.framework)/result"))
                json.endObject()
            }
            json.endArray()
            try json.member("uuid", try uuid("assessment-results"))
            json.endObject()
            json.endObject()
            try json.finish()
        }
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
        listed, plus `SHA256SUMS`, `manifest.json.sig` (and the public key, if you saved it here).
        In bash:

            diff <(cut -c67- SHA256SUMS | sort) <(find . -type f ! -name SHA256SUMS ! -name manifest.json.sig ! -name lightsail.pem | sed 's|^\\./||' | sort) && echo "no file added or removed"

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

extension ReportInput {
    /// Where each evidence id first is in `evidence`: one index the report and the documents share.
    static func positions(of evidence: [Evidence]) -> [String: Int] {
        var positions: [String: Int] = [:]
        positions.reserveCapacity(evidence.count)
        for (index, item) in evidence.enumerated() where positions[item.id] == nil { positions[item.id] = index }
        return positions
    }
}
