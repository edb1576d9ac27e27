import Foundation
import PipelineTesting
import Testing

/// Two signed exports of acme, a day apart, made once for the suite: the second links to the first.
final class SignedExports: Sendable {
    static let shared = Result { try SignedExports() }

    let cli: CLI
    let first: String
    let second: String
    let publicKey: URL
    let otherKey: URL

    init() throws {
        cli = try CLI()
        var zips: [String] = []
        for day in ["2026-11-27", "2026-11-28"] {
            let run = try cli.run(["run", "report", "--org", "acme", "--as-of", "\(day)T00:00:00Z", "--json"])
            guard run.status == 0 else { throw ToolFailure("run report", run) }
            let artifacts = (try runJSON(run)["artifacts"] as? [[String: Any]]) ?? []
            guard let zip = artifacts.first(where: { $0["kind"] as? String == "bundle" })?["location"] as? String else {
                throw ToolFailure("run report (no bundle)", run)
            }
            zips.append(zip)
        }
        (first, second) = (zips[0], zips[1])
        let folder = try ExternalTool.temporaryDirectory()
        publicKey = folder.appendingPathComponent("lightsail.pem")
        try cli.run(["keys", "export-public"]).stdout.write(to: publicKey, atomically: true, encoding: .utf8)
        // Another organization's key: a stranger's.
        let stranger = try CLI(demo: false)
        otherKey = folder.appendingPathComponent("stranger.pem")
        let pem = try stranger.run(["keys", "export-public"], environment: ["LIGHTSAIL_SIGNING_KEY": Data(repeating: 9, count: 32).base64EncodedString()])
        try pem.stdout.write(to: otherKey, atomically: true, encoding: .utf8)
    }

    func verify(_ zip: String, key: URL? = nil, previous: String? = nil, extra: [String] = []) throws -> ToolResult {
        var args = ["bundle", "verify", zip]
        if let key { args += ["--public-key", key.path] }
        if let previous { args += ["--previous", previous] }
        return try ExternalTool.run(CLI.binary, args + extra, environment: ["LIGHTSAIL_DATA_DIR": "/nonexistent/nothing-here"])
    }

    /// Copies the bundle through Python's zipfile, applying `edit` (a Python snippet over `files`,
    /// a dict of name → bytes, in order): what a forger with a zip tool does.
    static func tamper(_ zip: String, _ edit: String) throws -> String {
        let out = try ExternalTool.temporaryDirectory().appendingPathComponent("tampered.zip").path
        let script = """
        import hashlib, json, sys, zipfile
        src = zipfile.ZipFile(sys.argv[1])
        files = {n: src.read(n) for n in src.namelist()}
        def flip(name, at=None):
            data = bytearray(files[name]); i = len(data) // 2 if at is None else at; data[i] ^= 0x01; files[name] = bytes(data)
        def sums():
            files["SHA256SUMS"] = "".join(f"{hashlib.sha256(files[n]).hexdigest()}  {n}\\n" for n in sorted(files) if n not in ("SHA256SUMS", "manifest.json.sig")).encode()
        \(edit)
        with zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED) as dst:
            for name, data in files.items(): dst.writestr(name, data)
        """
        let result = try ExternalTool.run("python3", ["-c", script, zip, out])
        guard result.status == 0 else { throw ToolFailure("python3 tamper", result) }
        return out
    }
}

@Suite struct BundleVerifyTests {
    func exports() throws -> SignedExports { try SignedExports.shared.get() }

