import Foundation
import Pipeline

/// SOC 2 and ISO/IEC 27001:2022 checks over AWS account evidence (CIS AWS Foundations in spirit).
/// A check passes only on evidence that shows compliance; missing or unreadable evidence makes it
/// not verified, with the collection failure as its reason; no resources of a kind (no buckets,
/// no databases) makes it not applicable.
public enum AWSChecks {
    typealias Op = AWSCollector.Operation
    static let source = "aws"

    public static let all: [Check] = [
        rootMFA, rootAccessKeys, consoleUsersHaveMFA, accessKeysRotated, passwordPolicy, noFullAdminPolicies,
        noPrivilegeEscalationPolicies,
        bucketsEncrypted, bucketsBlockPublicAccess, bucketsRequireTLS, bucketsVersioned, cloudTrailLogging,
        securityGroupsCloseAdminPorts, ebsEncryptionByDefault, kmsKeyRotation, databasesProtected, guardDutyEnabled,
        vpcFlowLogs,
    ]

    static func reading(_ operation: String, _ fields: FieldPath...) -> Check.Reading {
        Check.Reading(source: source, operation: operation, fields: fields)
    }

    /// The parsed answers of an operation, or why a check cannot rely on them (a failure of that
    /// operation or of the whole source, or an unreadable answer).
    static func answers(_ index: EvidenceIndex, _ operation: String, _ what: String) -> Result<[(Evidence, JSONValue)], Reason> {
        let items = index.evidence(source: source, operation: operation)
        let failures = index.failures(source: source, operation: operation)
        if let failure = failures.first {
            return .failure(Reason(text: "\(what) could not be collected: \(failure.reason)", evidence: items))
        }
        if items.isEmpty { return .failure(Reason(text: "\(what) was not collected", evidence: [])) }
        var out: [(Evidence, JSONValue)] = []
        for item in items {
            guard case .value(let value) = EvidenceReader.value(item, in: index) else {
                return .failure(Reason(text: "\(what) is unreadable", evidence: items))
            }
            out.append((item, value))
        }
        return .success(out)
    }

    struct Reason: Error {
        let text: String
        let evidence: [Evidence]
        var verdict: Check.Verdict { .init(.notVerified, text, evidence: evidence) }
    }

    /// A list as XML reads into JSON: an array, a single object, or an empty wrapper.
    static func list(_ value: JSONValue?) -> [JSONValue] {
        switch value {
        case .array(let list)?: return list
        case .object?: return [value!]
        default: return []
        }
    }

    /// Pass when nothing was found, fail with the findings otherwise.
    static func verdict(_ findings: [String], pass: String, fail: String, evidence: [Evidence]) -> Check.Verdict {
        findings.isEmpty ? .init(.pass, pass, evidence: evidence)
            : .init(.fail, fail.replacingOccurrences(of: "{n}", with: "\(findings.count)"), findings: findings.sorted(), evidence: evidence)
    }

    // MARK: Root account

    static func summaryMap(_ index: EvidenceIndex) -> Result<([String: String], [Evidence]), Reason> {
        answers(index, Op.getAccountSummary, "the IAM account summary").map { items in
            var map: [String: String] = [:]
            for (_, value) in items {
                for entry in list(value["GetAccountSummaryResponse"]?["GetAccountSummaryResult"]?["SummaryMap"]) {
                    if let key = entry["key"]?.string, let number = entry["value"]?.string { map[key] = number }
                }
            }
            return (map, items.map(\.0))
        }
    }

    static let summaryReading = reading(Op.getAccountSummary, "GetAccountSummaryResponse.GetAccountSummaryResult.SummaryMap")

    public static let rootMFA = Check(
        id: "aws.root-mfa-enabled", reads: [summaryReading]
    ) { index, _ in
        switch summaryMap(index) {
        case .failure(let reason): return reason.verdict
        case .success(let (map, evidence)):
            guard let value = map["AccountMFAEnabled"] else { return .init(.notVerified, "the summary has no AccountMFAEnabled", evidence: evidence) }
            return value == "1" ? .init(.pass, "The root user signs in with MFA.", evidence: evidence)
                : .init(.fail, "The root user has no MFA device.", findings: ["root: AccountMFAEnabled is 0"], evidence: evidence)
        }
    }

