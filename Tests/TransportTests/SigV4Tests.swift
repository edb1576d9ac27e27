import Cryptography
import Foundation
import Pipeline
import Testing
@testable import Transport

/// A raw HTTP request of the AWS test suites: request line, headers (continuation lines start
/// with white space), blank line, body.
struct RawRequest {
    let method: String
    let path: String
    let query: [(String, String)]
    let headers: [(String, String)]
    let body: Data

    /// `foldContinuations`: a continuation line belongs to the value above (RFC 7230 obs-fold, as
    /// aws-c-auth reads it); otherwise it is a further value of the same header (as the 2015 suite does).
    init(_ text: String, foldContinuations: Bool = false) {
        let parts = text.components(separatedBy: "\n\n")
        var lines = parts[0].components(separatedBy: "\n")
        let requestLine = lines.removeFirst()
        let space = requestLine.firstIndex(of: " ")!
        method = String(requestLine[..<space])
        var target = String(requestLine[requestLine.index(after: space)...])
        if target.hasSuffix(" HTTP/1.1") { target = String(target.dropLast(" HTTP/1.1".count)) }
        let pieces = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = String(pieces[0])
        query = pieces.count > 1 && !pieces[1].isEmpty ? pieces[1].split(separator: "&").map { item in
            let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(kv[0]).removingPercentEncoding ?? String(kv[0])
            let value = kv.count > 1 ? (String(kv[1]).removingPercentEncoding ?? String(kv[1])) : ""
            return (key, value)
        } : []
        var headers: [(String, String)] = []
        for line in lines where !line.isEmpty {
            if line.first == " " || line.first == "\t" {
                if foldContinuations {
                    let last = headers.removeLast()
                    headers.append((last.0, last.1 + "\n" + line))
                } else {
                    headers.append((headers.last!.0, line.trimmingCharacters(in: .whitespaces)))
                }
            } else {
                let colon = line.firstIndex(of: ":")!
                headers.append((String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)))
            }
        }
        self.headers = headers
        body = Data(parts.dropFirst().joined(separator: "\n\n").utf8)
    }

    var signingRequest: SigV4Signer.Request {
        SigV4Signer.Request(method: method, path: path, query: query, headers: headers)
    }
}

let reference = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Reference")

/// A reference vector copied into the repository (see Reference/PROVENANCE.md).
func referenceFile(_ path: String) throws -> String {
    let url = reference.appendingPathComponent(path)
    let data = try #require(FileManager.default.contents(atPath: url.path), "reference data missing: \(url.path)")
    return String(decoding: data, as: UTF8.self)
}

let suiteDate = Date(timeIntervalSince1970: 1_440_938_160)  // 2015-08-30T12:36:00Z

@Suite struct SigV4Tests {
    /// AWS's aws-sig-v4-test-suite: 31 requests, each with its canonical request, string to sign
    /// and Authorization header.
    @Test func theOfficialTestSuiteSignsEveryRequestAsAWSDoes() throws {
        let text = try referenceFile("aws-sigv4-testsuite/suite.json")
        let suite = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let cases = try #require(suite["cases"] as? [[String: String]])
        #expect(cases.count == 31)
        let signer = SigV4Signer(credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE",
                                                             secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                                 region: "us-east-1", service: "service")
        for testCase in cases {
            let name = testCase["name"]!
            let raw = RawRequest(testCase["req"]!)
            let payloadHash = try Digest.sha256Hex(raw.body)
            let canonical = signer.canonicalRequest(raw.signingRequest, payloadHash: payloadHash)
            #expect(canonical == testCase["creq"], "\(name): canonical request")
            #expect(try signer.stringToSign(canonicalRequest: canonical, date: suiteDate) == testCase["sts"], "\(name): string to sign")
            var unsigned = raw.signingRequest
            unsigned.headers.removeAll { $0.0.lowercased() == "x-amz-date" }
            let headers = try signer.sign(unsigned, date: suiteDate, payloadHash: payloadHash)
            let authorization = headers.first { $0.0 == "Authorization" }?.1
            #expect(authorization == testCase["authz"], "\(name): Authorization")
        }
    }

