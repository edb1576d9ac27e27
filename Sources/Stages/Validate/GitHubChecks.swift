import Foundation
import Pipeline

/// SOC 2 and ISO/IEC 27001:2022 checks over GitHub organization evidence.
public enum GitHubChecks {
    typealias Op = GitHubCollector.Operation
    static let source = "github"

    public static let all: [Check] = [
        organizationRequires2FA, membersHave2FA, defaultBranchRequiresReview, forcePushesBlocked,
        branchDeletionBlocked, adminsFollowProtection, dependabotAlertsEnabled,
    ]

    static func soc2(_ ids: String...) -> [ControlRef] { ids.map { ControlRef(framework: "soc2", id: $0) } }
    static func iso(_ ids: String...) -> [ControlRef] { ids.map { ControlRef(framework: "iso27001", id: $0) } }

    /// Reason for a missing piece of evidence: the collection failure if there was one.
    static func missing(_ index: EvidenceIndex, _ operation: String, _ what: String, resource: String? = nil) -> String {
        let failures = resource.map { index.failures(source: source, operation: operation, resource: $0) }
            ?? index.failures(source: source, operation: operation)
        if let failure = failures.first { return "\(what) could not be collected: \(failure.reason)" }
        return "\(what) was not collected"
    }

    static func reading(_ operation: String, _ fields: FieldPath...) -> Check.Reading {
        Check.Reading(source: source, operation: operation, fields: fields)
    }

    static let repositoryList = reading(Op.listRepositories, "[].name", "[].archived", "[].default_branch")

    public static let organizationRequires2FA = Check(
        id: "github.org-requires-2fa",
        title: "GitHub organization requires two-factor authentication",
        controls: soc2("CC6.1") + iso("A.5.17", "A.8.5"),
        reads: [reading(Op.getOrganization, "two_factor_requirement_enabled", "login")]
    ) { index, _ in
        guard let evidence = index.evidence(source: source, operation: Op.getOrganization).first else {
            return .init(.notVerified, missing(index, Op.getOrganization, "the organization's settings"))
        }
        guard case .value(let org) = EvidenceReader.object(evidence, in: index) else {
            return .init(.notVerified, "the organization's settings are unreadable", evidence: [evidence])
        }
        switch org["two_factor_requirement_enabled"]?.bool {
        case true?:
            return .init(.pass, "Members must enable two-factor authentication to join.", evidence: [evidence])
        case false?:
            return .init(.fail, "The organization does not require two-factor authentication.",
                         findings: ["\(org["login"]?.string ?? "organization"): two_factor_requirement_enabled is false"],
                         evidence: [evidence])
        default:
            return .init(.notVerified, "two_factor_requirement_enabled is not visible to this token (it needs an organization owner)",
                         evidence: [evidence])
        }
    }

    public static let membersHave2FA = Check(
        id: "github.members-have-2fa",
        title: "Every GitHub organization member has two-factor authentication on",
        controls: soc2("CC6.1", "CC6.2") + iso("A.8.5"),
        reads: [reading(Op.listMembersWithout2FA, "[].login")]
    ) { index, _ in
        let pages = index.evidence(source: source, operation: Op.listMembersWithout2FA)
        let failed = index.failures(source: source, operation: Op.listMembersWithout2FA)
        if pages.isEmpty || !failed.isEmpty {
            return .init(.notVerified, missing(index, Op.listMembersWithout2FA, "the list of members without 2FA"),
                         evidence: pages)
        }
        var logins: [String] = []
        for page in pages {
            guard case .value(let members) = EvidenceReader.array(page, in: index) else {
                return .init(.notVerified, "a page of the members list is unreadable", evidence: pages)
            }
            logins += members.map { $0["login"]?.string ?? "(unknown login)" }
        }
        if logins.isEmpty {
            return .init(.pass, "No member is without two-factor authentication.", evidence: pages)
        }
        return .init(.fail, "\(logins.count) member\(logins.count == 1 ? " has" : "s have") no two-factor authentication.",
                     findings: logins.sorted().map { "\($0): two-factor authentication disabled" }, evidence: pages)
    }

    // MARK: Per-repository checks

    enum RepoVerdict {
        case ok
        case bad(String)
        case unknown(String)
    }

    /// Active (not archived) repositories from every page of the listing, or why they are unknown.
    /// Kept as parallel lists (one entry per repository, by name), so a check walking thousands
    /// of them reads only the positions it needs and touches names only for findings.
    struct ActiveRepositories: Sendable {
        /// `owner/name`, and `owner/name@branch`: the resources of each one's evidence.
        let resources: [String]
        let branchResources: [String]
        /// Where each one's branch protection and alerts evidence are in the index (looked up
        /// once for every check).
        let protection: [Int?]
        let alerts: [Int?]
        let pages: [Evidence]
        let problem: String?

        var count: Int { resources.count }
    }

