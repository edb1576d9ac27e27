import Foundation
import PipelineTesting
import Testing

/// The AWS source against moto_server with signature checking, through the accounts
/// `scripts/seed-moto.py` seeds (Tests/Peers/aws_world.py): the pipeline's own credentials
/// assume each customer's audit role with its external id, as compliance tools connect.
struct AWSAccount {
    static let good = "111122223333"
    static let poor = "444455556666"
    static let limited = "777788889999"
    static let externalID = "lightsail-ext-7f3a"
    static func role(_ account: String) -> String { "arn:aws:iam::\(account):role/lightsail-audit" }
}

/// A definition reading AWS alone, written where a test can run it by path.
func awsDefinition(in folder: URL) throws -> URL {
    let file = folder.appendingPathComponent("aws-audit.yml")
    try """
    name: aws-audit
    description: AWS account evidence, checked and scored.
    stages:
      - type: collect
        sources: [aws]
      - type: validate
        frameworks: [soc2, iso27001]
      - type: store
      - type: score
        frameworks: [soc2, iso27001]
      - type: render
        outputs: [pdf, bundle]
    """.write(to: file, atomically: true, encoding: .utf8)
    return file
}

/// An organization whose AWS integration assumes `account`'s audit role with the peer's keys.
func awsOrganization(_ id: String, account: String, cli: CLI, s3: Peers.S3, secret: String? = nil) throws {
    let added = try cli.run(["orgs", "add", id, "--name", id.capitalized])
    guard added.status == 0 else { throw ToolFailure("orgs add", added) }
    let connect = try cli.run(["integrations", "add", "--org", id, "--kind", "aws", "--access-key-id-env", "AK",
                               "--secret-access-key-env", "SK", "--role-arn", AWSAccount.role(account),
                               "--external-id", AWSAccount.externalID, "--endpoint", s3.endpoint],
                              environment: ["AK": s3.accessKeyID, "SK": secret ?? s3.secretAccessKey])
    guard connect.status == 0 else { throw ToolFailure("integrations add", connect) }
}

@Suite(.serialized) struct LiveAWSTests {
    @Test func aWellKeptAccountPassesWhatItKeepsAndAPoorOneFailsWhatItLacks() throws {
        let s3 = try Peers.requireS3()
        let cli = try CLI(demo: false)
        try awsOrganization("good", account: AWSAccount.good, cli: cli, s3: s3)
        try awsOrganization("poor", account: AWSAccount.poor, cli: cli, s3: s3)
        let probe = try cli.run(["integrations", "test", "--org", "good", "--kind", "aws"])
        #expect(probe.stdout == "good: aws works: account 111122223333 as arn:aws:sts::111122223333:assumed-role/lightsail-audit/lightsail-good\n",
                "\(probe.stderr)")

        let definition = try awsDefinition(in: cli.dataDir)
        let good = try cli.run(["run", definition.path, "--org", "good", "--json"])
        #expect(good.status == 0, "\(good.stderr)")
        let goodChecks = checkStatuses(try runJSON(good))
        #expect(goodChecks.count == 18)
        // moto keeps no root MFA; its GuardDuty refuses every signature (boto3's too).
        #expect(goodChecks.filter { $0.value != "pass" } == ["aws.root-mfa-enabled": "fail", "aws.guardduty-enabled": "not_verified"])

        let poor = try cli.run(["run", definition.path, "--org", "poor", "--json"])
        #expect(poor.status == 0, "\(poor.stderr)")
        let poorChecks = checkStatuses(try runJSON(poor))
        for failing in ["aws.console-users-have-mfa", "aws.password-policy-strong", "aws.no-full-admin-policies",
                        "aws.no-privilege-escalation-policies", "aws.s3-buckets-encrypted",
                        "aws.s3-public-access-blocked", "aws.s3-tls-only", "aws.cloudtrail-multi-region-logging",
                        "aws.security-groups-restrict-admin-ports", "aws.ebs-encryption-by-default", "aws.kms-key-rotation",
                        "aws.rds-encrypted-private-backed-up", "aws.vpc-flow-logs"] {
            #expect(poorChecks[failing] == "fail", "\(failing)")
        }
        let findings = try cli.sql("SELECT findings FROM check_results WHERE organization_id = 'poor' AND check_id = 'aws.security-groups-restrict-admin-ports'")
        #expect(findings.contains("port 22 open to 0.0.0.0") && findings.contains("port 3389 open to ::"))
        #expect(try cli.sql("SELECT findings FROM check_results WHERE organization_id = 'poor' AND check_id = 'aws.console-users-have-mfa'")
                == #"["bob: console password without MFA"]"#)
        let escalation = try cli.sql("SELECT findings FROM check_results WHERE organization_id = 'poor' AND check_id = 'aws.no-privilege-escalation-policies'")
        #expect(escalation.contains("ci-deployer: allows iam:PassRole on *"), "\(escalation)")

