import ArgumentParser
import Cryptography
import Foundation
import Pipeline
import Reporting

struct BundleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "Work with an export bundle on its own, offline.",
        subcommands: [VerifyBundle.self])

    struct VerifyBundle: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Check a bundle: every file's hash, SHA256SUMS, the manifest's signature and its link to the previous export.",
            discussion: """
            Needs no database, network or configuration: only the zip, the organization's public key \
            (`pipeline keys export-public` prints it) and, for the chain, the export before it. Names \
            every file changed, added or removed. Without --public-key the signature is not checked, \
            and says so. Exit 0 valid, 1 invalid, 2 usage (a file that cannot be read, a malformed key).
            """)
        enum Format: String, ExpressibleByArgument, CaseIterable { case text, json }

        @Argument(help: "The bundle (a zip).") var zip: String
        @Option(name: .long, help: "The signer's public key: PEM, or the raw key in base64 or hex.") var publicKey: String?
        @Option(name: .long, help: "The organization's export before this one (a zip), to check the chain link.") var previous: String?
        @Option(name: .long, help: "text (default) or json.") var format: Format = .text

        func run() async throws {
            for path in [zip] + [previous].compactMap({ $0 }) where !FileManager.default.isReadableFile(atPath: path) {
                StandardError.write("pipeline: error: cannot read \(quotedForMessage(path))\n")
                throw Exit.usage
            }
            let key: PublicSigningKey?
            do {
                key = try publicKey.map { file in
                    guard let data = FileManager.default.contents(atPath: file), data.count < 1 << 16 else {
                        throw PipelineError(.invalidInput, "cannot read the public key \(quotedForMessage(file))")
                    }
                    return try PublicSigningKey(text: String(decoding: data, as: UTF8.self))
                }
            } catch {
                StandardError.write("pipeline: error: \(error)\n")
                throw Exit.usage
            }
            let (zip, previous) = (self.zip, self.previous)
            let report: BundleVerifier.Report
            do {
                report = try await BlockingExecutor.shared.run { try BundleVerifier.verify(zip: zip, publicKey: key, previous: previous) }
            } catch {
                report = BundleVerifier.Report(problems: ["\(error)"])
            }
            switch format {
            case .text: print(Self.text(report, zip: zip), terminator: "")
            case .json: print(try Self.json(report, zip: zip))
            }
            if !report.isValid { throw Exit.problems }
        }

        static func text(_ report: BundleVerifier.Report, zip: String) -> String {
            var out = "bundle \(zip)\n"
            if let manifest = report.manifest {
                out += "  export:    \(report.exportID ?? "?") (\(manifest.organizationID), \(manifest.pipeline), as of \(manifest.asOf); \(manifest.generator))\n"
                out += "  files:     \(report.filesChecked) of \(manifest.files.count) checked against the manifest\n"
            }
            out += "  signature: " + {
                switch report.signature {
                case .valid(let signer): return "valid, by \(signer)"
                case .notChecked(let signer): return "NOT CHECKED: the manifest names \(signer); pass --public-key to check it"
                case .unsigned: return "none (the bundle is not signed)"
                case .invalid(let why): return "INVALID: \(why)"
                }
            }() + "\n"
            out += "  chain:     " + {
                switch report.chain {
                case .first: return "the organization's first export (no previous one named)"
                case .linked(let id): return "follows \(id), the previous bundle given"
                case .notChecked(let id): return "follows \(id) (not checked: pass --previous with that bundle)"
                case .broken(let why): return "BROKEN: \(why)"
                }
            }() + "\n"
            for problem in report.problems { out += "  \(problem)\n" }
            out += report.isValid ? "VALID\n" : "INVALID\n"
            return out
        }

        static func json(_ report: BundleVerifier.Report, zip: String) throws -> String {
            func state(_ signature: BundleVerifier.Signature) -> [String: String] {
                switch signature {
                case .valid(let signer): return ["state": "valid", "signer": signer]
                case .notChecked(let signer): return ["state": "not_checked", "signer": signer]
                case .unsigned: return ["state": "unsigned"]
                case .invalid(let why): return ["state": "invalid", "reason": why]
                }
            }
            func state(_ chain: BundleVerifier.Chain) -> [String: String] {
                switch chain {
                case .first: return ["state": "first"]
                case .linked(let id): return ["state": "linked", "previous": id]
                case .notChecked(let id): return ["state": "not_checked", "previous": id]
                case .broken(let why): return ["state": "broken", "reason": why]
                }
            }
            let document: [String: Any] = [
                "bundle": zip, "valid": report.isValid, "export_id": report.exportID as Any,
                "files_checked": report.filesChecked, "problems": report.problems,
                "signature": state(report.signature), "chain": state(report.chain),
            ]
            let data = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .prettyPrinted])
            return String(decoding: data, as: UTF8.self)
        }
    }
}
