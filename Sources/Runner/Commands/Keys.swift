import ArgumentParser
import Cryptography
import Foundation
import Pipeline

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The keys that seal integration credentials (show, rotate) and sign exports (export-public).",
        subcommands: [ShowKeys.self, RotateKeys.self, ExportPublicKey.self])

    struct ExportPublicKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export-public",
            abstract: "Print the public half of the export signing key, for auditors (PEM, as openssl reads it).")
        enum Format: String, ExpressibleByArgument, CaseIterable { case pem, base64, fingerprint }
        @Option(name: .long, help: "pem (default), base64 (the raw 32 bytes) or fingerprint.") var format: Format = .pem
        @OptionGroup var backends: BackendOptions

        func run() async throws {
            do {
                let key = try backends.signingKey(creating: false).publicKey
                switch format {
                case .pem: print(key.pem, terminator: "")
                case .base64: print(Data(key.raw).base64EncodedString())
                case .fingerprint: print(key.fingerprint)
                }
            } catch {
                throw report(error)
            }
        }
    }

    struct ShowKeys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show", abstract: "The current key's id, and which keys seal the credentials in the store.")
        @OptionGroup var backends: BackendOptions

        func run() async throws {
            do {
                let keyring = try backends.keyring(creating: false)
                print("current key: \(keyring.current.id) (\(keyring.source))")
                for key in keyring.previous { print("older key:   \(key.id)") }
                let store = try await backends.openStore()
                var count: [String: Int] = [:]
                for organization in try await store.organizations() {
                    for secret in try await store.allIntegrationSecrets(of: organization.id).values {
                        count[secret.keyID, default: 0] += 1
                    }
                }
                for (id, n) in count.sorted(by: { $0.key < $1.key }) {
                    let known = keyring.key(id: id) == nil ? " (NOT in the keyring: these cannot be opened)" : ""
                    print("\(id): seals \(n) integration credential\(n == 1 ? "" : "s")\(known)")
                }
            } catch {
                throw report(error)
            }
        }
    }

    struct RotateKeys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate",
            abstract: "Re-seal every integration's credentials under the current key.",
            discussion: """
            With a key file (the embedded default's encryption.key, or --key-file), a new key is made and \
            added to the file first; older keys stay in it until you remove them (other stores may use \
            them). With LIGHTSAIL_ENCRYPTION_KEY, set the new key there and the old ones in \
            LIGHTSAIL_PREVIOUS_ENCRYPTION_KEYS, then rotate. Each integration is re-sealed in its own \
            transaction (audited integration.resealed); running it again finishes what an interrupted \
            rotation left.
            """)
        @OptionGroup var backends: BackendOptions
        @OptionGroup var actorOption: ActorOption

        func run() async throws {
            do {
                let actor = try actorOption.resolve()
                guard Actor(actor) == .system else {
                    throw PipelineError(.forbidden, "refused: \(actor) may not rotate keys; the operator (the system actor) does")
                }
                var keyring = try backends.keyring(creating: false)
                let file = backends.keyFile ?? backends.environment["LIGHTSAIL_KEY_FILE"]
                    ?? (keyring.source == backends.embeddedKeyFile.path ? keyring.source : nil)
                if let file {
                    let fresh = try SecretKey.generate()
                    let older = [keyring.current] + keyring.previous
                    try Keyring.write(older.reversed() + [fresh], to: URL(fileURLWithPath: file))
                    keyring = Keyring(current: fresh, previous: older, source: file)
                    print("new key \(fresh.id) added to \(file)")
                }
                let store = try await backends.openStore()
                var resealed = 0
                var unopened: [String] = []
                for organization in try await store.organizations() {
                    for (kind, secret) in try await store.allIntegrationSecrets(of: organization.id).sorted(by: { $0.key < $1.key })
                    where secret.keyID != keyring.current.id {
                        do {
                            let values = try IntegrationCredentials.open(secret, organization: organization.id, kind: kind,
                                                                         keyring: keyring)
                            let sealed = try IntegrationCredentials.seal(values, organization: organization.id, kind: kind,
                                                                         keyring: keyring)
                            if try await store.resealIntegration(kind, of: organization.id, secret: sealed, replacing: secret.keyID,
                                                                 actor: actor) {
                                resealed += 1
                            }
                        } catch let error as PipelineError where error.code == .crypto {
                            unopened.append(error.message)
                        }
                    }
                }
                print("\(resealed) integration credential\(resealed == 1 ? "" : "s") re-sealed with key \(keyring.current.id)")
                for message in unopened { StandardError.write("pipeline: error: \(message)\n") }
                if !unopened.isEmpty { throw Exit.problems }
            } catch let exit as ExitCode {
                throw exit
            } catch {
                throw report(error)
            }
        }
    }
}