    public static let rootAccessKeys = Check(
        id: "aws.root-has-no-access-keys", reads: [summaryReading]
    ) { index, _ in
        switch summaryMap(index) {
        case .failure(let reason): return reason.verdict
        case .success(let (map, evidence)):
            guard let value = map["AccountAccessKeysPresent"] else {
                return .init(.notVerified, "the summary has no AccountAccessKeysPresent", evidence: evidence)
            }
            return value == "0" ? .init(.pass, "The root user has no access keys.", evidence: evidence)
                : .init(.fail, "The root user has access keys.", findings: ["root: \(value) access key(s) present"], evidence: evidence)
        }
    }

    // MARK: Credential report

    /// The credential report's rows (the CSV inside the answer, base64), by column name.
    static func credentialReport(_ index: EvidenceIndex) -> Result<([[String: String]], [Evidence]), Reason> {
        answers(index, Op.getCredentialReport, "the IAM credential report").flatMap { items in
            guard let (evidence, value) = items.last,
                  let content = value["GetCredentialReportResponse"]?["GetCredentialReportResult"]?["Content"]?.string,
                  let data = Data(base64Encoded: content.filter { !$0.isWhitespace }),
                  let text = String(data: data, encoding: .utf8) else {
                return .failure(Reason(text: "the credential report holds no readable CSV", evidence: items.map(\.0)))
            }
            let lines = text.split(whereSeparator: \.isNewline).map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
            guard let header = lines.first else { return .failure(Reason(text: "the credential report is empty", evidence: [evidence])) }
            let rows = lines.dropFirst().map { Dictionary(zip(header, $0), uniquingKeysWith: { a, _ in a }) }
            return .success((rows, [evidence]))
        }
    }

    static let reportReading = reading(Op.getCredentialReport, "GetCredentialReportResponse.GetCredentialReportResult.Content")

    public static let consoleUsersHaveMFA = Check(
        id: "aws.console-users-have-mfa", reads: [reportReading]
    ) { index, _ in
        switch credentialReport(index) {
        case .failure(let reason): return reason.verdict
        case .success(let (rows, evidence)):
            let findings = rows.filter { $0["user"] != "<root_account>" && $0["password_enabled"] == "true" && $0["mfa_active"] == "false" }
                .map { "\($0["user"] ?? "?"): console password without MFA" }
            return verdict(findings, pass: "Every console user has MFA.", fail: "{n} console user(s) have no MFA.", evidence: evidence)
        }
    }

    public static let accessKeysRotated = Check(
        id: "aws.access-keys-rotated", reads: [reportReading]
    ) { index, organization in
        switch credentialReport(index) {
        case .failure(let reason): return reason.verdict
        case .success(let (rows, evidence)):
            let asOf = evidence.first?.collectedAt ?? Date()
            var findings: [String] = []
            for row in rows where row["user"] != "<root_account>" {
                for n in ["1", "2"] where row["access_key_\(n)_active"] == "true" {
                    guard let rotated = row["access_key_\(n)_last_rotated"].flatMap(parseTime) else { continue }
                    let days = Int(asOf.timeIntervalSince(rotated) / 86_400)
                    if days > 90 { findings.append("\(row["user"] ?? "?"): access key \(n) last rotated \(days) days ago") }
                }
            }
            return verdict(findings, pass: "No active access key is older than 90 days.",
                           fail: "{n} active access key(s) are older than 90 days.", evidence: evidence)
        }
    }

    static func parseTime(_ text: String) -> Date? {
        guard text != "N/A", text != "not_supported", text != "no_information" else { return nil }
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }

