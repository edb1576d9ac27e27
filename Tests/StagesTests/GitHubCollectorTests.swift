import Cryptography
import Foundation
import Logging
import Pipeline
@testable import Stages
import Testing

@Suite struct GitHubCollectorTests {
    typealias Op = GitHubCollector.Operation

    @Test func allPagesAreFollowedThroughLinkHeaders() async throws {
        let (_, index) = try await collect("acme")
        let pages = index.evidence(source: "github", operation: Op.listRepositories)
        #expect(pages.map(\.request).sorted() == [
            "GET /organizations/41001/repos?type=all&per_page=100&page=2",
            "GET /orgs/acme-corp/repos?type=all&per_page=100",
        ])
        #expect(index.failures.isEmpty)
    }

    @Test func archivedRepositoriesAreNotAskedAbout() async throws {
        let (_, index) = try await collect("acme")
        let resources = index.evidence(source: "github", operation: Op.getBranchProtection).map(\.resource).sorted()
        #expect(resources == ["acme-corp/api@main", "acme-corp/infra@master", "acme-corp/web@main"])
        #expect(index.evidence(source: "github", operation: Op.checkVulnerabilityAlerts).count == 3)
    }

    @Test func evidenceRecordsWhereItCameFromAndItsHash() async throws {
        let (_, index) = try await collect("acme")
        let org = try #require(index.evidence(source: "github", operation: Op.getOrganization).first)
        #expect(org.request == "GET /orgs/acme-corp")
        #expect(org.resource == "acme-corp")
        #expect(org.status == 200)
        #expect(org.mediaType == "application/json; charset=utf-8")
        #expect(org.collectedAt == asOf)
        #expect(org.freshUntil == asOf.addingTimeInterval(3600))
        #expect(org.sha256 == Digest.sha256Hex(org.body))
        #expect(org.id.count == 64)
        #expect(org.originalKey == "acme/evidence/\(org.id)/original.json")
    }

    @Test func collectingTwiceGivesTheSameEvidence() async throws {
        let (_, first) = try await collect("acme")
        let (_, second) = try await collect("acme")
        #expect(Set(first.all.map(\.id)) == Set(second.all.map(\.id)))
        #expect(Set(first.all.map(\.id)).count == first.all.count)
    }

    @Test func aServerThatKeepsFailingLeavesAFailureNotEvidence() async throws {
        let (_, index) = try await collect("globex")
        let failure = try #require(index.failures.first)
        #expect(index.failures.count == 1)
        #expect(failure.operation == Op.getBranchProtection)
        #expect(failure.resource == "globex/plans@main")
        #expect(failure.reason.contains("answered 500"))
        #expect(index.evidence(source: "github", operation: Op.getBranchProtection, resource: "globex/plans@main").isEmpty)
    }

    @Test func revokedCredentialsLeaveOnlyFailures() async throws {
        let (_, index) = try await collect("initech")
        #expect(index.all.isEmpty)
        #expect(index.failures.count == 3)
        #expect(index.failures.allSatisfy { $0.reason.contains("401") && $0.reason.contains("Bad credentials") })
    }

    @Test func aNextLinkToAnotherHostIsNotFollowed() async throws {
        let dir = try temporaryDirectory()
        let file = dir.appendingPathComponent("github.json").path
        let recording = """
        {"exchanges": [
          {"request": {"method": "GET", "path": "/orgs/acme-corp"}, "response": {"status": 200, "body": "{}"}},
          {"request": {"method": "GET", "path": "/orgs/acme-corp/members?filter=2fa_disabled&per_page=100"},
           "response": {"status": 200, "body": "[]"}},
          {"request": {"method": "GET", "path": "/orgs/acme-corp/repos?type=all&per_page=100"},
           "response": {"status": 200, "headers": [["Link", "<https://evil.example/steal?page=2>; rel=\\"next\\""]], "body": "[]"}}
        ]}
        """
        try recording.write(toFile: file, atomically: true, encoding: .utf8)
        let (_, index) = try await collect("acme", recording: file)
        let failure = try #require(index.failures.first)
        #expect(failure.reason.contains("leaves api.github.com"))
    }
}

