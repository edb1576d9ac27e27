import Cryptography
import Foundation
import Pipeline
import PipelineTesting
import Testing

/// RS256 against the published vectors, and the sealing of credentials.
@Suite struct RS256Tests {
    func vector(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: reference.appendingPathComponent("jwt/\(name)"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test(arguments: ["pem_pkcs8_private_key", "pem_pkcs1_private_key"])
    func rfc7515AppendixA2SignsByteForByte(_ encoding: String) throws {
        let v = try vector("rfc7515_A2_rs256.json")
        let key = try RSASigningKey(pem: try #require(v[encoding] as? String), what: "the RFC key")
        let signature = try key.signSHA256(Data(try #require(v["signing_input"] as? String).utf8))
        #expect(JWT.base64URL(Data(signature)) == v["signature_b64u"] as? String)
    }

    @Test func googlesDocumentedClaimSetSignsAsPublished() throws {
        let key = try RSASigningKey(pem: try #require(try vector("rfc7515_A2_rs256.json")["pem_pkcs8_private_key"] as? String),
                                    what: "the RFC key")
        let cases = try #require(try vector("derived_google_sa_assertions_rs256.json")["cases"] as? [[String: Any]])
        #expect(!cases.isEmpty)
        for item in cases {
            let input = try #require(item["signing_input"] as? String)
            #expect(JWT.base64URL(Data(try key.signSHA256(Data(input.utf8)))) == item["signature_b64u"] as? String)
        }
    }

    @Test func aKeyThatIsNotRSAOrNotPEMIsRefusedWithoutEchoingIt() throws {
        #expect(throws: PipelineError.self) { try RSASigningKey(pem: "-----BEGIN PRIVATE KEY-----\nnot base64 secret\n-----END PRIVATE KEY-----", what: "the key of x") }
        do {
            _ = try RSASigningKey(pem: "hunter2", what: "the key of x")
        } catch {
            #expect("\(error)".contains("the key of x is not a PEM private key"))
            #expect(!"\(error)".contains("hunter2"))
        }
    }
}

@Suite struct SecretBoxTests {
    let key = try! SecretKey(bytes: Array(0..<32))

    @Test func whatIsSealedOpensAndIsNotInTheSealedBytes() throws {
        let secret = Data("ghp_SuperSecretToken".utf8)
        let sealed = try SecretBox.seal(secret, with: key, context: "acme/github")
        #expect(sealed.keyID == key.id)
        #expect(sealed.sealed.range(of: secret) == nil)
        #expect(try SecretBox.open(sealed, keyring: Keyring(current: key, source: "test"), context: "acme/github") == secret)
        // A fresh nonce each time: the same secret never seals to the same bytes.
        #expect(try SecretBox.seal(secret, with: key, context: "acme/github").sealed != sealed.sealed)
    }

    @Test func aChangedByteAnotherIntegrationOrAnUnknownKeyDoesNotOpen() throws {
        let sealed = try SecretBox.seal(Data("token".utf8), with: key, context: "acme/github")
        let keyring = Keyring(current: key, source: "test")
        var bytes = Array(sealed.sealed)
        bytes[bytes.count / 2] ^= 1
        #expect(throws: PipelineError.self) {
            try SecretBox.open(SealedSecret(keyID: sealed.keyID, sealed: Data(bytes)), keyring: keyring, context: "acme/github")
        }
        #expect(throws: PipelineError.self) { try SecretBox.open(sealed, keyring: keyring, context: "globex/github") }
        let other = try SecretKey.generate()
        do {
            _ = try SecretBox.open(sealed, keyring: Keyring(current: other, source: "/etc/keys"), context: "acme/github")
            Issue.record("opened with the wrong key")
        } catch let error as PipelineError {
            #expect(error.message.contains("sealed with key \(key.id), which is not among the keys of /etc/keys"))
        }
        // An older key in the keyring still opens what it sealed.
        #expect(try SecretBox.open(sealed, keyring: Keyring(current: other, previous: [key], source: "test"), context: "acme/github")
                == Data("token".utf8))
    }

    @Test func keysAreReadAsBase64OrHexAndAKeyFileOthersCanReadIsRefused() throws {
        #expect(try SecretKey(encoded: Data(Array(0..<32)).base64EncodedString()).id == key.id)
        #expect(try SecretKey(encoded: String(repeating: "0a", count: 32)).id != key.id)
        #expect(throws: PipelineError.self) { try SecretKey(encoded: "c2hvcnQ=") }
        let file = try ExternalTool.temporaryDirectory().appendingPathComponent("keys")
        let newer = try SecretKey.generate()
        try Keyring.write([key, newer], to: file)
        #expect(try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int == 0o600)
        let keyring = try Keyring.read(file: file)
        #expect(keyring.current.id == newer.id)
        #expect(keyring.previous.map(\.id) == [key.id])
        chmod(file.path, 0o644)
        do {
            _ = try Keyring.read(file: file)
            Issue.record("a world-readable key file was accepted")
        } catch let error as PipelineError {
            #expect(error.message.contains("may be read by others (mode 644): chmod 600 it"))
        }
    }
}
