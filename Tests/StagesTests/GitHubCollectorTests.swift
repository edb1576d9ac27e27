import Cryptography
import Foundation
import Logging
import Pipeline
import PipelineTesting
@testable import Stages
import Testing
@testable import Transport

@Suite struct GitHubCollectorTests {
    typealias Op = GitHubCollector.Operation

    @Test func allPagesAreFollowedThroughLinkHeaders() async throws {
        let index = try await collect("acme").index
        let pages = index.evidence(source: "github", operation: Op.listRepositories)
        #expect(pages.map(\.request).sorted() == [
            "GET /organizations/41001/repos?type=all&per_page=100&page=2",
            "GET /orgs/acme-corp/repos?type=all&per_page=100",
        ])
        #expect(index.failures.isEmpty)
    }

    @Test func archivedRepositoriesAreNotAskedAbout() async throws {
        let index = try await collect("acme").index
        let resources = index.evidence(source: "github", operation: Op.getBranchProtection).map(\.resource).sorted()
        #expect(resources == ["acme-corp/api@main", "acme-corp/infra@master", "acme-corp/web@main"])
        #expect(index.evidence(source: "github", operation: Op.checkVulnerabilityAlerts).count == 3)
    }

    @Test func evidenceRecordsWhereItCameFromAndItsHash() async throws {
        let collected = try await collect("acme")
        let org = try #require(collected.index.evidence(source: "github", operation: Op.getOrganization).first)
        #expect(org.request == "GET /orgs/acme-corp")
        #expect(org.resource == "acme-corp")
        #expect(org.status == 200)
        #expect(org.mediaType == "application/json; charset=utf-8")
        #expect(org.collectedAt == asOf)
        #expect(org.freshUntil == asOf.addingTimeInterval(3600))
        #expect(org.sha256 == (try Digest.sha256Hex(try #require(collected.bodies[org.id]))))
        #expect(org.id.count == 64)
        #expect(org.originalKey == "acme/evidence/\(org.id)/original.json")
    }

    @Test func collectingTwiceGivesTheSameEvidence() async throws {
        let first = try await collect("acme").index
        let second = try await collect("acme").index
        #expect(Set(first.all.map(\.id)) == Set(second.all.map(\.id)))
        #expect(Set(first.all.map(\.id)).count == first.all.count)
    }

    @Test func aServerThatKeepsFailingLeavesAFailureNotEvidence() async throws {
        let index = try await collect("globex").index
        let failure = try #require(index.failures.first)
        #expect(index.failures.count == 1)
        #expect(failure.operation == Op.getBranchProtection)
        #expect(failure.resource == "globex/plans@main")
        #expect(failure.reason.contains("answered 500"))
        #expect(index.evidence(source: "github", operation: Op.getBranchProtection, resource: "globex/plans@main").isEmpty)
    }

    /// The organization answers 401: the source fails at once (one request, not one per
    /// repository), saying the credentials were refused.
    @Test func revokedCredentialsFailTheSourceAtTheFirstAnswer() async throws {
        let index = try await collect("initech").index
        #expect(index.all.isEmpty)
        #expect(index.failures.map(\.operation) == [Op.getOrganization, "*"])
        #expect(index.failures[0].reason.contains("answered 401: \"Bad credentials\""))
        #expect(index.failures[1].reason.contains("GitHub refused the credentials (HTTP 401)"))
    }

    @Test func aNextLinkToAnotherHostIsNotFollowed() async throws {
        let dir = try temporaryDirectory()
        let file = dir.appendingPathComponent("github.jsonl").path
        let recording = """
        {"request": {"method": "GET", "path": "/orgs/acme-corp"}, "response": {"status": 200, "body": "{}"}}
        {"request": {"method": "GET", "path": "/orgs/acme-corp/members?filter=2fa_disabled&per_page=100"}, "response": {"status": 200, "body": "[]"}}
        {"request": {"method": "GET", "path": "/orgs/acme-corp/repos?type=all&per_page=100"}, "response": {"status": 200, "headers": [["Link", "<https://evil.example/steal?page=2>; rel=\\"next\\""]], "body": "[]"}}
        """
        try recording.write(toFile: file, atomically: true, encoding: .utf8)
        let index = try await collect("acme", recording: file).index
        // Other listings of this short recording fail too, in whatever order they finish: the
        // listing whose next page leaves the API is among the failures, named so.
        #expect(index.failures.contains { $0.reason.contains("leaves api.github.com") }, "\(index.failures)")
    }
}