    @Test func aBundleChecksWithItsKeyAndItsPredecessorOffline() throws {
        let e = try exports()
        let valid = try e.verify(e.second, key: e.publicKey, previous: e.first)
        #expect(valid.status == 0, "\(valid.stdout)\(valid.stderr)")
        #expect(valid.stdout.contains("signature: valid, by ed25519:"))
        #expect(valid.stdout.contains("chain:     follows exp-"))
        #expect(valid.stdout.hasSuffix("VALID\n"))
        // The first export is the first of its chain.
        let first = try e.verify(e.first, key: e.publicKey)
        #expect(first.status == 0 && first.stdout.contains("the organization's first export"))
        // Without a key the signature is said not to be checked.
        let unchecked = try e.verify(e.second)
        #expect(unchecked.status == 0 && unchecked.stdout.contains("signature: NOT CHECKED"))
        let json = try e.verify(e.second, key: e.publicKey, previous: e.first, extra: ["--format", "json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["valid"] as? Bool == true)
        #expect((object["chain"] as? [String: String])?["state"] == "linked")
    }

    /// A flipped byte in any file is caught and the file named.
    @Test(arguments: ["report.pdf", "report.txt", "results.json", "controls.csv", "assessment-results.json", "VERIFY.md",
                      "original", "metadata.json"])
    func aFlippedByteInAnyFileIsNamed(_ which: String) throws {
        let e = try exports()
        let pick = which == "original" || which == "metadata.json"
            ? "name = sorted(n for n in files if n.startswith('evidence/') and n.endswith('\(which == "original" ? "/original.json" : "/metadata.json")'))[0]"
            : "name = '\(which)'"
        let zip = try SignedExports.tamper(e.second, "\(pick)\nflip(name)\nprint(name)")
        let result = try e.verify(zip, key: e.publicKey)
        #expect(result.status == 1)
        #expect(result.stdout.contains("  changed \(which == "original" ? "evidence/" : which == "metadata.json" ? "evidence/" : which)"), "\(result.stdout)")
        #expect(result.stdout.hasSuffix("INVALID\n"))
    }

    /// The documented check alone (sha256sum -c) is fooled by a forger who recomputes
    /// SHA256SUMS and the manifest; the signature is not.
    @Test func anEditWithEveryHashRecomputedFailsTheSignature() throws {
        let e = try exports()
        let zip = try SignedExports.tamper(e.second, """
        name = sorted(n for n in files if n.endswith('/original.json'))[0]
        files[name] = files[name].replace(b'"', b"'", 1)
        m = json.loads(files["manifest.json"])
        for f in m["files"]:
            if f["path"] == name: f["sha256"] = hashlib.sha256(files[name]).hexdigest(); f["size"] = len(files[name])
        for item in m["evidence"]:
            if item["original"] == name: item["sha256"] = hashlib.sha256(files[name]).hexdigest(); item["size"] = len(files[name])
        files["manifest.json"] = (json.dumps(m, indent=2, sort_keys=True, separators=(",", " : ")) + "\\n").encode()
        sums()
        """)
        let folder = try ExternalTool.temporaryDirectory()
        #expect(try ExternalTool.run("unzip", ["-q", zip, "-d", folder.path]).status == 0)
        #expect(try ExternalTool.run("sha256sum", ["-c", "--quiet", "SHA256SUMS"], directory: folder).status == 0)
        let result = try e.verify(zip, key: e.publicKey)
        #expect(result.status == 1)
        #expect(result.stdout.contains("signature: INVALID: manifest.json.sig is not ed25519:"), "\(result.stdout)")
    }

    @Test func aRemovedFileIsNamedEvenWithItsLineRemoved() throws {
        let e = try exports()
        let zip = try SignedExports.tamper(e.second, "del files['controls.csv']\nsums()")
        let result = try e.verify(zip, key: e.publicKey)
        #expect(result.status == 1)
        #expect(result.stdout.contains("  removed controls.csv\n"), "\(result.stdout)")
        #expect(result.stdout.contains("changed SHA256SUMS: it leaves out controls.csv"))
    }

    @Test func anAddedFileIsNamedEvenWithALineForIt() throws {
        let e = try exports()
        let zip = try SignedExports.tamper(e.second, "files['evidence/extra/original.json'] = b'{}'\nsums()")
        let result = try e.verify(zip, key: e.publicKey)
        #expect(result.status == 1)
        #expect(result.stdout.contains("  added evidence/extra/original.json: not in the manifest"), "\(result.stdout)")
        #expect(result.stdout.contains("changed SHA256SUMS: it lists evidence/extra/original.json, which the manifest does not"))
    }

    @Test func aRecomputedSHA256SUMSIsCaught() throws {
        let e = try exports()
        let zip = try SignedExports.tamper(e.second, "flip('results.json')\nsums()")
        let result = try e.verify(zip, key: e.publicKey)
        #expect(result.status == 1)
        #expect(result.stdout.contains("  changed results.json: SHA-256"))
        #expect(result.stdout.contains("changed SHA256SUMS: its hash of results.json is not the manifest's"))
    }

    @Test func aChangedSignatureOrManifestFailsTheSignature() throws {
        let e = try exports()
        for edit in ["flip('manifest.json.sig', 5)", "files['manifest.json'] = files['manifest.json'].replace(b'Acme Corp', b'Acme Corq')",
                     "del files['manifest.json.sig']"] {
            let result = try e.verify(try SignedExports.tamper(e.second, edit), key: e.publicKey)
            #expect(result.status == 1, "\(edit)")
            #expect(result.stdout.contains("signature: INVALID"), "\(edit): \(result.stdout)")
        }
    }

    @Test func aStrangersKeyIsRefusedNamingBothKeys() throws {
        let e = try exports()
        let result = try e.verify(e.second, key: e.otherKey)
        #expect(result.status == 1)
        #expect(result.stdout.contains("signature: INVALID: the manifest names signer ed25519:"))
        #expect(result.stdout.contains("the key given is ed25519:"))
    }

    @Test func aBrokenChainIsCaught() throws {
        let e = try exports()
        // Not its predecessor: itself.
        let wrong = try e.verify(e.second, key: e.publicKey, previous: e.second)
        #expect(wrong.status == 1)
        #expect(wrong.stdout.contains("chain:     BROKEN: the previous bundle's manifest.json has SHA-256"), "\(wrong.stdout)")
        // The first export names no predecessor.
        let none = try e.verify(e.first, key: e.publicKey, previous: e.second)
        #expect(none.status == 1 && none.stdout.contains("BROKEN: this bundle names no previous export"))
    }

    /// VERIFY.md's commands, run as written in the unzipped bundle, say what it says they say.
    @Test func theCommandsInVerifyMdWorkAsWritten() throws {
        try ExternalTool.require("unzip", "openssl", "bash")
        let e = try exports()
        let folder = try ExternalTool.temporaryDirectory()
        #expect(try ExternalTool.run("unzip", ["-q", e.second, "-d", folder.path]).status == 0)
        try FileManager.default.copyItem(at: e.publicKey, to: folder.appendingPathComponent("lightsail.pem"))
        let text = try String(contentsOf: folder.appendingPathComponent("VERIFY.md"), encoding: .utf8)
        // The indented lines are the commands.
        let commands = text.split(separator: "\n").filter { $0.hasPrefix("    ") }.map { $0.trimmingCharacters(in: .whitespaces) }
        func run(_ command: String) throws -> ToolResult { try ExternalTool.run("bash", ["-c", command], directory: folder) }
        let sums = try #require(commands.first { $0.hasPrefix("sha256sum -c") })
        #expect(try run(sums).status == 0)
        let diff = try #require(commands.first { $0.hasPrefix("diff <(cut -c67- SHA256SUMS") })
        #expect(try run(diff).stdout == "no file added or removed\n")
        let fingerprint = try #require(commands.first { $0.hasPrefix("openssl pkey -pubin") })
        let signer = try #require((try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("manifest.json"))) as? [String: Any])?["signer"] as? String)
        #expect("ed25519:" + (try run(fingerprint).stdout.trimmingCharacters(in: .whitespacesAndNewlines)) == signer)
        let signature = try #require(commands.first { $0.hasPrefix("openssl pkeyutl -verify") })
        #expect(try run(signature).stdout.contains("Signature Verified Successfully"))
        // An added file is caught by the documented diff.
        try Data("x".utf8).write(to: folder.appendingPathComponent("evidence/extra.json"))
        let added = try run(diff)
        #expect(added.status != 0 && added.stdout.contains("> evidence/extra.json") && !added.stdout.contains("no file added"))
    }

    /// A second entry of the same name (what a zip tool appends) is named even when its bytes are
    /// the listed ones: an extractor would keep the last.
    @Test func aDuplicateEntryIsNamed() throws {
        let e = try exports()
        let out = try ExternalTool.temporaryDirectory().appendingPathComponent("duplicate.zip").path
        let script = """
        import sys, warnings, zipfile
        warnings.simplefilter("ignore")
        src = zipfile.ZipFile(sys.argv[1])
        with zipfile.ZipFile(sys.argv[2], "w") as dst:
            for name in src.namelist(): dst.writestr(name, src.read(name))
            dst.writestr("results.json", b"{}")
        """
        #expect(try ExternalTool.run("python3", ["-c", script, e.second, out]).status == 0)
        let result = try e.verify(out, key: e.publicKey)
        #expect(result.status == 1)
        #expect(result.stdout.contains("duplicate results.json: the zip holds two entries of that name"), "\(result.stdout)")
    }

    /// Export commands refuse what they cannot do, before doing anything.
    @Test func exportCommandsRefuseBadArguments() throws {
        let e = try exports()
        let tooLong = try e.cli.run(["export", "share", "--org", "acme", "--export", "exp-abc", "--expires", "8d", "--to", "a@firm.example"])
        #expect(tooLong.status == 2 && tooLong.stderr.contains("--expires '8d' must be a duration from 1s to 7d"))
        let notMail = try e.cli.run(["export", "share", "--org", "acme", "--export", "exp-abc", "--to", "auditor"])
        #expect(notMail.status == 2 && notMail.stderr.contains("is not an email address"))
        let hostile = try e.cli.run(["export", "share", "--org", "acme", "--export", "../../etc/passwd", "--to", "a@firm.example"])
        #expect(hostile.status == 2 && hostile.stderr.contains("is not an export id"))
        // The embedded default's directory has no links to give, and says where the file is.
        let list = try e.cli.run(["exports", "list", "--org", "acme"])
        let id = try #require(list.stdout.split(separator: "\t").first.map(String.init))
        let local = try e.cli.run(["export", "share", "--org", "acme", "--export", id, "--to", "a@firm.example"])
        #expect(local.status != 0 && local.stderr.contains("has no download links to give"), "\(local.stderr)")
        #expect(try e.cli.sql("SELECT count(*) FROM audit_log WHERE action = 'export.shared'") == "0")
        // A viewer may list exports but not share them.
        let viewer = try e.cli.run(["export", "share", "--org", "acme", "--export", id, "--to", "a@firm.example", "--actor", "vic@acme.example"])
        #expect(viewer.status == 1 && viewer.stderr.contains("may not share exports (needs reports:manage)"))
        #expect(try e.cli.run(["exports", "list", "--org", "acme", "--actor", "vic@acme.example"]).status == 0)
    }

    @Test func usageErrorsExitTwoAndAFileThatIsNoZipIsInvalid() throws {
        let e = try exports()
        #expect(try e.verify("/nonexistent/bundle.zip").status == 2)
        let junk = try ExternalTool.temporaryDirectory().appendingPathComponent("key.pem")
        try "not a key".write(to: junk, atomically: true, encoding: .utf8)
        let badKey = try e.verify(e.second, key: junk)
        #expect(badKey.status == 2 && badKey.stderr.contains("pipeline: error:"))
        let notZip = try e.verify(junk.path)
        #expect(notZip.status == 1 && notZip.stdout.hasSuffix("INVALID\n"))
    }

    /// The OSCAL document passes compliance-trestle's validation, a tool nobody here wrote; the CSV
    /// reads back with Python's csv module.
    @Test func theOSCALDocumentValidatesWithTrestleAndTheCSVReadsBack() throws {
        try ExternalTool.require("trestle", "unzip", "python3")
        let e = try exports()
        let workspace = try ExternalTool.temporaryDirectory()
        #expect(try ExternalTool.run("trestle", ["init"], directory: workspace).status == 0)
        let folder = workspace.appendingPathComponent("assessment-results/acme")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let extracted = try ExternalTool.temporaryDirectory()
        #expect(try ExternalTool.run("unzip", ["-q", "-j", e.second, "assessment-results.json", "controls.csv", "-d", extracted.path]).status == 0)
        try FileManager.default.copyItem(at: extracted.appendingPathComponent("assessment-results.json"),
                                         to: folder.appendingPathComponent("assessment-results.json"))
        let validate = try ExternalTool.run("trestle", ["validate", "-f", "assessment-results/acme/assessment-results.json"], directory: workspace)
        #expect(validate.status == 0, "\(validate.stdout)\(validate.stderr)")
        #expect(validate.stdout.contains("VALID"))
        let read = """
        import csv, json, sys
        rows = list(csv.DictReader(open(sys.argv[1], newline="")))
        doc = json.load(open(sys.argv[2]))["assessment-results"]
        failing = [r["check"] for r in rows if r["status"] == "fail"]
        findings = sum(len(r.get("findings", [])) for r in doc["results"])
        print(len(rows), len(failing), rows[0].keys() >= {"check", "criteria", "status", "resources"}, len(doc["results"]), findings > 0)
        """
        let check = try ExternalTool.run("python3", ["-c", read, extracted.appendingPathComponent("controls.csv").path,
                                                     extracted.appendingPathComponent("assessment-results.json").path])
        #expect(check.status == 0, "\(check.stderr)")
        #expect(check.stdout.hasPrefix("47 4 "), "\(check.stdout)")
        #expect(check.stdout.hasSuffix(" True 2 True\n"), "\(check.stdout)")
    }
}

@Suite struct StoredEvidenceIntegrityTests {
    /// An evidence object edited in storage (same size, one byte) fails the next export, naming
    /// the object, and the audit log keeps it; nothing already stored is lost.
    @Test func anEvidenceObjectChangedInStorageFailsTheExportAndIsAudited() throws {
        let cli = try CLI()
        #expect(try cli.run(["run", "report", "--org", "acme", "--as-of", "2026-11-27T00:00:00Z", "--quiet"]).status == 0)
        let evidence = cli.dataDir.appendingPathComponent("objects/acme/evidence")
        let id = try #require(try FileManager.default.contentsOfDirectory(atPath: evidence.path).sorted().first {
            FileManager.default.fileExists(atPath: evidence.appendingPathComponent("\($0)/original.json").path)
        })
        let original = evidence.appendingPathComponent("\(id)/original.json")
        var bytes = try Data(contentsOf: original)
        bytes[bytes.count / 2] ^= 0x01
        try bytes.write(to: original)
        let exports = try cli.sql("SELECT count(*) FROM exports")
        let result = try cli.run(["run", "report", "--org", "acme", "--as-of", "2026-11-28T00:00:00Z", "--quiet"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("evidence object acme/evidence/\(id)/original.json does not match its recorded SHA-256"), "\(result.stderr)")
        #expect(try cli.sql("SELECT action || ' ' || entity_id FROM audit_log WHERE action = 'evidence.integrity_failed'")
                == "evidence.integrity_failed \(id)")
        #expect(try cli.sql("SELECT count(*) FROM exports") == exports)
        // The log line that says the run failed names the stage it failed in.
        let logged = try cli.run(["run", "report", "--org", "acme", "--as-of", "2026-11-28T00:00:00Z", "--quiet", "--log-format", "json"])
        let failedLine = logged.stderr.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }.first { ($0["message"] as? String) == "run failed" }
        #expect(failedLine?["stage"] as? String == "render" && failedLine?["org.id"] as? String == "acme", "\(logged.stderr)")
    }
}
