import Foundation
import Pipeline
import PipelineTesting
@testable import Stages
import Testing

/// The policy checks over IAM's XML answers: full administrators, and policies that let their
/// holder make itself one.
@Suite struct AWSPolicyChecksTests {
    typealias AWSOp = AWSCollector.Operation

    func xml(_ operation: String, resource: String, _ body: String) -> Answer {
        let data = Data(body.utf8)
        let evidence = try! EvidenceFactory.make(organization: try! OrganizationID("acme"), source: "aws", operation: operation,
                                                 resource: resource, request: "POST https://iam.amazonaws.com/", status: 200,
                                                 mediaType: "text/xml", body: data, collectedAt: asOf, freshFor: .seconds(3600))
        return Answer(evidence: evidence, body: data)
    }

    var listing: Answer {
        xml(AWSOp.listPolicies, resource: "account", """
        <ListPoliciesResponse><ListPoliciesResult><IsTruncated>false</IsTruncated><Policies>
        <member><PolicyName>p</PolicyName><Arn>arn:aws:iam::1:policy/p</Arn><DefaultVersionId>v1</DefaultVersionId></member>
        </Policies></ListPoliciesResult></ListPoliciesResponse>
        """)
    }

    func document(_ name: String, _ statement: String) -> Answer {
        let json = #"{"Version":"2012-10-17","Statement":\#(statement)}"#
        let encoded = json.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        return xml(AWSOp.getPolicyVersion, resource: "arn:aws:iam::1:policy/\(name)", """
        <GetPolicyVersionResponse><GetPolicyVersionResult><PolicyVersion><Document>\(encoded)</Document>
        <VersionId>v1</VersionId><IsDefaultVersion>true</IsDefaultVersion></PolicyVersion></GetPolicyVersionResult></GetPolicyVersionResponse>
        """)
    }

    @Test(arguments: [
        (#"{"Effect":"Allow","Action":"iam:Attach*","Resource":"*"}"#, "iam:AttachUserPolicy, iam:AttachGroupPolicy, iam:AttachRolePolicy"),
        (#"[{"Effect":"Allow","Action":["lambda:*","IAM:passrole"],"Resource":"*"}]"#, "iam:PassRole"),
        (#"{"Effect":"Allow","Action":"iam:*","Resource":"arn:aws:iam::1:*"}"#, nil as String?),
    ])
    func escalationIsFoundThroughWildcards(_ statement: String, _ expected: String?) {
        let result = evaluate(AWSChecks.noPrivilegeEscalationPolicies, index([listing, document("p", statement)]))
        #expect(result.status == .fail)
        if let expected { #expect(result.findings.first?.contains("allows \(expected) on") == true, "\(result.findings)") }
    }

    @Test func readOnlyAndDeniedPoliciesPass() {
        let readOnly = document("p", #"[{"Effect":"Allow","Action":["s3:Get*","iam:Get*","iam:List*"],"Resource":"*"},{"Effect":"Deny","Action":"iam:*","Resource":"*"}]"#)
        #expect(evaluate(AWSChecks.noPrivilegeEscalationPolicies, index([listing, readOnly])).status == .pass)
        #expect(evaluate(AWSChecks.noFullAdminPolicies, index([listing, readOnly])).status == .pass)
        // A role passed only on one named role is not everyone's.
        let scoped = document("p", #"{"Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::1:role/lambda-exec"}"#)
        #expect(evaluate(AWSChecks.noPrivilegeEscalationPolicies, index([listing, scoped])).status == .pass)
    }

    @Test func aPolicyThatCouldNotBeReadIsNotVerified() {
        let failure = CollectionFailure(source: "aws", operation: AWSOp.getPolicyVersion, resource: "arn:aws:iam::1:policy/p",
                                        reason: "AccessDenied")
        let result = evaluate(AWSChecks.noPrivilegeEscalationPolicies, index([listing], failures: [failure]))
        #expect(result.status == .notVerified)
        #expect(result.reason.contains("AccessDenied"))
    }

    @Test func iamPatternsMatchAsIAMDoes() {
        #expect(AWSChecks.matches("iam:*", "iam:PassRole"))
        #expect(AWSChecks.matches("IAM:Put*Policy", "iam:PutRolePolicy"))
        #expect(AWSChecks.matches("iam:?ass*", "iam:PassRole"))
        #expect(!AWSChecks.matches("iam:Get*", "iam:PassRole"))
        #expect(!AWSChecks.matches("iam:PassRol", "iam:PassRole"))
    }
}