    public static let passwordPolicy = Check(
        id: "aws.password-policy-strong", reads: [reading(Op.getPasswordPolicy, "GetAccountPasswordPolicyResponse.GetAccountPasswordPolicyResult.PasswordPolicy",
                        "ErrorResponse.Error.Code")]
    ) { index, _ in
        switch answers(index, Op.getPasswordPolicy, "the password policy") {
        case .failure(let reason): return reason.verdict
        case .success(let items):
            let evidence = items.map(\.0)
            guard let (item, value) = items.last else { return .init(.notVerified, "the password policy was not collected") }
            if item.status == 404 {
                return .init(.fail, "The account has no password policy (IAM's defaults apply: 8 characters, no reuse prevention).",
                             findings: ["account: NoSuchEntity (no password policy)"], evidence: evidence)
            }
            let policy = value["GetAccountPasswordPolicyResponse"]?["GetAccountPasswordPolicyResult"]?["PasswordPolicy"]
            guard let length = policy?["MinimumPasswordLength"]?.string.flatMap(Int.init) else {
                return .init(.notVerified, "the password policy has no MinimumPasswordLength", evidence: evidence)
            }
            var findings: [String] = []
            if length < 14 { findings.append("MinimumPasswordLength is \(length), below 14") }
            let reuse = policy?["PasswordReusePrevention"]?.string.flatMap(Int.init) ?? 0
            if reuse < 24 { findings.append("PasswordReusePrevention is \(reuse), below 24") }
            return verdict(findings, pass: "Passwords need 14 characters and cannot reuse the last 24.",
                           fail: "The password policy is weaker than required.", evidence: evidence)
        }
    }