@Suite struct LinkHeaderTests {
    @Test func relationsAreParsed() {
        let links = LinkHeader.parse(#"<https://api.github.com/repositories/1/issues?page=2>; rel="next", <https://api.github.com/repositories/1/issues?page=5>; rel="last""#)
        #expect(links["next"]?.absoluteString == "https://api.github.com/repositories/1/issues?page=2")
        #expect(links["last"]?.absoluteString == "https://api.github.com/repositories/1/issues?page=5")
        #expect(links["prev"] == nil)
    }

    /// The real Link headers GitHub sent for five pages (octokit/fixtures paginate-issues): every
    /// page but the last has a next, and following next visits every page once.
    @Test func recordedGitHubPaginationIsFollowedToTheEnd() throws {
        let file = sharedReference.appendingPathComponent("github/octokit-fixtures/paginate-issues.raw-fixture.json")
        guard let data = FileManager.default.contents(atPath: file.path) else {
            if ProcessInfo.processInfo.environment["CI"] != nil { Issue.record("reference data missing: \(file.path)") }
            return
        }
        let all = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        let gets = all.filter { ($0["method"] as? String)?.lowercased() == "get" }
        #expect(gets.count == 5)
        for (index, exchange) in gets.enumerated() {
            let headers = exchange["rawHeaders"] as? [String] ?? []
            let pairs = stride(from: 0, to: headers.count - 1, by: 2).map { (headers[$0], headers[$0 + 1]) }
            let link = try #require(pairs.first { $0.0.lowercased() == "link" }?.1)
            let next = LinkHeader.parse(link)["next"]
            if index == gets.count - 1 {
                #expect(next == nil, "the last page has no next")
            } else {
                let following = try #require(gets[index + 1]["path"] as? String)
                #expect(next?.absoluteString == "https://api.github.com" + following)
            }
        }
    }
}

@Suite struct ReplayTransportTests {
    func write(_ text: String) throws -> String {
        let file = try temporaryDirectory().appendingPathComponent("github.json").path
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    @Test func aCorruptRecordingIsRefusedNamingTheFile() throws {
        let file = try write(#"{"exchanges": [{"request": {"method": "GET", "path": "/x"}, "response": {"status": 200, "body": "#)
        do {
            _ = try ReplayTransport(recording: file)
            Issue.record("accepted a truncated recording")
        } catch {
            #expect("\(error)".hasPrefix("\(file): recording is not valid JSON"))
        }
    }

    @Test func aRecordingWithoutStatusIsRefusedNamingTheExchange() throws {
        let file = try write(#"{"exchanges": [{"request": {"method": "GET", "path": "/x"}, "response": {"body": ""}}]}"#)
        #expect(throws: PipelineError.self) { try ReplayTransport(recording: file) }
        do { _ = try ReplayTransport(recording: file) } catch {
            #expect("\(error)".contains("exchanges[0].response needs a 'status'"))
        }
    }

    @Test func queryOrderDoesNotMatterAndAnswersComeInTurn() async throws {
        let file = try write("""
        {"exchanges": [
          {"request": {"method": "GET", "path": "/x?b=2&a=1"}, "response": {"status": 503}},
          {"request": {"method": "GET", "path": "/x?b=2&a=1"}, "response": {"status": 200, "body": "ok"}}
        ]}
        """)
        let transport = try ReplayTransport(recording: file)
        let request = HTTPRequest(url: URL(string: "https://api.github.com/x?a=1&b=2")!)
        #expect(try await transport.send(request).status == 503)
        #expect(try await transport.send(request).status == 200)
        #expect(try await transport.send(request).body == Data("ok".utf8))
    }

    @Test func anUnrecordedRequestIsAnError() async throws {
        let transport = try ReplayTransport(recording: try write(#"{"exchanges": []}"#))
        await #expect(throws: PipelineError.self) {
            _ = try await transport.send(HTTPRequest(url: URL(string: "https://api.github.com/nope")!))
        }
    }
}
