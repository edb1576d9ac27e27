import Foundation
import Pipeline

/// SOC 2 and ISO/IEC 27001:2022 checks over GitHub organization evidence.
public enum GitHubChecks {
    typealias Op = GitHubCollector.Operation
    static let source = "github"

    public static let all: [Check] = [
        organizationRequires2FA, membersHave2FA, defaultBranchRequiresReview, forcePushesBlocked,
        branchDeletionBlocked, adminsFollowProtection, dependabotAlertsEnabled,
        defaultRepositoryPermission, publicRepositoryCreationRestricted, ownersLimited, outsideCollaboratorsHave2FA,
        secretScanningEnabled, pushProtectionEnabled, auditLogStreamed,
    ]


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
        let rules: [Int?]
        /// The protection's position, or the rules' where the protection was not collected.
        let protectionOrRules: [Int?]
        let alerts: [Int?]
        let secretScanning: [String?]
        let pushProtection: [String?]
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
            let protection = branchResources.map { index.position(source: source, operation: Op.getBranchProtection, resource: $0) }
            let rules = branchResources.map { index.position(source: source, operation: Op.getBranchRules, resource: $0) }
            return ActiveRepositories(
                resources: resources, branchResources: branchResources,
                protection: protection, rules: rules, protectionOrRules: zip(protection, rules).map { $0 ?? $1 },
                alerts: resources.map { index.position(source: source, operation: Op.checkVulnerabilityAlerts, resource: $0) },
                secretScanning: repos.map(\.secretScanning), pushProtection: repos.map(\.pushProtection),
                pages: pages, problem: problem)
        }
    }

    struct Repository {
        let name: String
        let branch: String
        /// `security_and_analysis` statuses ("enabled", "disabled"), nil when the token cannot see them.
        let secretScanning: String?
        let pushProtection: String?
    }

    static func listActiveRepositories(_ index: EvidenceIndex) -> (repos: [Repository], pages: [Evidence], problem: String?) {
        let pages = index.evidence(source: source, operation: Op.listRepositories)
        if pages.isEmpty || !index.failures(source: source, operation: Op.listRepositories).isEmpty {
            return ([], pages, missing(index, Op.listRepositories, "the repository list"))
        }
        var repos: [Repository] = []
        for page in pages {
            guard case .value(let list) = EvidenceReader.array(page, in: index) else {
                return ([], pages, "a page of the repository list is unreadable")
            }
            for repo in list where repo["archived"]?.bool != true {
                if let name = repo["name"]?.string {
                    let security = repo["security_and_analysis"]
                    repos.append(Repository(name: name, branch: repo["default_branch"]?.string ?? "main",
                                            secretScanning: security?["secret_scanning"]?["status"]?.string,
                                            pushProtection: security?["secret_scanning_push_protection"]?["status"]?.string))
                }
            }
        }
        // By name, for findings in a stable order; a listing already in that order is kept as it is.
        if zip(repos, repos.dropFirst()).allSatisfy({ $0.name <= $1.name }) { return (repos, pages, nil) }
        return (repos.sorted { $0.name < $1.name }, pages, nil)
    }

    /// Applies `judge` to every active repository's evidence of `operation` and rolls the verdicts
    /// up: any bad → fail; else any unknown → not_verified; else pass. No repositories → n/a.
    static func perRepository(_ index: EvidenceIndex, operation: String,
                              resources: KeyPath<ActiveRepositories, [String]>,
                              positions: KeyPath<ActiveRepositories, [Int?]>,
                              alsoUsing extra: KeyPath<ActiveRepositories, [Int?]>? = nil,
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
            sortedUniqueIDs(active.pages.map(\.id) + (found + (extra.map { active[keyPath: $0] } ?? [])).compactMap { $0.map { index.all[$0].id } })
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

    /// What the protection checks read of one default branch's protection, taken from its answers
    /// once for all four of them (they would otherwise each walk thousands of answers). A branch
    /// is protected by classic branch protection, by the rules of active rulesets, or both; rules
    /// only ever add restrictions, so each property is the stricter of the two.
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
        /// Protected by rulesets alone (whose bypass lists this answer does not show).
        let rulesetsOnly: Bool
        /// Why the classic protection is unknown when rules of rulesets were read: what the rules
        /// establish holds, anything else is unknown, never bad.
        let classicUnreadable: String?

        /// What the rules of rulesets say, or why they are unknown.
        enum Rulesets {
            case none
            case rules(types: Set<String>, reviews: Int?)
            case unknown(String)
        }

        init(_ index: EvidenceIndex, resource: String, protection: Int?, rules: Int?) {
            let rulesets: Rulesets
            if let rules {
                switch EvidenceReader.array(index.all[rules], facts: index.facts(at: rules)) {
                case .unreadable(let why): rulesets = .unknown(why)
                case .value(let list) where list.isEmpty: rulesets = .none
                case .value(let list):
                    let types = Set(list.compactMap { $0["type"]?.string })
                    let reviews = list.filter { $0["type"]?.string == "pull_request" }
                        .compactMap { $0["parameters"]?["required_approving_review_count"]?.int }.max()
                    rulesets = .rules(types: types, reviews: types.contains("pull_request") ? (reviews ?? 0) : nil)
                }
            } else if let failure = index.failures(source: source, operation: Op.getBranchRules, resource: resource).first {
                rulesets = .unknown("the rules of its rulesets could not be collected: \(failure.reason)")
            } else {
                // Not asked for (a recording made before rulesets were read): classic protection alone.
                rulesets = .none
            }
            var (reviews, forcePushes, deletions, enforceAdmins): (Int?, Bool?, Bool?, Bool?) = (nil, nil, nil, nil)
            var rulesetsOnly = false
            var classicUnreadable: String?
            let classic: State
            if let protection {
                if index.status(at: protection) == 404 {
                    classic = .unprotected
                } else {
                    switch EvidenceReader.object(index.all[protection], facts: index.facts(at: protection)) {
                    case .unreadable(let why):
                        classic = .unreadable(why)
                    case .value(let found):
                        classic = .rules
                        if let required = found["required_pull_request_reviews"], required.object != nil {
                            reviews = required["required_approving_review_count"]?.int ?? 1
                        }
                        forcePushes = found["allow_force_pushes"]?["enabled"]?.bool
                        deletions = found["allow_deletions"]?["enabled"]?.bool
                        enforceAdmins = found["enforce_admins"]?["enabled"]?.bool
                    }
                }
            } else {
                classic = .unreadable(missing(index, Op.getBranchProtection, "the branch protection", resource: resource))
            }
            switch (classic, rulesets) {
            case (.unprotected, .none):
                state = .unprotected
            case (.unprotected, .unknown(let why)):
                state = .unreadable("no branch protection, and \(why)")
            case (.unreadable(let why), .none), (.unreadable(let why), .unknown):
                state = .unreadable(why)
            case (.unreadable(let why), .rules(let types, let count)):
                state = .rules
                classicUnreadable = why
                reviews = count
                forcePushes = types.contains("non_fast_forward") ? false : nil
                deletions = types.contains("deletion") ? false : nil
            case (.unprotected, .rules(let types, let count)):
                // Rulesets alone: what no rule restricts is allowed.
                state = .rules
                rulesetsOnly = true
                reviews = count
                forcePushes = !types.contains("non_fast_forward")
                deletions = !types.contains("deletion")
            case (.rules, .rules(let types, let count)):
                state = .rules
                if let count { reviews = max(reviews ?? 0, count) }
                if types.contains("non_fast_forward") { forcePushes = false }
                if types.contains("deletion") { deletions = false }
            case (.rules, _):
                state = .rules
            }
            self.reviews = reviews
            self.forcePushes = forcePushes
            self.deletions = deletions
            self.enforceAdmins = enforceAdmins
            self.rulesetsOnly = rulesetsOnly
            self.classicUnreadable = classicUnreadable
        }
    }

    /// Every active repository's branch protection (nil where it was not collected), in the
    /// order of `ActiveRepositories`.
    static func branchProtections(_ index: EvidenceIndex) -> [BranchProtection?] {
        index.derived("github.branch-protections") {
            let active = activeRepositories(index)
            return active.branchResources.indices.map { repo in
                let (protection, rules) = (active.protection[repo], active.rules[repo])
                return protection == nil && rules == nil
                    ? nil : BranchProtection(index, resource: active.branchResources[repo], protection: protection, rules: rules)
            }
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
            case .rules:
                let verdict = check(protection)
                if case .ok = verdict { return verdict }
                return protection.classicUnreadable.map { .unknown($0) } ?? verdict
            }
        }
    }

    static func protectionReading(_ fields: FieldPath...) -> [Check.Reading] {
        [repositoryList, Check.Reading(source: source, operation: Op.getBranchProtection, fields: fields),
         Check.Reading(source: source, operation: Op.getBranchRules, fields: ["[].type", "[].parameters.required_approving_review_count"])]
    }

    public static let defaultBranchRequiresReview = Check(
        id: "github.default-branch-requires-review",
        reads: protectionReading("required_pull_request_reviews.required_approving_review_count")
    ) { index, _ in
        perRepository(index, operation: Op.getBranchProtection, resources: \.branchResources, positions: \.protectionOrRules, alsoUsing: \.rules,
                      passReason: "changes to the default branch need an approving review.",
                      failReason: "changes can reach the default branch without review.",
                      judge: protectionRule(index) { rules in
            guard let count = rules.reviews else { return .bad("pull request reviews are not required") }
            return count >= 1 ? .ok : .bad("required approving review count is 0")
        })
    }

    public static let forcePushesBlocked = Check(
        id: "github.force-pushes-blocked",
        reads: protectionReading("allow_force_pushes.enabled")
    ) { index, _ in
        perRepository(index, operation: Op.getBranchProtection, resources: \.branchResources, positions: \.protectionOrRules, alsoUsing: \.rules,
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
        reads: protectionReading("allow_deletions.enabled")
    ) { index, _ in
        perRepository(index, operation: Op.getBranchProtection, resources: \.branchResources, positions: \.protectionOrRules, alsoUsing: \.rules,
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
        reads: protectionReading("enforce_admins.enabled")
    ) { index, _ in
        perRepository(index, operation: Op.getBranchProtection, resources: \.branchResources, positions: \.protectionOrRules, alsoUsing: \.rules,
                      passReason: "administrators are held to the same protection.",
                      failReason: "administrators can bypass branch protection.",
                      judge: protectionRule(index) { rules in
            switch rules.enforceAdmins {
            case true?: return .ok
            case false?: return .bad("administrators bypass the protection (enforce_admins off)")
            case nil where rules.rulesetsOnly:
                return .unknown("protected by rulesets alone, whose bypass lists this check does not read")
            case nil: return .unknown("enforce_admins is missing from the protection")
            }
        })
    }

    public static let dependabotAlertsEnabled = Check(
        id: "github.dependabot-alerts-enabled",
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

    // MARK: Organization settings, people and repository security

    /// What a check found, or the verdict it already came to (evidence missing or unreadable).
    enum Found<T> {
        case value(T)
        case verdict(Check.Verdict)
    }

    /// The organization's settings, or the verdict when they cannot be read.
    static func organizationSettings(_ index: EvidenceIndex) -> Found<(JSONValue, Evidence)> {
        guard let evidence = index.evidence(source: source, operation: Op.getOrganization).first else {
            return .verdict(.init(.notVerified, missing(index, Op.getOrganization, "the organization's settings")))
        }
        guard case .value(let org) = EvidenceReader.object(evidence, in: index) else {
            return .verdict(.init(.notVerified, "the organization's settings are unreadable", evidence: [evidence]))
        }
        return .value((org, evidence))
    }

    public static let defaultRepositoryPermission = Check(
        id: "github.default-repository-permission",
        reads: [reading(Op.getOrganization, "default_repository_permission", "login")]
    ) { index, _ in
        let (org, evidence): (JSONValue, Evidence)
        switch organizationSettings(index) {
        case .verdict(let verdict): return verdict
        case .value(let found): (org, evidence) = found
        }
        switch org["default_repository_permission"]?.string {
        case "read"?, "none"?:
            return .init(.pass, "Members' base permission is \(org["default_repository_permission"]?.string ?? ""); more is granted per team or repository.",
                         evidence: [evidence])
        case let permission?:
            return .init(.fail, "Every member can \(permission == "admin" ? "administer" : "push to") every repository by default.",
                         findings: ["\(org["login"]?.string ?? "organization"): default_repository_permission is \(permission)"],
                         evidence: [evidence])
        case nil:
            return .init(.notVerified, "default_repository_permission is not visible to this token (it needs an organization owner)",
                         evidence: [evidence])
        }
    }

    public static let publicRepositoryCreationRestricted = Check(
        id: "github.public-repository-creation-restricted",
        reads: [reading(Op.getOrganization, "members_can_create_public_repositories", "login")]
    ) { index, _ in
        let (org, evidence): (JSONValue, Evidence)
        switch organizationSettings(index) {
        case .verdict(let verdict): return verdict
        case .value(let found): (org, evidence) = found
        }
        switch org["members_can_create_public_repositories"]?.bool {
        case false?:
            return .init(.pass, "Only owners can make code public.", evidence: [evidence])
        case true?:
            return .init(.fail, "Any member can publish a repository.",
                         findings: ["\(org["login"]?.string ?? "organization"): members_can_create_public_repositories is true"],
                         evidence: [evidence])
        case nil:
            return .init(.notVerified, "members_can_create_public_repositories is not visible to this token (it needs an organization owner)",
                         evidence: [evidence])
        }
    }

    /// Logins across every page of a listing, or why they are unknown.
    static func logins(_ index: EvidenceIndex, _ operation: String, _ what: String) -> Found<([String], [Evidence])> {
        let pages = index.evidence(source: source, operation: operation)
        if pages.isEmpty || !index.failures(source: source, operation: operation).isEmpty {
            return .verdict(.init(.notVerified, missing(index, operation, what), evidence: pages))
        }
        var logins: [String] = []
        for page in pages {
            guard case .value(let people) = EvidenceReader.array(page, in: index) else {
                return .verdict(.init(.notVerified, "a page of \(what) is unreadable", evidence: pages))
            }
            logins += people.map { $0["login"]?.string ?? "(unknown login)" }
        }
        return .value((logins.sorted(), pages))
    }

    /// Two owners at least (no single person holds the organization), five at most.
    static let owners = 2...5

    public static let ownersLimited = Check(
        id: "github.owners-limited",
        reads: [reading(Op.listOwners, "[].login")]
    ) { index, _ in
        let (found, pages): ([String], [Evidence])
        switch logins(index, Op.listOwners, "the list of owners") {
        case .verdict(let verdict): return verdict
        case .value(let result): (found, pages) = result
        }
        if owners.contains(found.count) {
            return .init(.pass, "\(found.count) owners: \(found.joined(separator: ", ")).", evidence: pages)
        }
        let reason = found.count < owners.lowerBound
            ? "Only \(found.count) owner\(found.count == 1 ? "" : "s"): the organization depends on one person."
            : "\(found.count) owners, more than \(owners.upperBound): owner rights are held more widely than needed."
        return .init(.fail, reason, findings: found.map { "\($0): organization owner" }, evidence: pages)
    }

    public static let outsideCollaboratorsHave2FA = Check(
        id: "github.outside-collaborators-have-2fa",
        reads: [reading(Op.listOutsideCollaborators, "[].login"), reading(Op.listOutsideCollaboratorsWithout2FA, "[].login")]
    ) { index, _ in
        let (all, allPages): ([String], [Evidence])
        switch logins(index, Op.listOutsideCollaborators, "the list of outside collaborators") {
        case .verdict(let verdict): return verdict
        case .value(let result): (all, allPages) = result
        }
        let (without, pages): ([String], [Evidence])
        switch logins(index, Op.listOutsideCollaboratorsWithout2FA, "the list of outside collaborators without 2FA") {
        case .verdict(let verdict):
            return .init(verdict.status, verdict.reason, evidenceIDs: allPages.map(\.id) + verdict.evidenceIDs)
        case .value(let result): (without, pages) = result
        }
        if all.isEmpty { return .init(.notApplicable, "The organization has no outside collaborators.", evidence: allPages + pages) }
        if without.isEmpty {
            return .init(.pass, "All \(all.count) outside collaborators use two-factor authentication.", evidence: allPages + pages)
        }
        return .init(.fail, "\(without.count) of \(all.count) outside collaborators have no two-factor authentication.",
                     findings: without.map { "\($0): outside collaborator without two-factor authentication" }, evidence: allPages + pages)
    }

    /// Judges every active repository by a `security_and_analysis` status from the listing.
    static func securitySetting(_ index: EvidenceIndex, _ status: KeyPath<ActiveRepositories, [String?]>, what: String,
                                passReason: String, failReason: String) -> Check.Verdict {
        let active = activeRepositories(index)
        if let problem = active.problem { return .init(.notVerified, problem, evidence: active.pages) }
        if active.count == 0 { return .init(.notApplicable, "The organization has no active repositories.", evidence: active.pages) }
        var bad: [String] = []
        var unknown: [String] = []
        for (repo, value) in active[keyPath: status].enumerated() {
            switch value {
            case "enabled"?: break
            case let other?: bad.append("\(active.resources[repo]): \(what) is \(other)")
            case nil: unknown.append("\(active.resources[repo]): \(what) is not visible to this token (it needs admin access to the repository)")
            }
        }
        let evidence = active.pages
        if !bad.isEmpty {
            return .init(.fail, "\(bad.count) of \(active.count) repositories: \(failReason)", findings: bad + unknown, evidence: evidence)
        }
        if !unknown.isEmpty {
            return .init(.notVerified, "\(unknown.count) of \(active.count) repositories could not be verified.", findings: unknown, evidence: evidence)
        }
        return .init(.pass, "All \(active.count) active repositories: \(passReason)", evidence: evidence)
    }

    static let securityReading = reading(Op.listRepositories, "[].name", "[].archived", "[].default_branch",
                                         "[].security_and_analysis.secret_scanning.status",
                                         "[].security_and_analysis.secret_scanning_push_protection.status")

    public static let secretScanningEnabled = Check(
        id: "github.secret-scanning-enabled",
        reads: [securityReading]
    ) { index, _ in
        securitySetting(index, \.secretScanning, what: "secret scanning",
                        passReason: "committed credentials are detected.", failReason: "committed credentials go undetected.")
    }

    public static let pushProtectionEnabled = Check(
        id: "github.push-protection-enabled",
        reads: [securityReading]
    ) { index, _ in
        securitySetting(index, \.pushProtection, what: "push protection",
                        passReason: "pushes containing credentials are blocked.", failReason: "credentials can be pushed.")
    }

    public static let auditLogStreamed = Check(
        id: "github.audit-log-streamed",
        reads: [reading(Op.getOrganization, "plan.name", "login"), reading(Op.listAuditLogStreams, "[].stream_type", "[].enabled")]
    ) { index, organization in
        let streams = index.evidence(source: source, operation: Op.listAuditLogStreams)
        guard let answer = streams.first else {
            if !index.failures(source: source, operation: Op.listAuditLogStreams).isEmpty {
                return .init(.notVerified, missing(index, Op.listAuditLogStreams, "the audit-log streams"))
            }
            // No enterprise named: streaming is a GitHub Enterprise Cloud feature.
            let (org, evidence): (JSONValue, Evidence)
            switch organizationSettings(index) {
            case .verdict(let verdict): return verdict
            case .value(let found): (org, evidence) = found
            }
            switch org["plan"]?["name"]?.string {
            case "enterprise"?:
                return .init(.notVerified, "The organization is on GitHub Enterprise: name its enterprise (integrations add --enterprise SLUG) to read the audit-log streams.",
                             evidence: [evidence])
            case let plan?:
                return .init(.notApplicable, "Audit-log streaming needs GitHub Enterprise Cloud; the organization's plan is \(plan).", evidence: [evidence])
            case nil:
                return .init(.notVerified, "The organization's plan is not visible to this token (it needs an organization owner).", evidence: [evidence])
            }
        }
        guard case .value(let list) = EvidenceReader.array(answer, in: index) else {
            return .init(.notVerified, "the audit-log streams are unreadable", evidence: [answer])
        }
        let enterprise = organization.integrations[source]?["enterprise"] ?? answer.resource
        let enabled = list.filter { $0["enabled"]?.bool == true }.compactMap { $0["stream_type"]?.string }
        if !enabled.isEmpty {
            return .init(.pass, "Enterprise \(enterprise) streams its audit log to \(enabled.sorted().joined(separator: ", ")).", evidence: [answer])
        }
        let paused = list.compactMap { $0["stream_type"]?.string }
        return .init(.fail, paused.isEmpty ? "Enterprise \(enterprise) streams its audit log nowhere."
                                           : "Every audit-log stream of enterprise \(enterprise) is paused.",
                     findings: paused.isEmpty ? ["\(enterprise): no audit-log stream"] : paused.map { "\(enterprise): \($0) stream paused" },
                     evidence: [answer])
    }
}