    /// Active repositories, shared by every per-repository check of a run.
    static func activeRepositories(_ index: EvidenceIndex) -> ActiveRepositories {
        index.derived("github.active-repositories") {
            let (repos, pages, problem) = listActiveRepositories(index)
            let owner = pages.first?.resource ?? ""
            let resources = repos.map { "\(owner)/\($0.name)" }
            let branchResources = repos.map { "\(owner)/\($0.name)@\($0.branch)" }
            return ActiveRepositories(
                resources: resources, branchResources: branchResources,
                protection: branchResources.map { index.position(source: source, operation: Op.getBranchProtection, resource: $0) },
                alerts: resources.map { index.position(source: source, operation: Op.checkVulnerabilityAlerts, resource: $0) },
                pages: pages, problem: problem)
        }
    }

    static func listActiveRepositories(_ index: EvidenceIndex) -> (repos: [(name: String, branch: String)], pages: [Evidence], problem: String?) {
        let pages = index.evidence(source: source, operation: Op.listRepositories)
        if pages.isEmpty || !index.failures(source: source, operation: Op.listRepositories).isEmpty {
            return ([], pages, missing(index, Op.listRepositories, "the repository list"))
        }
        var repos: [(String, String)] = []
        for page in pages {
            guard case .value(let list) = EvidenceReader.array(page, in: index) else {
                return ([], pages, "a page of the repository list is unreadable")
            }
            for repo in list where repo["archived"]?.bool != true {
                if let name = repo["name"]?.string {
                    repos.append((name, repo["default_branch"]?.string ?? "main"))
                }
            }
        }
        // By name, for findings in a stable order; a listing already in that order is kept as it is.
        if zip(repos, repos.dropFirst()).allSatisfy({ $0.0 <= $1.0 }) { return (repos, pages, nil) }
        return (repos.sorted { $0.0 < $1.0 }, pages, nil)
    }

    /// Applies `judge` to every active repository's evidence of `operation` and rolls the verdicts
    /// up: any bad → fail; else any unknown → not_verified; else pass. No repositories → n/a.
    static func perRepository(_ index: EvidenceIndex, operation: String,
                              resources: KeyPath<ActiveRepositories, [String]>,
                              positions: KeyPath<ActiveRepositories, [Int?]>,
                              passReason: String, failReason: String,
                              judge: (_ repo: Int, _ position: Int) -> RepoVerdict) -> Check.Verdict {
        let active = activeRepositories(index)
        if let problem = active.problem { return .init(.notVerified, problem, evidence: active.pages) }
        if active.count == 0 { return .init(.notApplicable, "The organization has no active repositories.", evidence: active.pages) }
        let found = active[keyPath: positions]
        var bad: [String] = []
        var unknown: [String] = []
        for (repo, position) in found.enumerated() {
            guard let position else {
                let resource = active[keyPath: resources][repo]
                unknown.append("\(active.resources[repo]): " + missing(index, operation, "evidence", resource: resource))
                continue
            }
            switch judge(repo, position) {
            case .ok: break
            case .bad(let finding): bad.append("\(active.resources[repo]): \(finding)")
            case .unknown(let why): unknown.append("\(active.resources[repo]): \(why)")
            }
        }
        // Every check of one operation rests on the same evidence: its ids are sorted once.
        let used = index.derived("github.evidence-ids.\(operation)") {
            sortedUniqueIDs(active.pages.map(\.id) + found.compactMap { $0.map { index.all[$0].id } })
        }
        let total = active.count
        if !bad.isEmpty {
            return .init(.fail, "\(bad.count) of \(total) repositories: \(failReason)", findings: bad + unknown, evidenceIDs: used)
        }
        if !unknown.isEmpty {
            return .init(.notVerified, "\(unknown.count) of \(total) repositories could not be verified.",
                         findings: unknown, evidenceIDs: used)
        }
        return .init(.pass, "All \(total) active repositories: \(passReason)", evidenceIDs: used)
    }

    /// What the protection checks read of one default branch's protection, taken from its answer
    /// once for all four of them (they would otherwise each walk thousands of answers).
    struct BranchProtection: Sendable {
        enum State: Sendable {
            case unprotected
            case unreadable(String)
            case rules
        }
        let state: State
        /// The approving reviews required, or nil when reviews are not required.
        let reviews: Int?
        let forcePushes: Bool?
        let deletions: Bool?
        let enforceAdmins: Bool?

        init(_ index: EvidenceIndex, at position: Int) {
            var (reviews, forcePushes, deletions, enforceAdmins): (Int?, Bool?, Bool?, Bool?) = (nil, nil, nil, nil)
            if index.status(at: position) == 404 {
                state = .unprotected
            } else {
                switch EvidenceReader.object(index.all[position], facts: index.facts(at: position)) {
                case .unreadable(let why):
                    state = .unreadable(why)
                case .value(let rules):
                    state = .rules
                    if let required = rules["required_pull_request_reviews"], required.object != nil {
                        reviews = required["required_approving_review_count"]?.int ?? 1
                    }
                    forcePushes = rules["allow_force_pushes"]?["enabled"]?.bool
                    deletions = rules["allow_deletions"]?["enabled"]?.bool
                    enforceAdmins = rules["enforce_admins"]?["enabled"]?.bool
                }
            }
            self.reviews = reviews
            self.forcePushes = forcePushes
            self.deletions = deletions
            self.enforceAdmins = enforceAdmins
        }
    }

