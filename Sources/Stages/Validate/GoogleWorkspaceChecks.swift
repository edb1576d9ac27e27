import Foundation
import Pipeline

/// SOC 2 and ISO/IEC 27001:2022 checks over the Google Workspace directory.
public enum GoogleWorkspaceChecks {
    typealias Op = GoogleWorkspaceCollector.Operation
    static let source = "google_workspace"

    public static let all: [Check] = [twoStepEnrolled, twoStepEnforced, adminsUseTwoStep, inactiveAccounts, superAdminsLimited]


    static let userFields: [FieldPath] = ["users.[].primaryEmail", "users.[].isEnrolledIn2Sv", "users.[].isEnforcedIn2Sv",
                                          "users.[].suspended", "users.[].archived", "users.[].isAdmin",
                                          "users.[].isDelegatedAdmin", "users.[].lastLoginTime", "users.[].creationTime"]
    static let usersReading = Check.Reading(source: source, operation: Op.listUsers, fields: userFields)

    struct Directory {
        /// Active users (neither suspended nor archived).
        let users: [JSONValue]
        let evidence: [Evidence]
    }

    static func directory(_ index: EvidenceIndex) -> Result<Directory, AWSChecks.Reason> {
        let pages = index.evidence(source: source, operation: Op.listUsers)
        if let failure = index.failures(source: source, operation: Op.listUsers).first {
            return .failure(.init(text: "the user directory could not be collected: \(failure.reason)", evidence: pages))
        }
        if pages.isEmpty { return .failure(.init(text: "the user directory was not collected", evidence: [])) }
        var users: [JSONValue] = []
        for page in pages {
            guard case .value(let value) = EvidenceReader.object(page, in: index) else {
                return .failure(.init(text: "a page of the user directory is unreadable", evidence: pages))
            }
            users += (value["users"]?.array ?? []).filter { $0["suspended"]?.bool != true && $0["archived"]?.bool != true }
        }
        return .success(Directory(users: users, evidence: pages))
    }

    static func email(_ user: JSONValue) -> String { user["primaryEmail"]?.string ?? "(unknown user)" }

    static func judge(_ index: EvidenceIndex, pass: String, fail: String, _ finding: (JSONValue) -> String?) -> Check.Verdict {
        switch directory(index) {
        case .failure(let reason): return reason.verdict
        case .success(let directory):
            if directory.users.isEmpty { return .init(.notApplicable, "The directory has no active users.", evidence: directory.evidence) }
            let findings = directory.users.compactMap { user in finding(user).map { "\(email(user)): \($0)" } }
            return AWSChecks.verdict(findings, pass: pass, fail: fail, evidence: directory.evidence)
        }
    }

    public static let twoStepEnrolled = Check(
        id: "google_workspace.2sv-enrolled", reads: [usersReading]
    ) { index, _ in
        judge(index, pass: "Every active user is enrolled in 2-step verification.",
              fail: "{n} active user(s) are not enrolled in 2-step verification.") { user in
            user["isEnrolledIn2Sv"]?.bool == true ? nil : "not enrolled in 2-step verification"
        }
    }

    public static let twoStepEnforced = Check(
        id: "google_workspace.2sv-enforced", reads: [usersReading]
    ) { index, _ in
        judge(index, pass: "2-step verification is enforced for everyone.",
              fail: "2-step verification is not enforced for {n} active user(s).") { user in
            user["isEnforcedIn2Sv"]?.bool == true ? nil : "2-step verification not enforced"
        }
    }

    public static let adminsUseTwoStep = Check(
        id: "google_workspace.admins-2sv", reads: [usersReading]
    ) { index, _ in
        judge(index, pass: "Every administrator uses 2-step verification.",
              fail: "{n} administrator(s) do not use 2-step verification.") { user in
            let admin = user["isAdmin"]?.bool == true || user["isDelegatedAdmin"]?.bool == true
            return admin && user["isEnrolledIn2Sv"]?.bool != true ? "administrator without 2-step verification" : nil
        }
    }

    public static let inactiveAccounts = Check(
        id: "google_workspace.no-inactive-accounts", reads: [usersReading]
    ) { index, _ in
        let asOf = index.evidence(source: source, operation: Op.listUsers).first?.collectedAt ?? Date()
        return judge(index, pass: "Every active account was used in the last 90 days.",
                     fail: "{n} active account(s) went unused for 90 days or more.") { user in
            let created = user["creationTime"]?.string.flatMap(AWSChecks.parseTime)
            guard let created, asOf.timeIntervalSince(created) > 90 * 86_400 else { return nil }  // new accounts get time
            // Never signed in shows as the epoch.
            let last = user["lastLoginTime"]?.string.flatMap(AWSChecks.parseTime) ?? Date(timeIntervalSince1970: 0)
            let days = Int(asOf.timeIntervalSince(last) / 86_400)
            if days <= 90 { return nil }
            return last.timeIntervalSince1970 <= 0 ? "never signed in" : "last signed in \(days) days ago"
        }
    }

    public static let superAdminsLimited = Check(
        id: "google_workspace.super-admins-limited", reads: [usersReading]
    ) { index, _ in
        switch directory(index) {
        case .failure(let reason): return reason.verdict
        case .success(let directory):
            let admins = directory.users.filter { $0["isAdmin"]?.bool == true }.map(email).sorted()
            if (2...4).contains(admins.count) {
                return .init(.pass, "\(admins.count) super administrators: enough to recover, few enough to watch.", evidence: directory.evidence)
            }
            return .init(.fail, admins.count < 2 ? "Only \(admins.count) super administrator: no one can recover the account if it is lost."
                                                 : "\(admins.count) super administrators: more than four.",
                         findings: admins.map { "\($0): super administrator" }, evidence: directory.evidence)
        }
    }
}