    /// awslabs/aws-c-auth's suite: the same requests signed in headers and in the query string
    /// (presigned), with and without path normalization, session tokens and body hashes.
    @Test func theCRTSuiteSignsHeadersAndPresignedQueries() throws {
        let root = reference.appendingPathComponent("aws-c-auth-signing-test-suite-v4")
        let names = try FileManager.default.contentsOfDirectory(atPath: root.path)
        #expect(names.count == 38)
        for name in names.sorted() {
            let dir = "aws-c-auth-signing-test-suite-v4/\(name)/"
            let context = try #require(try JSONSerialization.jsonObject(with: Data(try referenceFile(dir + "context.json").utf8)) as? [String: Any])
            let credentials = context["credentials"] as! [String: String]
            let raw = RawRequest(try referenceFile(dir + "request.txt"), foldContinuations: true)
            let signToken = !(context["omit_session_token"] as? Bool ?? false)
            let signer = SigV4Signer(credentials: AWSCredentials(accessKeyID: credentials["access_key_id"]!,
                                                                 secretAccessKey: credentials["secret_access_key"]!,
                                                                 sessionToken: credentials["token"]),
                                     region: context["region"] as! String, service: context["service"] as! String,
                                     normalizePath: context["normalize"] as? Bool ?? true)
            let signBody = context["sign_body"] as? Bool ?? false
            let payloadHash = try Digest.sha256Hex(raw.body)

            let headers = try signer.sign(raw.signingRequest, date: suiteDate, payloadHash: payloadHash, signPayloadHeader: signBody,
                                      signSessionToken: signToken)
            let signature = headers.first { $0.0 == "Authorization" }?.1.components(separatedBy: "Signature=").last
            let expectedHeader = try referenceFile(dir + "header-signature.txt").trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(signature == expectedHeader, "\(name): header signature")

            let expires = context["expiration_in_seconds"] as? Int ?? 3600
            let query = try signer.presign(raw.signingRequest, date: suiteDate, expires: expires, payloadHash: payloadHash,
                                       signSessionToken: signToken)
            #expect(query.last?.0 == "X-Amz-Signature")
            let expectedQuery = try referenceFile(dir + "query-signature.txt").trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(query.last?.1 == expectedQuery, "\(name): presigned signature")
        }
    }

    /// The examples of the S3 documentation: GET and PUT objects (a key with `$`), a valueless
    /// subresource, a listing, and a presigned URL, each rebuilt from its method, path, query and
    /// headers.
    @Test func theS3DocumentationExamplesSignAsPublished() throws {
        let text = try referenceFile("aws-s3-sigv4-doc-examples/s3_sigv4_doc_examples.json")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let common = try #require(document["common"] as? [String: String])
        let examples = try #require(document["examples"] as? [[String: Any]])
        let signer = SigV4Signer(credentials: AWSCredentials(accessKeyID: common["access_key_id"]!,
                                                             secretAccessKey: common["secret_access_key"]!),
                                 region: "us-east-1", service: "s3")
        #expect(Digest.hex(try signer.signingKey(day: "20130524")) == common["signing_key_hex"])
        let date = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z
        for example in examples {
            let name = example["name"] as! String
            let headers = (example["headers"] as! [String: String]).map { ($0.key, $0.value) }
            let query: [(String, String)] = ((example["query"] as? String) ?? "").split(separator: "&").map { item in
                let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                return (String(kv[0]), kv.count > 1 ? String(kv[1]) : "")
            }
            let request = SigV4Signer.Request(method: example["method"] as! String, path: example["path"] as! String,
                                              query: query, headers: headers)
            let payloadHash = example["payload_sha256"] as! String
            if let expires = example["expires_seconds"] as? Int {
                let items = try signer.presign(request, date: date, expires: expires, payloadHash: payloadHash)
                #expect(items.last?.1 == example["signature"] as? String, "\(name)")
                let url = "https://examplebucket.s3.amazonaws.com/test.txt?" + items.map {
                    "\(SigV4Signer.encode($0.0))=\(SigV4Signer.encode($0.1))" }.joined(separator: "&")
                #expect(url == example["presigned_url"] as? String)
            } else {
                let canonical = signer.canonicalRequest(request, payloadHash: payloadHash)
                #expect(canonical == example["canonical_request"] as? String, "\(name)")
                let sts = try signer.stringToSign(canonicalRequest: canonical, date: date)
                #expect(try signer.signature(stringToSign: sts, date: date) == example["signature"] as? String, "\(name)")
            }
        }
        #expect(examples.count == 5)
    }

    @Test func s3PathsAreEncodedOnceAndNotNormalized() {
        let signer = SigV4Signer(credentials: AWSCredentials(accessKeyID: "a", secretAccessKey: "b"), region: "us-east-1", service: "s3")
        #expect(signer.canonicalURI("/test$file.text") == "/test%24file.text")
        #expect(signer.canonicalURI("/a//b/../c d") == "/a//b/../c%20d")
        #expect(SigV4Signer.canonicalQuery([("lifecycle", "")]) == "lifecycle=")
    }

    @Test func credentialsNeverPrintTheirSecret() {
        let credentials = AWSCredentials(accessKeyID: "AKID", secretAccessKey: "very-secret", sessionToken: "tok")
        #expect(!"\(credentials)".contains("very-secret"))
        #expect(!"\(credentials)".contains("tok)"))
    }
}
