import Foundation
import Pipeline
import PipelineTesting
@testable import Stages
import Testing

/// Declarative checks from the catalog: resources named, offenders listed, and nothing passed that
/// could not be evaluated.
@Suite struct DeclarativeCheckTests {
    func catalog(_ check: String) throws -> Catalog {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("declared-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("frameworks"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("checks"), withIntermediateDirectories: true)
        try """
        id: soc2
        title: SOC 2
        controls: [{id: CC6.1, title: Logical access}]
        """.write(to: root.appendingPathComponent("frameworks/soc2.yml"), atomically: true, encoding: .utf8)
        try ("checks:\n" + check).write(to: root.appendingPathComponent("checks/c.yml"), atomically: true, encoding: .utf8)
        let result = CatalogLoader(sources: ["github"]).load(folder: root.path)
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics)")
        return result.catalog
    }

    static let repositories = """
      - id: github.repos-private
        title: Repositories are private
        severity: high
        controls: {soc2: [CC6.1]}
        source: github
        evidence: repos/list-for-org
        each: "@"
        resource: "{full_name}"
        applies: archived != true
        pass: private == true and age(pushed_at) <= 365d
    """

    func run(_ catalog: Catalog, _ answers: [Answer], failures: [CollectionFailure] = []) -> CheckResult {
        let validator = CheckValidator(catalog: catalog)
        return validator.evaluate(index(answers, failures: failures, validator: validator), frameworks: ["soc2"], organization: acmeOrg)[0]
    }

    func listing(_ json: String) -> Answer { githubEvidence(GitHubCollector.Operation.listRepositories, resource: "acme-corp", json: json) }

    @Test func everyOffendingResourceIsNamed() throws {
        let result = run(try catalog(Self.repositories), [listing("""
        [{"full_name": "acme/api", "private": true, "pushed_at": "2026-11-01T00:00:00Z"},
         {"full_name": "acme/www", "private": false, "pushed_at": "2026-11-01T00:00:00Z"},
         {"full_name": "acme/old", "private": false, "archived": true},
         {"full_name": "acme/stale", "private": true, "pushed_at": "2024-01-01T00:00:00Z"}]
        """)])
        #expect(result.status == .fail)
        #expect(result.findings == ["acme/stale: does not satisfy private == true and age(pushed_at) <= 365d",
                                    "acme/www: does not satisfy private == true and age(pushed_at) <= 365d"])
        #expect(result.reason == "2 of 3 resources fail: Repositories are private.")
        #expect(result.controls == [ControlRef(framework: "soc2", id: "CC6.1")])
    }

    @Test func passAndNotApplicable() throws {
        let catalog = try catalog(Self.repositories)
        #expect(run(catalog, [listing(#"[{"full_name": "acme/api", "private": true, "pushed_at": "2026-11-27T00:00:00Z"}]"#)]).status == .pass)
        #expect(run(catalog, [listing(#"[{"full_name": "acme/old", "archived": true}]"#)]).status == .notApplicable)
        #expect(run(catalog, [listing("[]")]).status == .notApplicable)
    }

    @Test func whatCannotBeEvaluatedOrCollectedIsNotVerified() throws {
        let catalog = try catalog(Self.repositories)
        let odd = run(catalog, [listing(#"[{"full_name": "acme/api", "private": true, "pushed_at": "last week"}]"#)])
        #expect(odd.status == .notVerified)
        #expect(odd.findings == ["acme/api: cannot be evaluated: 'last week' is not a timestamp"])
        let failure = CollectionFailure(source: "github", operation: GitHubCollector.Operation.listRepositories, resource: "acme-corp",
                                        reason: "answered 403")
        let missing = run(catalog, [], failures: [failure])
        #expect(missing.status == .notVerified)
        #expect(missing.reason.contains("answered 403"))
    }

    /// Only the fields the expressions and the resource name are kept of each body.
    @Test func onlyTheFieldsTheCheckNamesAreRead() throws {
        let validator = CheckValidator(catalog: try catalog(Self.repositories))
        let answer = listing(#"[{"full_name": "acme/api", "private": true, "pushed_at": "2026-11-27T00:00:00Z", "secret": "x", "owner": {"login": "acme"}}]"#)
        guard case .value(let kept)? = validator.facts(of: answer.evidence, body: answer.body) else {
            Issue.record("no facts")
            return
        }
        #expect(kept.array?.first?.object?.keys.sorted() == ["full_name", "private", "pushed_at"])
    }
}
