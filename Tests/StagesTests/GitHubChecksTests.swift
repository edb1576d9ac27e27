import Foundation
import Pipeline
import PipelineTesting
@testable import Stages
import Testing

typealias Op = GitHubCollector.Operation

let acmeOrg = Organization(id: try! OrganizationID("acme"), name: "Acme", integrations: [:])

/// One built-in check, described by the repository's catalog, over an index.
func evaluate(_ check: Check, _ index: EvidenceIndex) -> CheckResult {
    let described = RepositoryCatalog.shared.check(check.id).map(check.described(by:)) ?? check
    return CheckValidator(checks: [described]).evaluate(index, frameworks: ["soc2", "iso27001"], organization: acmeOrg)[0]
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
    /// A control takes its worst check's status; scores weigh each evaluated check by severity
    /// (these unknown checks weigh as medium: CC8.1 2 of 4, CC6.1 2 of 2).
    @Test func aControlTakesItsWorstCheckAndScoresWeighChecks() {
        let controls = [ControlRef(framework: "soc2", id: "CC8.1")]
        let results = [
            CheckResult(checkID: "a", title: "a", controls: controls, status: .pass, reason: "", evidenceIDs: ["e1"]),
            CheckResult(checkID: "b", title: "b", controls: controls, status: .notVerified, reason: "", evidenceIDs: []),
            CheckResult(checkID: "c", title: "c", controls: [ControlRef(framework: "soc2", id: "CC6.1")], status: .pass,
                        reason: "", evidenceIDs: ["e2"]),
            CheckResult(checkID: "d", title: "d", controls: [ControlRef(framework: "soc2", id: "CC7.1")],
                        status: .notApplicable, reason: "", evidenceIDs: []),
        ]
        let score = ControlScorer(catalog: RepositoryCatalog.shared).score(results, frameworks: ["soc2"]).frameworks[0]
        #expect(score.controls.map(\.control.id) == ["CC6.1", "CC7.1", "CC8.1"])
        #expect(score.controls.map(\.status) == [.pass, .notApplicable, .notVerified])
        #expect(score.passed == 1)
        #expect(score.notVerified == 1)
        #expect(score.evaluated == 2)
        #expect(score.percentText == "67%")
        #expect(score.controls.map(\.points) == [2, 0, 2] && score.controls.map(\.possible) == [2, 0, 4])
        #expect(score.controls[2].title == "Changes are authorized, tested, approved and implemented")
    }

    @Test func acmeAndGlobexScoreDifferently() async throws {
        var percents: [String] = []
        for org in ["acme", "globex", "initech"] {
            let collected = try await collect(org)
            let results = CheckValidator(catalog: RepositoryCatalog.shared).evaluate(collected.index, frameworks: ["soc2", "iso27001"],
                                                    organization: collected.organization)
            #expect(results.count == RepositoryCatalog.shared.checks.count { $0.source == "github" })
            percents.append(ControlScorer(catalog: RepositoryCatalog.shared).score(results, frameworks: ["soc2", "iso27001"]).percentText)
            if org == "initech" { #expect(results.allSatisfy { $0.status == .notVerified }) }
        }
        #expect(percents == ["83%", "0%", "0%"])
    }
}

/// Rulesets protect a branch as classic protection does; each property is the stricter of the two,
/// and what neither establishes is never passed.
@Suite struct RulesetTests {
    func rules(_ repo: String, _ branch: String, _ types: [String], reviews: Int = 1) -> Answer {
        let list = types.map { type in
            type == "pull_request"
                ? #"{"type":"pull_request","ruleset_source_type":"Organization","parameters":{"required_approving_review_count":\#(reviews)}}"#
                : #"{"type":"\#(type)","ruleset_source_type":"Repository"}"#
        }
        return githubEvidence(Op.getBranchRules, resource: "acme-corp/\(repo)@\(branch)", json: "[\(list.joined(separator: ","))]")
    }

    let notProtected = protection("web", "trunk", #"{"message":"Branch not protected"}"#, status: 404)

    @Test func aBranchProtectedByRulesetsAlonePasses() {
        let answers = [repos, goodProtections[0], notProtected,
                       rules("web", "trunk", ["pull_request", "non_fast_forward", "deletion"])]
        for check in [GitHubChecks.defaultBranchRequiresReview, GitHubChecks.forcePushesBlocked, GitHubChecks.branchDeletionBlocked] {
            let result = evaluate(check, index(answers))
            #expect(result.status == .pass, "\(check.id): \(result.reason) \(result.findings)")
            #expect(result.evidenceIDs.count == 4)  // the listing, two protections and the rules
        }
        // Whether administrators may bypass a ruleset is not in this answer.
        let admins = evaluate(GitHubChecks.adminsFollowProtection, index(answers))
        #expect(admins.status == .notVerified)
        #expect(admins.findings == ["acme-corp/web: protected by rulesets alone, whose bypass lists this check does not read"])
    }

    @Test func whatNoRuleRestrictsIsAllowedOnARulesetOnlyBranch() {
        let answers = [repos, goodProtections[0], notProtected, rules("web", "trunk", ["deletion"])]
        #expect(evaluate(GitHubChecks.forcePushesBlocked, index(answers)).findings == ["acme-corp/web: force pushes are allowed"])
        #expect(evaluate(GitHubChecks.defaultBranchRequiresReview, index(answers)).findings
                == ["acme-corp/web: pull request reviews are not required"])
        #expect(evaluate(GitHubChecks.branchDeletionBlocked, index(answers)).status == .pass)
    }

    @Test func aRuleTightensClassicProtection() {
        let loose = protection("web", "trunk", protectionJSON(reviews: nil, force: true))
        let answers = [repos, goodProtections[0], loose, rules("web", "trunk", ["pull_request", "non_fast_forward"], reviews: 2)]
        #expect(evaluate(GitHubChecks.defaultBranchRequiresReview, index(answers)).status == .pass)
        #expect(evaluate(GitHubChecks.forcePushesBlocked, index(answers)).status == .pass)
    }

    /// A protection the token cannot read, beside rules that say nothing of reviews: unknown, not failed.
    @Test func anUnreadableProtectionIsNeverFailedByRulesThatSayNothing() {
        let hidden = CollectionFailure(source: "github", operation: Op.getBranchProtection, resource: "acme-corp/web@trunk",
                                       reason: "answered 403: \"Resource not accessible by integration\"")
        let answers = [repos, goodProtections[0], rules("web", "trunk", ["non_fast_forward"])]
        let review = evaluate(GitHubChecks.defaultBranchRequiresReview, index(answers, failures: [hidden]))
        #expect(review.status == .notVerified, "\(review.findings)")
        #expect(evaluate(GitHubChecks.forcePushesBlocked, index(answers, failures: [hidden])).status == .pass)
    }

    @Test func rulesThatCouldNotBeReadLeaveAnUnprotectedBranchNotVerified() {
        let failed = CollectionFailure(source: "github", operation: Op.getBranchRules, resource: "acme-corp/web@trunk",
                                       reason: "answered 500")
        let result = evaluate(GitHubChecks.forcePushesBlocked, index([repos, goodProtections[0], notProtected], failures: [failed]))
        #expect(result.status == .notVerified)
        #expect(result.findings.first?.contains("answered 500") == true)
    }
}

@Suite struct OrganizationPeopleAndSecurityTests {
    func org(_ json: String) -> Answer { githubEvidence(Op.getOrganization, resource: "acme-corp", json: json) }
    func people(_ operation: String, _ logins: [String]) -> Answer {
        githubEvidence(operation, resource: "acme-corp", json: "[" + logins.map { #"{"login":"\#($0)"}"# }.joined(separator: ",") + "]")
    }

    @Test func aWritableDefaultPermissionFails() {
        let result = evaluate(GitHubChecks.defaultRepositoryPermission, index([org(#"{"login":"acme-corp","default_repository_permission":"write"}"#)]))
        #expect(result.status == .fail)
        #expect(result.findings == ["acme-corp: default_repository_permission is write"])
        #expect(evaluate(GitHubChecks.defaultRepositoryPermission, index([org(#"{"default_repository_permission":"read"}"#)])).status == .pass)
        #expect(evaluate(GitHubChecks.publicRepositoryCreationRestricted, index([org(#"{"login":"x"}"#)])).status == .notVerified)
    }

    @Test(arguments: [(["amy"], CheckStatus.fail), (["amy", "bo"], .pass), (["a", "b", "c", "d", "e", "f"], .fail)])
    func ownersAreTwoToFive(_ owners: [String], _ expected: CheckStatus) {
        let result = evaluate(GitHubChecks.ownersLimited, index([people(Op.listOwners, owners)]))
        #expect(result.status == expected, "\(result.reason)")
        if expected == .fail { #expect(result.findings.count == owners.count) }
    }

    @Test func outsideCollaboratorsWithout2FAAreNamed() {
        let all = people(Op.listOutsideCollaborators, ["zoe", "kim"])
        let result = evaluate(GitHubChecks.outsideCollaboratorsHave2FA, index([all, people(Op.listOutsideCollaboratorsWithout2FA, ["zoe"])]))
        #expect(result.status == .fail)
        #expect(result.findings == ["zoe: outside collaborator without two-factor authentication"])
        let none = evaluate(GitHubChecks.outsideCollaboratorsHave2FA,
                            index([people(Op.listOutsideCollaborators, []), people(Op.listOutsideCollaboratorsWithout2FA, [])]))
        #expect(none.status == .notApplicable)
        let failed = CollectionFailure(source: "github", operation: Op.listOutsideCollaboratorsWithout2FA, resource: "acme-corp",
                                       reason: "answered 403")
        #expect(evaluate(GitHubChecks.outsideCollaboratorsHave2FA, index([all], failures: [failed])).status == .notVerified)
    }

    @Test func secretScanningIsJudgedPerRepositoryAndHiddenSettingsAreNotVerified() {
        let listing = githubEvidence(Op.listRepositories, resource: "acme-corp", json: """
        [{"name": "api", "security_and_analysis": {"secret_scanning": {"status": "enabled"}, "secret_scanning_push_protection": {"status": "disabled"}}},
         {"name": "web", "security_and_analysis": {"secret_scanning": {"status": "enabled"}, "secret_scanning_push_protection": {"status": "enabled"}}}]
        """)
        #expect(evaluate(GitHubChecks.secretScanningEnabled, index([listing])).status == .pass)
        let push = evaluate(GitHubChecks.pushProtectionEnabled, index([listing]))
        #expect(push.status == .fail)
        #expect(push.findings == ["acme-corp/api: push protection is disabled"])
        let hidden = githubEvidence(Op.listRepositories, resource: "acme-corp", json: #"[{"name": "api"}]"#)
        #expect(evaluate(GitHubChecks.secretScanningEnabled, index([hidden])).status == .notVerified)
    }

    @Test func auditLogStreamingNeedsAnEnterprise() {
        let team = org(#"{"login":"acme-corp","plan":{"name":"team"}}"#)
        #expect(evaluate(GitHubChecks.auditLogStreamed, index([team])).status == .notApplicable)
        let enterprise = org(#"{"login":"acme-corp","plan":{"name":"enterprise"}}"#)
        #expect(evaluate(GitHubChecks.auditLogStreamed, index([enterprise])).status == .notVerified)
        func streams(_ json: String) -> Answer { githubEvidence(Op.listAuditLogStreams, resource: "acme-inc", json: json) }
        let on = evaluate(GitHubChecks.auditLogStreamed, index([enterprise, streams(#"[{"stream_type":"Splunk","enabled":true}]"#)]))
        #expect(on.status == .pass)
        let paused = evaluate(GitHubChecks.auditLogStreamed, index([enterprise, streams(#"[{"stream_type":"Amazon S3","enabled":false}]"#)]))
        #expect(paused.status == .fail)
        #expect(paused.findings == ["acme-inc: Amazon S3 stream paused"])
    }
}