extension GitHubCollectorTests {
    /// A server whose second page links back to the first, its query reordered: the listing ends
    /// there with a warning, and nothing is collected or counted twice.
    @Test func aPaginationLoopEndsTheListingWithoutCountingAnythingTwice() async throws {
        let file = try temporaryDirectory().appendingPathComponent("github.jsonl").path
        let repo = #"[{\"name\":\"api\",\"default_branch\":\"main\"}]"#
        let recording = """
        {"request": {"method": "GET", "path": "/orgs/acme-corp"}, "response": {"status": 200, "body": "{}"}}
        {"request": {"method": "GET", "path": "/orgs/acme-corp/members?filter=2fa_disabled&per_page=100"}, "response": {"status": 200, "body": "[]"}}
        {"request": {"method": "GET", "path": "/orgs/acme-corp/repos?type=all&per_page=100"}, "response": {"status": 200, "headers": [["Link", "<https://api.github.com/orgs/acme-corp/repos?page=2&type=all&per_page=100>; rel=\\"next\\""]], "body": "\(repo)"}}
        {"request": {"method": "GET", "path": "/orgs/acme-corp/repos?type=all&per_page=100&page=2"}, "response": {"status": 200, "headers": [["Link", "<https://api.github.com/orgs/acme-corp/repos?per_page=100&type=all>; rel=\\"next\\""]], "body": "[]"}}
        {"request": {"method": "GET", "path": "/repos/acme-corp/api/branches/main/protection"}, "response": {"status": 404, "body": "{\\"message\\": \\"Branch not protected\\"}"}}
        {"request": {"method": "GET", "path": "/orgs/acme-corp/members?role=admin&per_page=100"}, "response": {"status": 200, "body": "[]"}}
        {"request": {"method": "GET", "path": "/orgs/acme-corp/outside_collaborators?per_page=100"}, "response": {"status": 200, "body": "[]"}}
        {"request": {"method": "GET", "path": "/orgs/acme-corp/outside_collaborators?filter=2fa_disabled&per_page=100"}, "response": {"status": 200, "body": "[]"}}
        {"request": {"method": "GET", "path": "/repos/acme-corp/api/rules/branches/main?per_page=100"}, "response": {"status": 200, "body": "[]"}}
        {"request": {"method": "GET", "path": "/repos/acme-corp/api/vulnerability-alerts"}, "response": {"status": 204}}
        """
        try recording.write(toFile: file, atomically: true, encoding: .utf8)
        let collected = try await collect("acme", recording: file)
        let pages = collected.index.evidence(source: "github", operation: Op.listRepositories)
        #expect(pages.count == 2)
        #expect(collected.index.failures.isEmpty)
        #expect(collected.index.evidence(source: "github", operation: Op.getBranchProtection).count == 1)
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
        let file = reference.appendingPathComponent("octokit-fixtures/paginate-issues.raw-fixture.json")
        let data = try #require(FileManager.default.contents(atPath: file.path), "reference data missing: \(file.path)")
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

    /// 404 is "not protected" only when GitHub says "Branch not protected"; a plain 404 or a 403 is
    /// a token that cannot see the protection, and never reads as unprotected.
    @Test(arguments: [(404, "Not Found"), (403, "Resource not accessible by integration")])
    func aProtectionTheTokenCannotSeeIsNotCollected(_ status: Int, _ message: String) async throws {
        let file = try temporaryDirectory().appendingPathComponent("github.jsonl").path
        let repo = #"[{\"name\":\"api\",\"default_branch\":\"main\"}]"#
        let recording = """
        {"request": {"method": "GET", "path": "/orgs/acme-corp"}, "response": {"status": 200, "body": "{}"}}
        {"request": {"method": "GET", "path": "/orgs/acme-corp/members?filter=2fa_disabled&per_page=100"}, "response": {"status": 200, "body": "[]"}}
        {"request": {"method": "GET", "path": "/orgs/acme-corp/repos?type=all&per_page=100"}, "response": {"status": 200, "body": "\(repo)"}}
        {"request": {"method": "GET", "path": "/repos/acme-corp/api/branches/main/protection"}, "response": {"status": \(status), "body": "{\\"message\\": \\"\(message)\\"}"}}
        {"request": {"method": "GET", "path": "/orgs/acme-corp/members?role=admin&per_page=100"}, "response": {"status": 200, "body": "[]"}}
        {"request": {"method": "GET", "path": "/orgs/acme-corp/outside_collaborators?per_page=100"}, "response": {"status": 200, "body": "[]"}}
        {"request": {"method": "GET", "path": "/orgs/acme-corp/outside_collaborators?filter=2fa_disabled&per_page=100"}, "response": {"status": 200, "body": "[]"}}
        {"request": {"method": "GET", "path": "/repos/acme-corp/api/rules/branches/main?per_page=100"}, "response": {"status": 200, "body": "[]"}}
        {"request": {"method": "GET", "path": "/repos/acme-corp/api/vulnerability-alerts"}, "response": {"status": 204}}
        """
        try recording.write(toFile: file, atomically: true, encoding: .utf8)
        let collected = try await collect("acme", recording: file)
        #expect(collected.index.evidence(source: "github", operation: Op.getBranchProtection).isEmpty)
        let failure = try #require(collected.index.failures.first)
        #expect(failure.reason.contains("answered \(status)"))
        #expect(failure.reason.contains("the token cannot read this branch's protection"))
        let results = CheckValidator(catalog: RepositoryCatalog.shared).evaluate(collected.index, frameworks: ["soc2"], organization: collected.organization)
        #expect(results.first { $0.checkID == "github.force-pushes-blocked" }?.status == .notVerified)
    }
}
