import Cryptography
import Foundation
import PipelineTesting
import Testing

/// Ed25519 through OpenSSL, checked against RFC 8032 section 7.1 and read back by the openssl
/// command line, as an auditor would.
@Suite struct SigningTests {
    static func bytes(_ hex: String) -> [UInt8] {
        stride(from: 0, to: hex.count, by: 2).map { offset in
            let start = hex.index(hex.startIndex, offsetBy: offset)
            return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)!
        }
    }

    /// RFC 8032 7.1, TEST 1 (the empty message) and TEST 2 (one byte, 0x72).
    @Test(arguments: [
        ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
         "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
         "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
        ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
         "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
         "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ])
    func rfc8032Vectors(_ secret: String, _ publicKey: String, _ message: String, _ signature: String) throws {
        let key = try SigningKey(encoded: secret)
        #expect(key.publicKey.raw == Self.bytes(publicKey))
        #expect(try key.sign(Self.bytes(message)) == Self.bytes(signature))
        #expect(key.publicKey.verify(Self.bytes(signature), of: Self.bytes(message)))
        var tampered = Self.bytes(signature)
        tampered[0] ^= 1
        #expect(!key.publicKey.verify(tampered, of: Self.bytes(message)))
        #expect(!key.publicKey.verify(Self.bytes(signature), of: Self.bytes(message) + [0]))
    }

    /// The public key in PEM, a signature and openssl alone: what an auditor checks a bundle with.
    @Test func opensslVerifiesWithThePEMPublicKey() throws {
        try ExternalTool.require("openssl")
        let key = try SigningKey.generate()
        let folder = try ExternalTool.temporaryDirectory()
        let message = Data("{\"files\": []}\n".utf8)
        try message.write(to: folder.appendingPathComponent("manifest.json"))
        try Data(try key.sign(Array(message))).write(to: folder.appendingPathComponent("manifest.json.sig"))
        try key.publicKey.pem.write(to: folder.appendingPathComponent("public.pem"), atomically: true, encoding: .utf8)
        let verified = try ExternalTool.run("openssl", ["pkeyutl", "-verify", "-pubin", "-inkey", "public.pem", "-rawin",
                                                         "-in", "manifest.json", "-sigfile", "manifest.json.sig"], directory: folder)
        #expect(verified.status == 0, "\(verified.stdout)\(verified.stderr)")
        #expect(verified.stdout.contains("Signature Verified Successfully"))
        try Data("{\"files\": [1]}\n".utf8).write(to: folder.appendingPathComponent("manifest.json"))
        #expect(try ExternalTool.run("openssl", ["pkeyutl", "-verify", "-pubin", "-inkey", "public.pem", "-rawin",
                                                 "-in", "manifest.json", "-sigfile", "manifest.json.sig"], directory: folder).status != 0)
    }

    @Test func keysAreNamedByTheirFingerprintAndRefusedWhenMalformed() throws {
        let key = try SigningKey.generate()
        #expect(key.description == key.publicKey.fingerprint && key.description.hasPrefix("ed25519:") && key.description.count == 40)
        #expect(try SigningKey(encoded: key.encoded).publicKey == key.publicKey)
        #expect(throws: (any Error).self) { try SigningKey(encoded: "c2hvcnQ=") }
        #expect(throws: (any Error).self) { try PublicSigningKey(encoded: "not a key") }
    }
}