        // Every stored answer says where it came from, and holds no credential.
        let metadata = try cli.sql("SELECT DISTINCT source || ' ' || operation FROM evidence WHERE organization_id = 'poor' ORDER BY 1")
        #expect(metadata.contains("aws iam/GetCredentialReport") && metadata.contains("aws ec2/DescribeSecurityGroups"))
        #expect(try filesHolding(s3.secretAccessKey, under: cli.dataDir).isEmpty)
        #expect(!good.stderr.contains(s3.secretAccessKey) && !poor.stdout.contains(s3.secretAccessKey))
    }

    @Test func anAccessDeniedIsNotCollectedWithItsReasonAndItsChecksAreNotVerified() throws {
        let s3 = try Peers.requireS3()
        let cli = try CLI(demo: false)
        try awsOrganization("limited", account: AWSAccount.limited, cli: cli, s3: s3)
        let run = try cli.run(["run", try awsDefinition(in: cli.dataDir).path, "--org", "limited", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let checks = checkStatuses(try runJSON(run))
        #expect(checks["aws.console-users-have-mfa"] == "not_verified")
        #expect(checks["aws.access-keys-rotated"] == "not_verified")
        #expect(checks["aws.password-policy-strong"] == "fail")
        let reason = try cli.sql("SELECT reason FROM check_results WHERE check_id = 'aws.console-users-have-mfa'")
        #expect(reason.contains("iam/GetCredentialReport answered 403 AccessDenied"), "\(reason)")
    }

    /// A wrong secret fails the AWS integration with the reason, and the organization's GitHub
    /// integration still runs.
    @Test func aWrongSecretFailsThatIntegrationAndTheOthersRun() throws {
        let s3 = try Peers.requireS3()
        let cli = try CLI()
        let connect = try cli.run(["integrations", "add", "--org", "acme", "--kind", "aws", "--access-key-id-env", "AK",
                                   "--secret-access-key-env", "SK", "--role-arn", AWSAccount.role(AWSAccount.good),
                                   "--external-id", AWSAccount.externalID, "--endpoint", s3.endpoint],
                                  environment: ["AK": s3.accessKeyID, "SK": "wrong-secret-wrong-secret"])
        #expect(connect.status == 0)
        let definition = cli.dataDir.appendingPathComponent("both.yml")
        try """
        name: both
        description: GitHub and AWS.
        stages:
          - type: collect
            sources: [github, aws]
          - type: validate
            frameworks: [soc2]
          - type: store
        """.write(to: definition, atomically: true, encoding: .utf8)
        let run = try cli.run(["run", definition.path, "--org", "acme", "--json"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("pipeline: error: acme: the aws integration failed: STS refused to assume \(AWSAccount.role(AWSAccount.good)) (SignatureDoesNotMatch, HTTP 403)"))
        let checks = checkStatuses(try runJSON(run))
        #expect(checks["github.org-requires-2fa"] == "pass")
        #expect(checks["aws.root-mfa-enabled"] == "not_verified")
        #expect(!run.stderr.contains("wrong-secret"))
    }

    /// Without sealed keys the standard chain is used (here the environment), and AWS_ENDPOINT_URL
    /// stands for --endpoint.
    @Test func theStandardChainAndAWSEndpointURLAreHonoured() throws {
        let s3 = try Peers.requireS3()
        let cli = try CLI(demo: false)
        #expect(try cli.run(["orgs", "add", "self", "--name", "Ourselves"]).status == 0)
        #expect(try cli.run(["integrations", "add", "--org", "self", "--kind", "aws", "--regions", "us-east-1,eu-west-1"]).status == 0)
        let environment = ["AWS_ACCESS_KEY_ID": s3.accessKeyID, "AWS_SECRET_ACCESS_KEY": s3.secretAccessKey,
                           "AWS_ENDPOINT_URL": s3.endpoint]
        let probe = try cli.run(["integrations", "test", "--org", "self", "--kind", "aws"], environment: environment)
        #expect(probe.stdout == "self: aws works: account 123456789012 as arn:aws:iam::123456789012:user/lightsail-ci\n", "\(probe.stderr)")
        let noCredentials = try cli.run(["integrations", "test", "--org", "self", "--kind", "aws"],
                                        environment: ["AWS_ENDPOINT_URL": s3.endpoint, "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                                                      "AWS_CONFIG_FILE": "/nonexistent", "AWS_ACCESS_KEY_ID": ""])
        #expect(noCredentials.status != 0)
        #expect(noCredentials.stderr.contains("no AWS credentials"))
    }
}
