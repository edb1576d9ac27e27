import Cryptography
import Foundation
import Logging
import Pipeline

extension BackendOptions {
    /// The keys that seal and open integration credentials: a key file (`--key-file`,
    /// LIGHTSAIL_KEY_FILE), else LIGHTSAIL_ENCRYPTION_KEY with LIGHTSAIL_PREVIOUS_ENCRYPTION_KEYS
    /// (comma-separated) for what older keys sealed, else on the embedded default the data
    /// directory's `encryption.key`, which `creating` makes (mode 0600) when it is not there.
    /// Production has no default: a key lost with a server would lose every credential.
    func keyring(creating: Bool) throws -> Keyring {
        if let file = keyFile ?? environment["LIGHTSAIL_KEY_FILE"] {
            return try Keyring.read(file: URL(fileURLWithPath: file))
        }
        if let encoded = environment["LIGHTSAIL_ENCRYPTION_KEY"], !encoded.isEmpty {
            let current: SecretKey
            do {
                current = try SecretKey(encoded: encoded)
            } catch let error as PipelineError {
                throw PipelineError(.configuration, "LIGHTSAIL_ENCRYPTION_KEY: \(error.message)")
            }
            var previous: [SecretKey] = []
            for (index, item) in (environment["LIGHTSAIL_PREVIOUS_ENCRYPTION_KEYS"] ?? "").split(separator: ",").enumerated() {
                do {
                    previous.append(try SecretKey(encoded: String(item)))
                } catch let error as PipelineError {
                    throw PipelineError(.configuration, "LIGHTSAIL_PREVIOUS_ENCRYPTION_KEYS, key \(index + 1): \(error.message)")
                }
            }
            return Keyring(current: current, previous: previous, source: "LIGHTSAIL_ENCRYPTION_KEY")
        }
        guard case .sqlite = try databaseChoice() else {
            throw PipelineError(.configuration, "no encryption key for integration credentials: set LIGHTSAIL_ENCRYPTION_KEY (32 bytes as base64; `openssl rand -base64 32` makes one) or --key-file")
        }
        let file = embeddedKeyFile
        if FileManager.default.fileExists(atPath: file.path) || !creating {
            guard FileManager.default.fileExists(atPath: file.path) else {
                throw PipelineError(.configuration, "no encryption key: \(file.path) is not there (it is made when the first credential is stored), and neither LIGHTSAIL_ENCRYPTION_KEY nor --key-file is set")
            }
            return try Keyring.read(file: file)
        }
        try ensureDataRoot()
        let key = try SecretKey.generate()
        try Keyring.write([key], to: file)
        StandardError.write("pipeline: made the encryption key \(key.id) in \(file.path) (mode 0600); back it up: credentials sealed with it cannot be opened without it\n")
        return Keyring(current: key, source: file.path)
    }

    var embeddedKeyFile: URL { dataRoot.appendingPathComponent("encryption.key") }

    /// The key that signs export manifests: `--signing-key-file`/LIGHTSAIL_SIGNING_KEY_FILE,
    /// LIGHTSAIL_SIGNING_KEY, or the data directory's signing.key (made on first use when
    /// `creating`, mode 0600).
    func signingKey(creating: Bool) throws -> SigningKey {
        if let file = signingKeyFile ?? environment["LIGHTSAIL_SIGNING_KEY_FILE"] {
            return try SigningKey.read(file: URL(fileURLWithPath: file))
        }
        if let encoded = environment["LIGHTSAIL_SIGNING_KEY"], !encoded.isEmpty {
            do {
                return try SigningKey(encoded: encoded)
            } catch let error as PipelineError {
                throw PipelineError(.configuration, "LIGHTSAIL_SIGNING_KEY: \(error.message)")
            }
        }
        let file = dataRoot.appendingPathComponent("signing.key")
        if FileManager.default.fileExists(atPath: file.path) || !creating {
            guard FileManager.default.fileExists(atPath: file.path) else {
                throw PipelineError(.configuration, "no signing key: \(file.path) is not there (it is made by the first export), and neither LIGHTSAIL_SIGNING_KEY nor --signing-key-file is set")
            }
            return try SigningKey.read(file: file)
        }
        try ensureDataRoot()
        let key = try SigningKey.generate()
        // Workers starting together on a fresh data directory: the first one's key is everyone's.
        guard try key.create(at: file) else { return try SigningKey.read(file: file) }
        // Through the log (JSON lines under --log-format json): someone must publish and keep it.
        Logger(label: "lightsail.pipeline").warning("made the export signing key \(key.publicKey.fingerprint) in \(file.path) (mode 0600); give auditors its public half: pipeline keys export-public")
        return key
    }
}

/// Integration credentials: a small JSON object of strings (a token, a private key, a service
/// account's key file), sealed for one integration of one organization.
enum IntegrationCredentials {
    static func context(_ organization: OrganizationID, _ kind: String) -> String {
        "lightsail-integration-v1\n\(organization)\n\(kind)"
    }

    static func seal(_ values: [String: String], organization: OrganizationID, kind: String,
                     keyring: Keyring) throws -> SealedSecret {
        let data = try JSONSerialization.data(withJSONObject: values, options: [.sortedKeys])
        return try SecretBox.seal(data, with: keyring.current, context: context(organization, kind))
    }

    /// Opens them, or says which integration's credentials could not be opened and why.
    static func open(_ secret: SealedSecret, organization: OrganizationID, kind: String,
                     keyring: Keyring) throws -> [String: String] {
        do {
            let data = try SecretBox.open(secret, keyring: keyring, context: context(organization, kind))
            guard let values = try JSONSerialization.jsonObject(with: data) as? [String: String] else {
                throw PipelineError(.crypto, "they are not a JSON object of strings")
            }
            return values
        } catch let error as PipelineError {
            throw PipelineError(.crypto, "cannot open the credentials of \(organization)'s \(kind) integration: \(error.message)")
        }
    }
}