    /// The Allow statements of every attached customer-managed policy's default version, or the
    /// verdict when one cannot be read.
    static func allowStatements(_ index: EvidenceIndex) -> Result<(statements: [(policy: String, statement: [String: Any])], evidence: [Evidence]), Reason> {
        if case .failure(let reason) = answers(index, Op.listPolicies, "the list of customer-managed policies") { return .failure(reason) }
        let documents = index.evidence(source: source, operation: Op.getPolicyVersion)
        if let failure = index.failures(source: source, operation: Op.getPolicyVersion).first {
            return .failure(Reason(text: "a policy document could not be collected: \(failure.reason)", evidence: documents))
        }
        var out: [(String, [String: Any])] = []
        for item in documents {
            guard case .value(let value) = EvidenceReader.value(item, in: index),
                  let raw = value["GetPolicyVersionResponse"]?["GetPolicyVersionResult"]?["PolicyVersion"]?["Document"]?.string else {
                return .failure(Reason(text: "the document of \(item.resource) is unreadable", evidence: documents))
            }
            // IAM returns the document URL-encoded (RFC 3986); some servers send it plain.
            let text = raw.hasPrefix("%") ? (raw.removingPercentEncoding ?? raw) : raw
            guard let document = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                return .failure(Reason(text: "the document of \(item.resource) is not JSON", evidence: documents))
            }
            let statements = (document["Statement"] as? [[String: Any]]) ?? ((document["Statement"] as? [String: Any]).map { [$0] } ?? [])
            for statement in statements where statement["Effect"] as? String == "Allow" { out.append((item.resource, statement)) }
        }
        return .success((out, documents))
    }

    /// A statement's values for `key`: one string or a list of them.
    static func values(_ statement: [String: Any], _ key: String) -> [String] {
        if let one = statement[key] as? String { return [one] }
        return (statement[key] as? [String]) ?? []
    }

    static let policyReadings = [reading(Op.getPolicyVersion, "GetPolicyVersionResponse.GetPolicyVersionResult.PolicyVersion.Document"),
                                 reading(Op.listPolicies, "ListPoliciesResponse.ListPoliciesResult.Policies")]

    public static let noFullAdminPolicies = Check(
        id: "aws.no-full-admin-policies", reads: policyReadings
    ) { index, _ in
        let found: (statements: [(policy: String, statement: [String: Any])], evidence: [Evidence])
        switch allowStatements(index) {
        case .failure(let reason): return reason.verdict
        case .success(let value): found = value
        }
        let findings = found.statements.filter { values($0.statement, "Action").contains("*") && values($0.statement, "Resource").contains("*") }
            .map { "\($0.policy): allows \"*\" on \"*\"" }
        return verdict(findings, pass: "No attached customer-managed policy grants full administrative access.",
                       fail: "{n} attached policy(ies) grant every action on every resource.", evidence: found.evidence)
    }

    /// IAM actions with which a principal can raise its own privileges (give itself a policy, a
    /// new version of one, a key or password of another user, or hand a role to a service it runs).
    static let escalationActions = [
        "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:AttachUserPolicy", "iam:AttachGroupPolicy",
        "iam:AttachRolePolicy", "iam:PutUserPolicy", "iam:PutGroupPolicy", "iam:PutRolePolicy", "iam:AddUserToGroup",
        "iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:UpdateLoginProfile", "iam:UpdateAssumeRolePolicy", "iam:PassRole",
    ]

    /// IAM's action matching: case-insensitive, `*` any run of characters, `?` one.
    static func matches(_ pattern: String, _ action: String) -> Bool {
        let p = Array(pattern.lowercased()), a = Array(action.lowercased())
        var (i, j, star, mark) = (0, 0, -1, 0)
        while j < a.count {
            if i < p.count, p[i] == "?" || p[i] == a[j] { i += 1; j += 1 }
            else if i < p.count, p[i] == "*" { star = i; mark = j; i += 1 }
            else if star >= 0 { i = star + 1; mark += 1; j = mark }
            else { return false }
        }
        while i < p.count, p[i] == "*" { i += 1 }
        return i == p.count
    }

    public static let noPrivilegeEscalationPolicies = Check(
        id: "aws.no-privilege-escalation-policies",
        reads: policyReadings
    ) { index, _ in
        let found: (statements: [(policy: String, statement: [String: Any])], evidence: [Evidence])
        switch allowStatements(index) {
        case .failure(let reason): return reason.verdict
        case .success(let value): found = value
        }
        var findings: [String] = []
        for (policy, statement) in found.statements where values(statement, "Resource").contains(where: { $0 == "*" || $0.hasPrefix("arn:aws:iam::") && $0.hasSuffix("*") }) {
            let patterns = values(statement, "Action")
            let granted = escalationActions.filter { action in patterns.contains { matches($0, action) } }
            if !granted.isEmpty { findings.append("\(policy): allows \(granted.joined(separator: ", ")) on \(values(statement, "Resource").joined(separator: ", "))") }
        }
        return verdict(findings, pass: "No attached customer-managed policy grants an action that escalates privileges on every resource.",
                       fail: "{n} attached polic(ies) let their holders escalate their privileges.", evidence: found.evidence)
    }

    // MARK: S3

    /// Buckets from the listing, or why they are unknown; nil when there are none.
    static func buckets(_ index: EvidenceIndex) -> Result<([String], [Evidence]), Reason> {
        answers(index, Op.listBuckets, "the bucket list").map { items in
            (items.flatMap { list($0.1["ListAllMyBucketsResult"]?["Buckets"]) }.compactMap { $0["Name"]?.string }.sorted(), items.map(\.0))
        }
    }

    static let bucketListReading = reading(Op.listBuckets, "ListAllMyBucketsResult.Buckets")

    /// Runs `judge` on each bucket's answer to `operation`: nil is fine, a string a finding. A
    /// bucket without that answer makes the check not verified.
    static func perBucket(_ index: EvidenceIndex, _ operation: String, _ what: String, pass: String, fail: String,
                          judge: (Evidence, JSONValue) -> String?) -> Check.Verdict {
        switch buckets(index) {
        case .failure(let reason): return reason.verdict
        case .success(let (names, listing)):
            if names.isEmpty { return .init(.notApplicable, "The account has no S3 buckets.", evidence: listing) }
            var findings: [String] = []
            var used = listing
            for name in names {
                let resource = "bucket/\(name)"
                guard let item = index.evidence(source: source, operation: operation, resource: resource).last else {
                    let failure = index.failures(source: source, operation: operation, resource: resource).first
                    return .init(.notVerified, "\(what) of bucket \(name) " + (failure.map { "could not be collected: \($0.reason)" } ?? "was not collected"),
                                 evidence: used)
                }
                used.append(item)
                guard case .value(let value) = EvidenceReader.value(item, in: index) else {
                    return .init(.notVerified, "\(what) of bucket \(name) is unreadable", evidence: used)
                }
                if let finding = judge(item, value) { findings.append("\(name): \(finding)") }
            }
            return verdict(findings, pass: pass, fail: fail, evidence: used)
        }
    }

    public static let bucketsEncrypted = Check(
        id: "aws.s3-buckets-encrypted", reads: [bucketListReading, reading(Op.getBucketEncryption, "ServerSideEncryptionConfiguration")]
    ) { index, _ in
        perBucket(index, Op.getBucketEncryption, "the default encryption", pass: "Every bucket encrypts by default.",
                  fail: "{n} bucket(s) have no default encryption.") { item, value in
            if item.status == 404 { return "no default encryption (ServerSideEncryptionConfigurationNotFoundError)" }
            let rules = list(value["ServerSideEncryptionConfiguration"]?["Rule"])
            return rules.contains { $0["ApplyServerSideEncryptionByDefault"]?["SSEAlgorithm"]?.string?.isEmpty == false }
                ? nil : "no default encryption rule"
        }
    }

    public static let bucketsBlockPublicAccess = Check(
        id: "aws.s3-public-access-blocked", reads: [bucketListReading, reading(Op.getPublicAccessBlock, "PublicAccessBlockConfiguration")]
    ) { index, _ in
        perBucket(index, Op.getPublicAccessBlock, "the public access block", pass: "Every bucket blocks public access.",
                  fail: "{n} bucket(s) do not block public access.") { item, value in
            if item.status == 404 { return "no public access block" }
            let block = value["PublicAccessBlockConfiguration"]
            let off = ["BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"]
                .filter { block?[$0]?.string != "true" }
            return off.isEmpty ? nil : "\(off.joined(separator: ", ")) off"
        }
    }

    public static let bucketsRequireTLS = Check(
        id: "aws.s3-tls-only", reads: [bucketListReading, reading(Op.getBucketPolicy, "Statement", "Error.Code")]
    ) { index, _ in
        perBucket(index, Op.getBucketPolicy, "the bucket policy", pass: "Every bucket denies requests without TLS.",
                  fail: "{n} bucket(s) accept requests without TLS.") { item, value in
            if item.status == 404 { return "no bucket policy, so no TLS-only rule" }
            let statements = list(value["Statement"])
            let denies = statements.contains { statement in
                statement["Effect"]?.string == "Deny"
                    && statement["Condition"]?["Bool"]?["aws:SecureTransport"].map { $0.string == "false" || $0.bool == false } == true
            }
            return denies ? nil : "no statement denies aws:SecureTransport false"
        }
    }

    public static let bucketsVersioned = Check(
        id: "aws.s3-versioning-enabled", reads: [bucketListReading, reading(Op.getBucketVersioning, "VersioningConfiguration.Status", "GetBucketVersioningResponse.Status")]
    ) { index, _ in
        perBucket(index, Op.getBucketVersioning, "the versioning state", pass: "Every bucket keeps versions.",
                  fail: "{n} bucket(s) do not keep versions.") { _, value in
            let status = (value["VersioningConfiguration"] ?? value["GetBucketVersioningResponse"])?["Status"]?.string
            return status == "Enabled" ? nil : "versioning \(status ?? "never enabled")"
        }
    }

    // MARK: Logging and monitoring

    public static let cloudTrailLogging = Check(
        id: "aws.cloudtrail-multi-region-logging",
        reads: [reading(Op.describeTrails, "trailList"), reading(Op.getTrailStatus, "IsLogging")]
    ) { index, _ in
        switch answers(index, Op.describeTrails, "the trail list") {
        case .failure(let reason): return reason.verdict
        case .success(let items):
            var evidence = items.map(\.0)
            let trails = items.flatMap { $0.1["trailList"]?.array ?? [] }
            if trails.isEmpty {
                return .init(.fail, "No CloudTrail trail exists.", findings: ["account: no trails"], evidence: evidence)
            }
            var problems: [String] = []
            for trail in trails {
                let name = trail["Name"]?.string ?? "?"
                guard let arn = trail["TrailARN"]?.string else { continue }
                var issues: [String] = []
                if trail["IsMultiRegionTrail"]?.bool != true { issues.append("single-region") }
                if trail["LogFileValidationEnabled"]?.bool != true { issues.append("log file validation off") }
                if let status = index.evidence(source: source, operation: Op.getTrailStatus, resource: arn).last,
                   case .value(let value) = EvidenceReader.value(status, in: index) {
                    evidence.append(status)
                    if value["IsLogging"]?.bool != true { issues.append("not logging") }
                } else {
                    issues.append("status unknown")
                }
                if issues.isEmpty { return .init(.pass, "Trail \(name) logs every region with log file validation.", evidence: evidence) }
                problems.append("\(name): \(issues.joined(separator: ", "))")
            }
            if problems.allSatisfy({ $0.hasSuffix("status unknown") }) {
                return .init(.notVerified, "no trail's logging status could be read", findings: problems, evidence: evidence)
            }
            return .init(.fail, "No trail logs every region with log file validation.", findings: problems.sorted(), evidence: evidence)
        }
    }

    /// Evidence of `operation` for every region the integration reads, or why one is missing.
    static func perRegion(_ index: EvidenceIndex, _ organization: Organization, _ operation: String, _ what: String)
        -> Result<[(region: String, pages: [(Evidence, JSONValue)])], Reason> {
        let regions = (organization.integrations[source]?["regions"] ?? "us-east-1").split(separator: ",").map(String.init)
        var out: [(String, [(Evidence, JSONValue)])] = []
        for region in regions {
            let resource = "region/\(region)"
            if let failure = index.failures(source: source, operation: operation, resource: resource).first {
                return .failure(Reason(text: "\(what) of \(region) could not be collected: \(failure.reason)", evidence: []))
            }
            let items = index.evidence(source: source, operation: operation, resource: resource)
            if items.isEmpty { return .failure(Reason(text: "\(what) of \(region) was not collected", evidence: [])) }
            var pages: [(Evidence, JSONValue)] = []
            for item in items {
                guard case .value(let value) = EvidenceReader.value(item, in: index) else {
                    return .failure(Reason(text: "\(what) of \(region) is unreadable", evidence: items))
                }
                pages.append((item, value))
            }
            out.append((region, pages))
        }
        return .success(out)
    }

    public static let securityGroupsCloseAdminPorts = Check(
        id: "aws.security-groups-restrict-admin-ports",
        reads: [reading(Op.describeSecurityGroups, "DescribeSecurityGroupsResponse.securityGroupInfo")]
    ) { index, organization in
        switch perRegion(index, organization, Op.describeSecurityGroups, "the security groups") {
        case .failure(let reason): return reason.verdict
        case .success(let regions):
            var findings: [String] = []
            for (region, pages) in regions {
                for group in pages.flatMap({ list($0.1["DescribeSecurityGroupsResponse"]?["securityGroupInfo"]) }) {
                    for rule in list(group["ipPermissions"]) {
                        let proto = rule["ipProtocol"]?.string ?? ""
                        let from = rule["fromPort"]?.string.flatMap(Int.init) ?? 0
                        let to = rule["toPort"]?.string.flatMap(Int.init) ?? 65535
                        let open4 = list(rule["ipRanges"]).contains { $0["cidrIp"]?.string == "0.0.0.0/0" }
                        let open6 = list(rule["ipv6Ranges"]).contains { $0["cidrIpv6"]?.string == "::/0" }
                        guard open4 || open6, proto == "-1" || proto == "tcp" || proto == "6" else { continue }
                        for port in [22, 3389] where proto == "-1" || (from...max(from, to)).contains(port) {
                            findings.append("\(region) \(group["groupId"]?.string ?? "?") (\(group["groupName"]?.string ?? "?")): port \(port) open to \(open4 ? "0.0.0.0/0" : "::/0")")
                        }
                    }
                }
            }
            return verdict(findings, pass: "No security group opens 22 or 3389 to the internet.",
                           fail: "{n} rule(s) open SSH or RDP to the internet.", evidence: regions.flatMap { $0.pages.map(\.0) })
        }
    }

    public static let ebsEncryptionByDefault = Check(
        id: "aws.ebs-encryption-by-default", reads: [reading(Op.getEbsEncryptionByDefault, "GetEbsEncryptionByDefaultResponse.ebsEncryptionByDefault")]
    ) { index, organization in
        switch perRegion(index, organization, Op.getEbsEncryptionByDefault, "EBS default encryption") {
        case .failure(let reason): return reason.verdict
        case .success(let regions):
            let findings = regions.filter { region in
                region.pages.last?.1["GetEbsEncryptionByDefaultResponse"]?["ebsEncryptionByDefault"]?.string != "true"
            }.map { "\($0.region): EBS encryption by default is off" }
            return verdict(findings, pass: "EBS encryption by default is on.", fail: "{n} region(s) do not encrypt EBS by default.",
                           evidence: regions.flatMap { $0.pages.map(\.0) })
        }
    }

    public static let kmsKeyRotation = Check(
        id: "aws.kms-key-rotation", reads: [reading(Op.describeKey, "KeyMetadata"), reading(Op.getKeyRotationStatus, "KeyRotationEnabled"),
                reading(Op.listKeys, "Keys")]
    ) { index, organization in
        if case .failure(let reason) = perRegion(index, organization, Op.listKeys, "the key list") { return reason.verdict }
        var findings: [String] = []
        var evidence: [Evidence] = []
        var considered = 0
        for item in index.evidence(source: source, operation: Op.describeKey) {
            guard case .value(let value) = EvidenceReader.value(item, in: index), let metadata = value["KeyMetadata"] else {
                return .init(.notVerified, "the description of \(item.resource) is unreadable", evidence: [item])
            }
            guard metadata["KeyManager"]?.string == "CUSTOMER", metadata["KeyState"]?.string == "Enabled",
                  (metadata["KeySpec"]?.string ?? "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT" else { continue }
            considered += 1
            evidence.append(item)
            guard let rotation = index.evidence(source: source, operation: Op.getKeyRotationStatus, resource: item.resource).last,
                  case .value(let status) = EvidenceReader.value(rotation, in: index) else {
                let failure = index.failures(source: source, operation: Op.getKeyRotationStatus, resource: item.resource).first
                return .init(.notVerified, "the rotation of \(item.resource) " + (failure.map { "could not be collected: \($0.reason)" } ?? "was not collected"),
                             evidence: evidence)
            }
            evidence.append(rotation)
            if status["KeyRotationEnabled"]?.bool != true { findings.append("\(item.resource.dropFirst(4)): rotation off") }
        }
        if let failure = index.failures(source: source, operation: Op.describeKey).first {
            return .init(.notVerified, "a key could not be described: \(failure.reason)", evidence: evidence)
        }
        if considered == 0 { return .init(.notApplicable, "No enabled customer-managed symmetric KMS key.", evidence: evidence) }
        return verdict(findings, pass: "Every customer-managed key rotates.", fail: "{n} customer-managed key(s) do not rotate.",
                       evidence: evidence)
    }

    public static let databasesProtected = Check(
        id: "aws.rds-encrypted-private-backed-up",
        reads: [reading(Op.describeDBInstances, "DescribeDBInstancesResponse.DescribeDBInstancesResult.DBInstances")]
    ) { index, organization in
        switch perRegion(index, organization, Op.describeDBInstances, "the database list") {
        case .failure(let reason): return reason.verdict
        case .success(let regions):
            var findings: [String] = []
            var count = 0
            for (region, pages) in regions {
                for db in pages.flatMap({ list($0.1["DescribeDBInstancesResponse"]?["DescribeDBInstancesResult"]?["DBInstances"]) }) {
                    count += 1
                    let name = "\(region) \(db["DBInstanceIdentifier"]?.string ?? "?")"
                    if db["StorageEncrypted"]?.string != "true" { findings.append("\(name): storage not encrypted") }
                    if db["PubliclyAccessible"]?.string == "true" { findings.append("\(name): publicly accessible") }
                    let retention = db["BackupRetentionPeriod"]?.string.flatMap(Int.init) ?? 0
                    if retention < 7 { findings.append("\(name): backups kept \(retention) days") }
                }
            }
            let evidence = regions.flatMap { $0.pages.map(\.0) }
            if count == 0 { return .init(.notApplicable, "No RDS database in the regions read.", evidence: evidence) }
            return verdict(findings, pass: "Every database is encrypted, private and backed up for a week or more.",
                           fail: "{n} database setting(s) fall short.", evidence: evidence)
        }
    }

    public static let guardDutyEnabled = Check(
        id: "aws.guardduty-enabled", reads: [reading(Op.listDetectors, "detectorIds"), reading(Op.getDetector, "status")]
    ) { index, organization in
        switch perRegion(index, organization, Op.listDetectors, "the GuardDuty detectors") {
        case .failure(let reason): return reason.verdict
        case .success(let regions):
            var findings: [String] = []
            var evidence = regions.flatMap { $0.pages.map(\.0) }
            for (region, pages) in regions {
                let ids = pages.flatMap { $0.1["detectorIds"]?.array ?? [] }.compactMap(\.string)
                let enabled = ids.contains { id in
                    guard let detector = index.evidence(source: source, operation: Op.getDetector, resource: "detector/\(id)").last,
                          case .value(let value) = EvidenceReader.value(detector, in: index) else { return false }
                    evidence.append(detector)
                    return value["status"]?.string == "ENABLED"
                }
                if !enabled { findings.append("\(region): no enabled detector") }
            }
            return verdict(findings, pass: "GuardDuty is on in every region read.", fail: "{n} region(s) have no GuardDuty.",
                           evidence: evidence)
        }
    }

    public static let vpcFlowLogs = Check(
        id: "aws.vpc-flow-logs", reads: [reading(Op.describeVpcs, "DescribeVpcsResponse.vpcSet"), reading(Op.describeFlowLogs, "DescribeFlowLogsResponse.flowLogSet")]
    ) { index, organization in
        let vpcs = perRegion(index, organization, Op.describeVpcs, "the VPC list")
        let logs = perRegion(index, organization, Op.describeFlowLogs, "the flow logs")
        guard case .success(let vpcRegions) = vpcs else { if case .failure(let r) = vpcs { return r.verdict }; return .init(.notVerified, "") }
        guard case .success(let logRegions) = logs else { if case .failure(let r) = logs { return r.verdict }; return .init(.notVerified, "") }
        var logged = Set<String>()
        for (_, pages) in logRegions {
            for flow in pages.flatMap({ list($0.1["DescribeFlowLogsResponse"]?["flowLogSet"]) }) where flow["flowLogStatus"]?.string == "ACTIVE" {
                if let resource = flow["resourceId"]?.string { logged.insert(resource) }
            }
        }
        var findings: [String] = []
        var count = 0
        for (region, pages) in vpcRegions {
            for vpc in pages.flatMap({ list($0.1["DescribeVpcsResponse"]?["vpcSet"]) }) {
                count += 1
                if let id = vpc["vpcId"]?.string, !logged.contains(id) { findings.append("\(region) \(id): no active flow log") }
            }
        }
        let evidence = (vpcRegions + logRegions).flatMap { $0.pages.map(\.0) }
        if count == 0 { return .init(.notApplicable, "No VPC in the regions read.", evidence: evidence) }
        return verdict(findings, pass: "Every VPC records flow logs.", fail: "{n} VPC(s) record no flow logs.", evidence: evidence)
    }
}