    /// Every active repository's branch protection (nil where it was not collected), in the
    /// order of `ActiveRepositories`.
    static func branchProtections(_ index: EvidenceIndex) -> [BranchProtection?] {
        index.derived("github.branch-protections") {
            activeRepositories(index).protection.map { $0.map { BranchProtection(index, at: $0) } }
        }
    }

    /// A judge of each repository's protection: unprotected is bad, unreadable unknown, rules go
    /// to `check`.
    static func protectionRule(_ index: EvidenceIndex, _ check: @escaping (BranchProtection) -> RepoVerdict)
        -> (Int, Int) -> RepoVerdict {
        let protections = branchProtections(index)
        return { repo, _ in
            guard let protection = protections[repo] else { return .unknown("the protection was not collected") }
            switch protection.state {
            case .unreadable(let why): return .unknown(why)
            case .unprotected: return .bad("default branch is not protected")
            case .rules: return check(protection)
            }
        }
    }

    static func protectionReading(_ fields: FieldPath...) -> [Check.Reading] {
        [repositoryList, Check.Reading(source: source, operation: Op.getBranchProtection, fields: fields)]
    }

    public static let defaultBranchRequiresReview = Check(
        id: "github.default-branch-requires-review",
        title: "Default branches require an approving review before merge",
        controls: soc2("CC8.1") + iso("A.8.4", "A.8.32"),
        reads: protectionReading("required_pull_request_reviews.required_approving_review_count")
    ) { index, _ in
        perRepository(index, operation: Op.getBranchProtection, resources: \.branchResources, positions: \.protection,
                      passReason: "changes to the default branch need an approving review.",
                      failReason: "changes can reach the default branch without review.",
                      judge: protectionRule(index) { rules in
            guard let count = rules.reviews else { return .bad("pull request reviews are not required") }
            return count >= 1 ? .ok : .bad("required approving review count is 0")
        })
    }

    public static let forcePushesBlocked = Check(
        id: "github.force-pushes-blocked",
        title: "Force pushes to default branches are blocked",
        controls: soc2("CC8.1") + iso("A.8.32"),
        reads: protectionReading("allow_force_pushes.enabled")
    ) { index, _ in
        perRepository(index, operation: Op.getBranchProtection, resources: \.branchResources, positions: \.protection,
                      passReason: "force pushes to the default branch are blocked.",
                      failReason: "history of the default branch can be rewritten.",
                      judge: protectionRule(index) { rules in
            switch rules.forcePushes {
            case false?: return .ok
            case true?: return .bad("force pushes are allowed")
            case nil: return .unknown("allow_force_pushes is missing from the protection")
            }
        })
    }

    public static let branchDeletionBlocked = Check(
        id: "github.branch-deletion-blocked",
        title: "Default branches cannot be deleted",
        controls: soc2("CC8.1") + iso("A.8.32"),
        reads: protectionReading("allow_deletions.enabled")
    ) { index, _ in
        perRepository(index, operation: Op.getBranchProtection, resources: \.branchResources, positions: \.protection,
                      passReason: "the default branch cannot be deleted.",
                      failReason: "the default branch can be deleted.",
                      judge: protectionRule(index) { rules in
            switch rules.deletions {
            case false?: return .ok
            case true?: return .bad("branch deletion is allowed")
            case nil: return .unknown("allow_deletions is missing from the protection")
            }
        })
    }

    public static let adminsFollowProtection = Check(
        id: "github.admins-follow-protection",
        title: "Branch protection applies to administrators too",
        controls: soc2("CC8.1") + iso("A.8.32"),
        reads: protectionReading("enforce_admins.enabled")
    ) { index, _ in
        perRepository(index, operation: Op.getBranchProtection, resources: \.branchResources, positions: \.protection,
                      passReason: "administrators are held to the same protection.",
                      failReason: "administrators can bypass branch protection.",
                      judge: protectionRule(index) { rules in
            switch rules.enforceAdmins {
            case true?: return .ok
            case false?: return .bad("administrators bypass the protection (enforce_admins off)")
            case nil: return .unknown("enforce_admins is missing from the protection")
            }
        })
    }

    public static let dependabotAlertsEnabled = Check(
        id: "github.dependabot-alerts-enabled",
        title: "Dependabot vulnerability alerts are on for every repository",
        controls: soc2("CC7.1") + iso("A.8.8"),
        reads: [repositoryList]
    ) { index, _ in
        perRepository(index, operation: Op.checkVulnerabilityAlerts, resources: \.resources, positions: \.alerts,
                      passReason: "Dependabot alerts report vulnerable dependencies.",
                      failReason: "vulnerable dependencies go unreported.",
                      judge: { _, position in
            let status = index.status(at: position)
            switch status {
            case 204: return .ok
            case 404: return .bad("Dependabot alerts are off")
            default: return .unknown("unexpected status \(status)")
            }
        })
    }
}
