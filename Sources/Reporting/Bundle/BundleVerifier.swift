import Cryptography
import Foundation
import Pipeline

/// Checks a bundle offline, with nothing but the zip, the organization's public key and the
/// previous bundle: every file against the manifest, `SHA256SUMS` against the manifest, the
/// manifest's signature, and its link to the previous export. Names each file changed, added or
/// removed. Blocks (reads the zips).
public enum BundleVerifier {
    public enum Signature: Sendable, Equatable {
        /// Made by the key given.
        case valid(String)
        /// Signed by `signer`, but no key was given to check it with.
        case notChecked(signer: String)
        case unsigned
        case invalid(String)
    }

    public enum Chain: Sendable, Equatable {
        /// The first export of its organization: it names none before it.
        case first
        /// Follows the previous bundle given.
        case linked(String)
        /// Names `id` before it, but no previous bundle was given.
        case notChecked(String)
        case broken(String)
    }

    public struct Report: Sendable {
        public var manifest: BundleManifest?
        public var exportID: String?
        public var filesChecked = 0
        /// `changed <path>: …`, `added <path>`, `removed <path>`, and what else is wrong, one each.
        public var problems: [String] = []
        public var signature: Signature = .unsigned
        public var chain: Chain = .first

        public init(problems: [String] = []) { self.problems = problems }

        public var isValid: Bool {
            guard problems.isEmpty, manifest != nil else { return false }
            if case .invalid = signature { return false }
            if case .broken = chain { return false }
            return true
        }
    }

    public static func verify(zip: String, publicKey: PublicSigningKey?, previous: String?) throws -> Report {
        var report = Report()
        let (entries, kept) = try ZipReader.scan(zip, keep: ["manifest.json", "manifest.json.sig", "SHA256SUMS"])
        var present: [String: ZipReader.Entry] = [:]
        for entry in entries {
            if present.updateValue(entry, forKey: entry.path) != nil {
                report.problems.append("duplicate \(entry.path): the zip holds two entries of that name")
            }
        }
        guard let manifestData = kept["manifest.json"] else {
            report.problems.append("removed manifest.json: without it nothing can be checked")
            return report
        }
        let manifest: BundleManifest
        do {
            manifest = try JSONDecoder().decode(BundleManifest.self, from: manifestData)
        } catch {
            report.problems.append("changed manifest.json: it is not a Lightsail bundle manifest (\(error))")
            return report
        }
        guard manifest.format == BundleManifest.formatName else {
            report.problems.append("manifest.json is of format \(manifest.format), not \(BundleManifest.formatName)")
            return report
        }
        report.manifest = manifest
        let manifestSHA256 = try Digest.sha256Hex(manifestData)
        report.exportID = BundleManifest.exportID(manifestSHA256: manifestSHA256)

        // Every listed file, as listed.
        var listed = Set<String>()
        for file in manifest.files {
            listed.insert(file.path)
            guard let entry = present[file.path] else {
                report.problems.append("removed \(file.path)")
                continue
            }
            report.filesChecked += 1
            if entry.sha256 != file.sha256 || entry.size != file.size {
                report.problems.append("changed \(file.path): SHA-256 \(entry.sha256.prefix(16))… (\(entry.size) bytes), the manifest says \(file.sha256.prefix(16))… (\(file.size) bytes)")
            }
        }
        for entry in entries where !listed.contains(entry.path) && !BundleManifest.unlisted.contains(entry.path) {
            report.problems.append("added \(entry.path): not in the manifest")
        }
        // Each evidence item's original is a listed file with the evidence's hash.
        let files = Dictionary(manifest.files.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        for item in manifest.evidence where files[item.original]?.sha256 != item.sha256 {
            report.problems.append("evidence \(item.id): its original \(item.original) is not listed with the evidence's SHA-256")
        }
        // SHA256SUMS says exactly what the manifest says (a recomputed one does not).
        if let sums = kept["SHA256SUMS"] {
            report.problems += sumsProblems(String(decoding: sums, as: UTF8.self), manifest: manifest, manifestSHA256: manifestSHA256)
        } else {
            report.problems.append("removed SHA256SUMS")
        }
        report.signature = signature(manifest: manifest, data: manifestData, sig: kept["manifest.json.sig"], key: publicKey)
        if manifest.signer == nil, present["manifest.json.sig"] != nil {
            report.problems.append("added manifest.json.sig: the manifest names no signer")
        }
        report.chain = try chain(manifest: manifest, previous: previous)
        return report
    }

    static func sumsProblems(_ text: String, manifest: BundleManifest, manifestSHA256: String) -> [String] {
        var expected: [String: String] = Dictionary(manifest.files.map { ($0.path, $0.sha256) }, uniquingKeysWith: { a, _ in a })
        expected["manifest.json"] = manifestSHA256
        var problems: [String] = []
        var seen = Set<String>()
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[1].hasPrefix(" ") else {
                problems.append("changed SHA256SUMS: the line \"\(line.prefix(80))\" is not `<sha256>  <path>`")
                continue
            }
            let hash = String(parts[0])
            let path = String(parts[1].dropFirst())
            seen.insert(path)
            guard let want = expected[path] else {
                problems.append("changed SHA256SUMS: it lists \(path), which the manifest does not")
                continue
            }
            if want != hash {
                problems.append("changed SHA256SUMS: its hash of \(path) is not the manifest's (recomputed after a change?)")
            }
        }
        for path in expected.keys.sorted() where !seen.contains(path) {
            problems.append("changed SHA256SUMS: it leaves out \(path)")
        }
        return problems
    }

    static func signature(manifest: BundleManifest, data: Data, sig: Data?, key: PublicSigningKey?) -> Signature {
        guard let signer = manifest.signer else {
            return key == nil ? .unsigned : .invalid("the manifest is not signed, but a public key was given")
        }
        guard let sig else { return .invalid("manifest.json.sig is missing: the manifest says \(signer) signed it") }
        guard let key else { return .notChecked(signer: signer) }
        guard key.fingerprint == signer else {
            return .invalid("the manifest names signer \(signer); the key given is \(key.fingerprint)")
        }
        guard key.verify(Array(sig), of: data) else {
            return .invalid("manifest.json.sig is not \(signer)'s signature of manifest.json: the manifest was changed after signing, or the signature was")
        }
        return .valid(signer)
    }

    static func chain(manifest: BundleManifest, previous: String?) throws -> Chain {
        guard let previous else {
            return manifest.previous.map { .notChecked($0.id) } ?? .first
        }
        guard let link = manifest.previous else {
            return .broken("this bundle names no previous export, yet \(previous) was given as its predecessor")
        }
        let (_, kept) = try ZipReader.scan(previous, keep: ["manifest.json"], hash: false)
        guard let data = kept["manifest.json"] else { return .broken("\(previous) has no manifest.json") }
        let hash = try Digest.sha256Hex(data)
        guard hash == link.manifestSHA256 else {
            return .broken("the previous bundle's manifest.json has SHA-256 \(hash.prefix(16))…; this bundle says its predecessor's is \(link.manifestSHA256.prefix(16))… (\(link.id))")
        }
        if let earlier = try? JSONDecoder().decode(BundleManifest.self, from: data), earlier.organizationID != manifest.organizationID {
            return .broken("the previous bundle is \(earlier.organizationID)'s, this one \(manifest.organizationID)'s")
        }
        return .linked(link.id)
    }
}
