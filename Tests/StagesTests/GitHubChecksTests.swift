import Foundation
import Pipeline
@testable import Stages
import Testing

typealias Op = GitHubCollector.Operation

let acmeOrg = Organization(id: try! OrganizationID("acme"), name: "Acme", integrations: [:])

func evaluate(_ check: Check, _ index: EvidenceIndex) -> CheckResult {
    CheckValidator(checks: [check]).evaluate(index, frameworks: ["soc2", "iso27001"], organization: acmeOrg)[0]
}

let repos = githubEvidence(Op.listRepositories, resource: "acme-corp", json: """
[{"name": "api", "default_branch": "main", "archived": false},
 {"name": "old", "default_branch": "main", "archived": true},
 {"name": "web", "default_branch": "trunk"}]
""")

func protectionJSON(reviews: Int? = 1, admins: Bool = true, force: Bool = false, deletions: Bool = false) -> String {
    let review = reviews.map { #""required_pull_request_reviews": {"required_approving_review_count": \#($0)},"# } ?? ""
    return """
    {\(review) "enforce_admins": {"enabled": \(admins)}, "allow_force_pushes": {"enabled": \(force)},
     "allow_deletions": {"enabled": \(deletions)}}
    """
}

func protection(_ repo: String, _ branch: String, _ json: String, status: Int = 200) -> Answer {
    githubEvidence(Op.getBranchProtection, resource: "acme-corp/\(repo)@\(branch)", status: status, json: json)
}

let goodProtections = [protection("api", "main", protectionJSON()), protection("web", "trunk", protectionJSON())]

@Suite struct OrganizationChecksTests {
    func org(_ json: String) -> Answer { githubEvidence(Op.getOrganization, resource: "acme-corp", json: json) }

    @Test func requiredTwoFactorPasses() {
        let result = evaluate(GitHubChecks.organizationRequires2FA, index([org(#"{"login":"acme-corp","two_factor_requirement_enabled":true}"#)]))
        #expect(result.status == .pass)
        #expect(result.evidenceIDs.count == 1)
    }

    @Test func optionalTwoFactorFails() {
        let result = evaluate(GitHubChecks.organizationRequires2FA, index([org(#"{"login":"acme-corp","two_factor_requirement_enabled":false}"#)]))
        #expect(result.status == .fail)
        #expect(result.findings == ["acme-corp: two_factor_requirement_enabled is false"])
    }

    @Test func aSettingHiddenFromTheTokenIsNotVerified() {
        let result = evaluate(GitHubChecks.organizationRequires2FA, index([org(#"{"login":"acme-corp","two_factor_requirement_enabled":null}"#)]))
        #expect(result.status == .notVerified)
        #expect(result.reason.contains("organization owner"))
    }

    @Test func missingEvidenceIsNotVerifiedWithTheReason() {
        let failure = CollectionFailure(source: "github", operation: Op.getOrganization, resource: "acme-corp",
                                        reason: "GET /orgs/acme-corp answered 401: \"Bad credentials\"")
        let result = evaluate(GitHubChecks.organizationRequires2FA, index([], failures: [failure]))
        #expect(result.status == .notVerified)
        #expect(result.reason.contains("Bad credentials"))
    }

    @Test func aTruncatedBodyIsNotVerifiedNeverPassed() {
        let result = evaluate(GitHubChecks.organizationRequires2FA, index([org(#"{"login":"acme-corp","two_factor_requirement_ena"#)]))
        #expect(result.status == .notVerified)
    }

    func members(_ json: String) -> Answer { githubEvidence(Op.listMembersWithout2FA, resource: "acme-corp", json: json) }

    @Test func noMemberWithout2FAPasses() {
        #expect(evaluate(GitHubChecks.membersHave2FA, index([members("[]")])).status == .pass)
    }

    @Test func membersWithout2FAFailAndAreNamed() {
        let result = evaluate(GitHubChecks.membersHave2FA, index([members(#"[{"login":"zed"},{"login":"amy"}]"#)]))
        #expect(result.status == .fail)
        #expect(result.findings == ["amy: two-factor authentication disabled", "zed: two-factor authentication disabled"])
    }

    @Test func aMissingPageMakesTheMemberCheckNotVerified() {
        let failure = CollectionFailure(source: "github", operation: Op.listMembersWithout2FA, resource: "acme-corp",
                                        reason: "page 2 answered 502")
        #expect(evaluate(GitHubChecks.membersHave2FA, index([members("[]")], failures: [failure])).status == .notVerified)
    }
}

@Suite struct RepositoryChecksTests {
    static let protectionChecks = [GitHubChecks.defaultBranchRequiresReview, GitHubChecks.forcePushesBlocked,
                                   GitHubChecks.branchDeletionBlocked, GitHubChecks.adminsFollowProtection]

    @Test(arguments: protectionChecks.indices)
    func wellProtectedBranchesPass(_ n: Int) {
        let result = evaluate(Self.protectionChecks[n], index([repos] + goodProtections))
        #expect(result.status == .pass, "\(result.checkID): \(result.reason)")
        #expect(result.evidenceIDs.count == 3)
    }

    @Test(arguments: protectionChecks.indices)
    func anUnprotectedBranchFails(_ n: Int) {
        let unprotected = protection("web", "trunk", #"{"message":"Branch not protected"}"#, status: 404)
        let result = evaluate(Self.protectionChecks[n], index([repos, goodProtections[0], unprotected]))
        #expect(result.status == .fail)
        #expect(result.findings == ["acme-corp/web: default branch is not protected"])
    }

    @Test func missingReviewsFail() {
        let weak = protection("web", "trunk", protectionJSON(reviews: nil))
        let result = evaluate(GitHubChecks.defaultBranchRequiresReview, index([repos, goodProtections[0], weak]))
        #expect(result.status == .fail)
        #expect(result.findings == ["acme-corp/web: pull request reviews are not required"])
        let zero = protection("web", "trunk", protectionJSON(reviews: 0))
        #expect(evaluate(GitHubChecks.defaultBranchRequiresReview, index([repos, goodProtections[0], zero])).status == .fail)
    }

    @Test func allowedForcePushesFail() {
        let weak = protection("api", "main", protectionJSON(force: true))
        let result = evaluate(GitHubChecks.forcePushesBlocked, index([repos, weak, goodProtections[1]]))
        #expect(result.status == .fail)
        #expect(result.findings == ["acme-corp/api: force pushes are allowed"])
    }

    @Test func allowedDeletionFails() {
        let weak = protection("api", "main", protectionJSON(deletions: true))
        #expect(evaluate(GitHubChecks.branchDeletionBlocked, index([repos, weak, goodProtections[1]])).status == .fail)
    }

    @Test func adminsBypassingProtectionFail() {
        let weak = protection("api", "main", protectionJSON(admins: false))
        #expect(evaluate(GitHubChecks.adminsFollowProtection, index([repos, weak, goodProtections[1]])).status == .fail)
    }

    @Test func oneRepositoryNotCollectedMakesThePassNotVerified() {
        let failure = CollectionFailure(source: "github", operation: Op.getBranchProtection, resource: "acme-corp/web@trunk",
                                        reason: "answered 500")
        let result = evaluate(GitHubChecks.forcePushesBlocked, index([repos, goodProtections[0]], failures: [failure]))
        #expect(result.status == .notVerified)
        #expect(result.findings == ["acme-corp/web: evidence could not be collected: answered 500"])
    }

    @Test func aFailureOutranksMissingEvidence() {
        let weak = protection("api", "main", protectionJSON(force: true))
        let result = evaluate(GitHubChecks.forcePushesBlocked, index([repos, weak]))
        #expect(result.status == .fail)
        #expect(result.findings.count == 2)
    }

    @Test func noRepositoryListMeansNotVerified() {
        #expect(evaluate(GitHubChecks.forcePushesBlocked, index(goodProtections)).status == .notVerified)
    }

    @Test func anOrganizationWithoutActiveRepositoriesIsNotApplicable() {
        let none = githubEvidence(Op.listRepositories, resource: "acme-corp", json: #"[{"name":"old","archived":true}]"#)
        #expect(evaluate(GitHubChecks.forcePushesBlocked, index([none])).status == .notApplicable)
    }

    func alerts(_ repo: String, _ status: Int) -> Answer {
        githubEvidence(Op.checkVulnerabilityAlerts, resource: "acme-corp/\(repo)", status: status, json: "")
    }

    @Test func dependabotAlertsOnEverywherePass() {
        #expect(evaluate(GitHubChecks.dependabotAlertsEnabled, index([repos, alerts("api", 204), alerts("web", 204)])).status == .pass)
    }

    @Test func dependabotAlertsOffSomewhereFail() {
        let result = evaluate(GitHubChecks.dependabotAlertsEnabled, index([repos, alerts("api", 204), alerts("web", 404)]))
        #expect(result.status == .fail)
        #expect(result.findings == ["acme-corp/web: Dependabot alerts are off"])
    }
}

@Suite struct ScoringTests {
    @Test func aControlTakesItsWorstCheckAndScoresCountControls() {
        let controls = [ControlRef(framework: "soc2", id: "CC8.1")]
        let results = [
            CheckResult(checkID: "a", title: "a", controls: controls, status: .pass, reason: "", evidenceIDs: ["e1"]),
            CheckResult(checkID: "b", title: "b", controls: controls, status: .notVerified, reason: "", evidenceIDs: []),
            CheckResult(checkID: "c", title: "c", controls: [ControlRef(framework: "soc2", id: "CC6.1")], status: .pass,
                        reason: "", evidenceIDs: ["e2"]),
            CheckResult(checkID: "d", title: "d", controls: [ControlRef(framework: "soc2", id: "CC7.1")],
                        status: .notApplicable, reason: "", evidenceIDs: []),
        ]
        let score = ControlScorer().score(results, frameworks: ["soc2"]).frameworks[0]
        #expect(score.controls.map(\.control.id) == ["CC6.1", "CC7.1", "CC8.1"])
        #expect(score.controls.map(\.status) == [.pass, .notApplicable, .notVerified])
        #expect(score.passed == 1)
        #expect(score.notVerified == 1)
        #expect(score.evaluated == 2)
        #expect(score.percentText == "50%")
        #expect(score.controls[2].title == "Changes are authorized, tested, approved and implemented")
    }

    @Test func acmeAndGlobexScoreDifferently() async throws {
        var percents: [String] = []
        for org in ["acme", "globex", "initech"] {
            let collected = try await collect(org)
            let results = CheckValidator().evaluate(collected.index, frameworks: ["soc2", "iso27001"],
                                                    organization: collected.organization)
            #expect(results.count == 7)
            percents.append(ControlScorer().score(results, frameworks: ["soc2", "iso27001"]).percentText)
            if org == "initech" { #expect(results.allSatisfy { $0.status == .notVerified }) }
        }
        #expect(percents == ["56%", "0%", "0%"])
    }
}
