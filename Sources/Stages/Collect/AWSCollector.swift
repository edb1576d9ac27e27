import Foundation
import Logging
import Pipeline

/// Collects AWS account evidence over the services' own protocols: the query protocol (XML) of
/// IAM, STS, EC2 and RDS, S3's REST XML, the JSON 1.1 protocol of CloudTrail and KMS, and
/// GuardDuty's REST JSON. Every request names the service and region it is signed for in its
/// attributes; the transport beneath signs it (SigV4) or a replay answers it. Pagination
/// (Marker, NextToken, IsTruncated) is followed; an AccessDenied is recorded as not collected with
/// its reason; NoSuchEntity and its kin are evidence of absence (no password policy, no bucket
/// encryption), never a crash.
public struct AWSCollector: EvidenceCollector {
    public let source = "aws"
    /// Follow at most this many pages of one listing.
    public let maxPages: Int

    public init(maxPages: Int = 200) {
        self.maxPages = maxPages
    }

    public enum Operation {
        public static let getCallerIdentity = "sts/GetCallerIdentity"
        public static let getAccountSummary = "iam/GetAccountSummary"
        public static let getCredentialReport = "iam/GetCredentialReport"
        public static let getPasswordPolicy = "iam/GetAccountPasswordPolicy"
        public static let listUsers = "iam/ListUsers"
        public static let listAttachedUserPolicies = "iam/ListAttachedUserPolicies"
        public static let listGroups = "iam/ListGroups"
        public static let listAttachedGroupPolicies = "iam/ListAttachedGroupPolicies"
        public static let listPolicies = "iam/ListPolicies"
        public static let getPolicyVersion = "iam/GetPolicyVersion"
        public static let listBuckets = "s3/ListBuckets"
        public static let getBucketEncryption = "s3/GetBucketEncryption"
        public static let getPublicAccessBlock = "s3/GetPublicAccessBlock"
        public static let getBucketVersioning = "s3/GetBucketVersioning"
        public static let getBucketPolicy = "s3/GetBucketPolicy"
        public static let describeTrails = "cloudtrail/DescribeTrails"
        public static let getTrailStatus = "cloudtrail/GetTrailStatus"
        public static let describeSecurityGroups = "ec2/DescribeSecurityGroups"
        public static let getEbsEncryptionByDefault = "ec2/GetEbsEncryptionByDefault"
        public static let describeVpcs = "ec2/DescribeVpcs"
        public static let describeFlowLogs = "ec2/DescribeFlowLogs"
        public static let listKeys = "kms/ListKeys"
        public static let describeKey = "kms/DescribeKey"
        public static let getKeyRotationStatus = "kms/GetKeyRotationStatus"
        public static let describeDBInstances = "rds/DescribeDBInstances"
        public static let listDetectors = "guardduty/ListDetectors"
        public static let getDetector = "guardduty/GetDetector"
    }

    static let iamVersion = "2010-05-08"
    static let ec2Version = "2016-11-15"

    public func collect(for organization: Organization, context: CollectContext,
                        emit: @escaping @Sendable (CollectEvent) async -> Void) async throws {
        let session = try Session(organization: organization, context: context, emit: emit, maxPages: maxPages)
        // Who the credentials are: refused credentials fail the source at once, with the reason.
        try await session.identity()
        async let iam: Void = session.iam()
        async let s3: Void = session.s3()
        try await forEachConcurrently(session.regions, width: min(4, max(1, context.concurrency))) { region in
            await session.regional(region)
        }
        _ = await (iam, s3)
        try Task.checkCancellation()
    }

    public func probe(_ organization: Organization, transport: any HTTPTransport) async throws -> String {
        let context = CollectContext(transport: transport, concurrency: 1, asOf: Date(), freshFor: .seconds(0),
                                     logger: Logger(label: "lightsail.probe"))
        let session = try Session(organization: organization, context: context, emit: { _ in }, maxPages: 1)
        let document = try await session.identity()
        let result = document["GetCallerIdentityResponse"]?["GetCallerIdentityResult"]
        return "account \(result?["Account"]?.string ?? "?") as \(result?["Arn"]?.string ?? "?")"
    }

    /// One collection run against one AWS account.
    struct Session: Sendable {
        let organization: Organization
        let context: CollectContext
        let emit: @Sendable (CollectEvent) async -> Void
        let maxPages: Int
        let endpoint: URL?
        let regions: [String]
        let homeRegion: String

        init(organization: Organization, context: CollectContext, emit: @escaping @Sendable (CollectEvent) async -> Void,
             maxPages: Int) throws {
            let settings = organization.integrations["aws"] ?? [:]
            self.organization = organization
            self.context = context
            self.emit = emit
            self.maxPages = maxPages
            if let text = settings["endpoint"] {
                guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                    throw PipelineError(.configuration, "AWS endpoint \(quotedForMessage(text)) of \(organization.id) is not an http(s) URL")
                }
                endpoint = url
            } else {
                endpoint = nil
            }
            regions = (settings["regions"] ?? "us-east-1").split(separator: ",").map(String.init).filter { !$0.isEmpty }
            guard !regions.isEmpty, regions.allSatisfy({ $0.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" } }) else {
                throw PipelineError(.configuration, "AWS regions of \(organization.id) are not a list of region names")
            }
            homeRegion = regions[0]
        }

        // MARK: Requests

        enum Wire {
            case query(version: String)
            case restXML
            case json11(target: String)
            case restJSON

            var mediaType: String {
                switch self {
                case .query, .restXML: return "text/xml"
                case .json11: return "application/x-amz-json-1.1"
                case .restJSON: return "application/json"
                }
            }
        }

        struct Call {
            var service: String
            var region: String
            var proto: Wire
            var path = "/"
            var parameters: [(String, String)] = []
            var body: [String: Any]?
        }

        func url(for call: Call) throws -> URL {
            let base: URL
            if let endpoint {
                base = endpoint
            } else {
                let host: String
                switch call.service {
                case "iam": host = "iam.amazonaws.com"
                case "s3": host = "s3.\(call.region).amazonaws.com"
                default: host = "\(call.service).\(call.region).amazonaws.com"
                }
                base = URL(string: "https://\(host)")!
            }
            // The query protocol sends its parameters as a form body (see `request`).
            var query = call.parameters
            if case .query = call.proto { query = [] }
            var text = base.absoluteString
            if text.hasSuffix("/") { text.removeLast() }
            text += call.path
            if !query.isEmpty {
                text += "?" + query.map { Self.encode($0.0) + ($0.1.isEmpty && call.proto.isSubresource ? "" : "=" + Self.encode($0.1)) }
                    .joined(separator: "&")
            }
            guard let url = URL(string: text) else { throw PipelineError(.configuration, "cannot form an AWS URL for \(call.path)") }
            return url
        }

        static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
        static func encode(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text }

        func request(_ call: Call) throws -> HTTPRequest {
            var request = HTTPRequest(method: "GET", url: try url(for: call), headers: [("Accept", "*/*")],
                                      attributes: ["aws.service": call.service, "aws.region": call.region])
            switch call.proto {
            case .query(let version):
                // As the SDKs send it: POST with a form body, which signs the parameters as bytes.
                request.method = "POST"
                request.headers = [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]
                let action = call.parameters.first { $0.0 == "Action" }.map { [$0] } ?? []
                let parameters = action + [("Version", version)] + call.parameters.filter { $0.0 != "Action" }
                request.body = .data(Data(parameters.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&").utf8))
            case .json11(let target):
                request.method = "POST"
                request.headers = [("X-Amz-Target", target), ("Content-Type", "application/x-amz-json-1.1")]
                let body = try JSONSerialization.data(withJSONObject: call.body ?? [:], options: [.sortedKeys])
                request.body = .data(body)
            case .restJSON:
                request.headers = [("Accept", "application/json")]
            default:
                break
            }
            return request
        }

        /// Sends a call; an answer with an accepted status becomes evidence and is returned
        /// parsed (XML or JSON); anything else is recorded as not collected with AWS's reason.
        @discardableResult
        func fetch(_ operation: String, _ call: Call, resource: String, accepting: Set<Int> = [200],
                   absence: Set<String> = []) async -> JSONValue? {
            let request: HTTPRequest
            do {
                request = try self.request(call)
            } catch {
                await fail(operation, resource, "\(error)")
                return nil
            }
            let response: HTTPResponse
            do {
                response = try await context.transport.send(request)
            } catch {
                await fail(operation, resource, "\(call.service) \(operation.split(separator: "/").last ?? ""): \(error)")
                return nil
            }
            var accepted = accepting.contains(response.status)
            let error = accepted ? nil : Self.awsError(response)
            // "There is none" answers (NoSuchEntity, ServerSideEncryptionConfigurationNotFoundError)
            // are evidence of absence.
            if let error, absence.contains(error.code) { accepted = true }
            guard accepted else {
                let (code, message) = error ?? ("HTTP\(response.status)", "")
                await fail(operation, resource, "\(operation) answered \(response.status) \(code)" + (message.isEmpty ? "" : ": \(quotedForMessage(message, limit: 160))"))
                return nil
            }
            let summary = Self.summary(request)
            do {
                let evidence = try EvidenceFactory.make(
                    organization: organization.id, source: "aws", operation: operation, resource: resource,
                    request: summary, status: response.status, mediaType: Self.mediaType(response.body, call.proto), body: response.body,
                    collectedAt: context.asOf, freshFor: context.freshFor)
                await emit(.evidence(evidence, body: response.body))
            } catch {
                await fail(operation, resource, "\(summary): \(error)")
                return nil
            }
            if response.body.isEmpty { return .null }
            if Self.mediaType(response.body, call.proto).contains("xml") { return try? XMLValue.parse(response.body) }
            return try? JSONProjection([FieldPath("")]).apply(response.body)
        }

        /// What the body is, by its first byte: S3 answers a bucket policy in JSON, and errors of
        /// any protocol in XML.
        static func mediaType(_ body: Data, _ proto: Wire) -> String {
            switch body.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) {
            case UInt8(ascii: "<")?: return "text/xml"
            case UInt8(ascii: "{")?, UInt8(ascii: "[")?:
                if case .json11 = proto { return "application/x-amz-json-1.1" }
                return "application/json"
            default: return proto.mediaType
            }
        }

        /// The request as evidence records it: method, path and query, and the JSON target.
        static func summary(_ request: HTTPRequest) -> String {
            var text = request.summary
            if let target = request.header("X-Amz-Target") { text += " " + target }
            if case .data(let body) = request.body, body.count <= 512 { text += " " + String(decoding: body, as: UTF8.self) }
            return text
        }

        static func awsError(_ response: HTTPResponse) -> (code: String, message: String) {
            if let document = try? XMLValue.parse(response.body), let error = Self.firstObject(holding: "Code", in: document),
               let code = error["Code"]?.string {
                // <ErrorResponse><Error>, <Response><Errors><Error>, S3's <Error>.
                return (code, error["Message"]?.string ?? "")
            }
            if let object = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any] {
                let type = object["__type"] as? String ?? object["code"] as? String ?? object["Code"] as? String
                if let type {
                    return (type.split(separator: "#").last.map(String.init) ?? type,
                            object["message"] as? String ?? object["Message"] as? String ?? "")
                }
            }
            return ("HTTP\(response.status)", "")
        }

        static func firstObject(holding key: String, in value: JSONValue) -> JSONValue? {
            switch value {
            case .object(let object):
                if object[key]?.string != nil { return value }
                for child in object.values { if let found = firstObject(holding: key, in: child) { return found } }
            case .array(let list):
                for child in list { if let found = firstObject(holding: key, in: child) { return found } }
            default: break
            }
            return nil
        }

        func fail(_ operation: String, _ resource: String, _ reason: String) async {
            context.logger.warning("evidence not collected", metadata: ["operation": "\(operation)", "resource": "\(resource)",
                                                                         "reason": "\(reason)"])
            await emit(.failure(CollectionFailure(source: "aws", operation: operation, resource: resource, reason: reason)))
        }

        func query(_ service: String, _ region: String, _ action: String, version: String,
                   _ parameters: [(String, String)] = []) -> Call {
            Call(service: service, region: region, proto: .query(version: version), parameters: [("Action", action)] + parameters)
        }

        /// Follows a query protocol listing: `marker` names the request parameter, `next` finds
        /// the next page's token in an answer (nil at the end). Returns every page.
        func pages(_ operation: String, _ call: Call, resource: String, marker: String,
                   next: (JSONValue) -> String?) async -> [JSONValue] {
            var call = call
            var out: [JSONValue] = []
            var seen = Set<String>()
            for _ in 0..<maxPages {
                guard let page = await fetch(operation, call, resource: resource) else { return out }
                out.append(page)
                guard let token = next(page), !token.isEmpty else { return out }
                guard seen.insert(token).inserted else {
                    context.logger.warning("pagination repeats a token; the listing ends here", metadata: ["operation": "\(operation)"])
                    return out
                }
                call.parameters.removeAll { $0.0 == marker }
                call.parameters.append((marker, token))
            }
            await fail(operation, resource, "more than \(maxPages) pages; the listing was cut short")
            return out
        }

        // MARK: Identity

        @discardableResult
        func identity() async throws -> JSONValue {
            let call = query("sts", homeRegion, "GetCallerIdentity", version: "2011-06-15")
            let request = try self.request(call)
            let response: HTTPResponse
            do {
                response = try await context.transport.send(request)
            } catch let error as PipelineError where error.code == .authentication {
                throw error
            }
            guard response.status == 200 else {
                let (code, message) = Self.awsError(response)
                if response.status == 403 || ["InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "AccessDenied"].contains(code) {
                    throw PipelineError(.authentication, "AWS refused the credentials (\(code), HTTP \(response.status))" + (message.isEmpty ? "" : ": \(quotedForMessage(message, limit: 160))"),
                                        fields: [.httpStatus: "\(response.status)"])
                }
                throw PipelineError(.transport, "STS GetCallerIdentity answered \(response.status) \(code)", fields: [.httpStatus: "\(response.status)"])
            }
            let evidence = try EvidenceFactory.make(
                organization: organization.id, source: "aws", operation: Operation.getCallerIdentity, resource: "account",
                request: Self.summary(request), status: 200, mediaType: "text/xml", body: response.body,
                collectedAt: context.asOf, freshFor: context.freshFor)
            await emit(.evidence(evidence, body: response.body))
            return (try? XMLValue.parse(response.body)) ?? .null
        }

        // MARK: IAM (global)

        func iam() async {
            let region = "us-east-1"
            async let summary: Void = { _ = await fetch(Operation.getAccountSummary, query("iam", region, "GetAccountSummary", version: iamVersion),
                                                         resource: "account") }()
            async let policy: Void = { _ = await fetch(Operation.getPasswordPolicy, query("iam", region, "GetAccountPasswordPolicy", version: iamVersion),
                                                        resource: "account", absence: ["NoSuchEntity"]) }()
            async let report: Void = credentialReport(region)
            async let users: Void = usersAndGroups(region)
            async let policies: Void = customerPolicies(region)
            _ = await (summary, policy, report, users, policies)
        }

        /// Asks IAM to generate the credential report, waits while it is being made (a few
        /// seconds at most), then reads it.
        func credentialReport(_ region: String) async {
            let generate = query("iam", region, "GenerateCredentialReport", version: iamVersion)
            for attempt in 0..<10 {
                guard let request = try? self.request(generate), let answer = try? await context.transport.send(request) else { break }
                let state = (try? XMLValue.parse(answer.body))?["GenerateCredentialReportResponse"]?["GenerateCredentialReportResult"]?["State"]?.string
                if answer.status != 200 || state == "COMPLETE" { break }
                try? await Task.sleep(for: .milliseconds(500 * (attempt + 1)))
            }
            await fetch(Operation.getCredentialReport, query("iam", region, "GetCredentialReport", version: iamVersion), resource: "account")
        }

        func usersAndGroups(_ region: String) async {
            let userPages = await pages(Operation.listUsers, query("iam", region, "ListUsers", version: iamVersion, [("MaxItems", "1000")]),
                                        resource: "account", marker: "Marker") { Self.iamMarker($0, "ListUsers") }
            let users = userPages.flatMap { Self.list($0["ListUsersResponse"]?["ListUsersResult"]?["Users"]) }.compactMap { $0["UserName"]?.string }
            let groupPages = await pages(Operation.listGroups, query("iam", region, "ListGroups", version: iamVersion, [("MaxItems", "1000")]),
                                         resource: "account", marker: "Marker") { Self.iamMarker($0, "ListGroups") }
            let groups = groupPages.flatMap { Self.list($0["ListGroupsResponse"]?["ListGroupsResult"]?["Groups"]) }.compactMap { $0["GroupName"]?.string }
            try? await forEachConcurrently(users, width: max(1, context.concurrency)) { user in
                _ = await pages(Operation.listAttachedUserPolicies,
                                query("iam", region, "ListAttachedUserPolicies", version: iamVersion, [("UserName", user)]),
                                resource: "user/\(user)", marker: "Marker") { Self.iamMarker($0, "ListAttachedUserPolicies") }
            }
            try? await forEachConcurrently(groups, width: max(1, context.concurrency)) { group in
                _ = await pages(Operation.listAttachedGroupPolicies,
                                query("iam", region, "ListAttachedGroupPolicies", version: iamVersion, [("GroupName", group)]),
                                resource: "group/\(group)", marker: "Marker") { Self.iamMarker($0, "ListAttachedGroupPolicies") }
            }
        }

        /// Customer-managed policies attached to anyone, each with its default version's document.
        func customerPolicies(_ region: String) async {
            let policyPages = await pages(Operation.listPolicies,
                                          query("iam", region, "ListPolicies", version: iamVersion,
                                                [("Scope", "Local"), ("OnlyAttached", "true"), ("MaxItems", "1000")]),
                                          resource: "account", marker: "Marker") { Self.iamMarker($0, "ListPolicies") }
            let policies = policyPages.flatMap { Self.list($0["ListPoliciesResponse"]?["ListPoliciesResult"]?["Policies"]) }
            try? await forEachConcurrently(policies, width: max(1, context.concurrency)) { policy in
                guard let arn = policy["Arn"]?.string, let version = policy["DefaultVersionId"]?.string else { return }
                await fetch(Operation.getPolicyVersion,
                            query("iam", region, "GetPolicyVersion", version: iamVersion, [("PolicyArn", arn), ("VersionId", version)]),
                            resource: arn)
            }
        }

        static func iamMarker(_ page: JSONValue, _ action: String) -> String? {
            let result = page["\(action)Response"]?["\(action)Result"]
            return result?["IsTruncated"]?.string == "true" ? result?["Marker"]?.string : nil
        }

        /// A list as XMLValue reads it: an array, one element (an object), or an empty wrapper.
        static func list(_ value: JSONValue?) -> [JSONValue] {
            switch value {
            case .array(let list)?: return list
            case .object?: return [value!]
            default: return []
            }
        }

        // MARK: S3

        func s3() async {
            guard let page = await fetch(Operation.listBuckets, Call(service: "s3", region: homeRegion, proto: .restXML), resource: "account") else {
                return
            }
            let buckets = Self.list(page["ListAllMyBucketsResult"]?["Buckets"]).compactMap { $0["Name"]?.string }
            try? await forEachConcurrently(buckets, width: max(1, context.concurrency)) { bucket in
                await self.bucket(bucket)
            }
        }

        func bucket(_ bucket: String) async {
            // The bucket's region signs its requests (a bucket answers only in its own region).
            var region = homeRegion
            let locate = subresource(bucket, "location", region: homeRegion)
            if let request = try? self.request(locate), let answer = try? await context.transport.send(request), answer.status == 200,
               let location = (try? XMLValue.parse(answer.body))?["LocationConstraint"]?.string {
                region = location.isEmpty ? "us-east-1" : (location == "EU" ? "eu-west-1" : location)
            }
            let resource = "bucket/\(bucket)"
            await fetch(Operation.getBucketEncryption, subresource(bucket, "encryption", region: region), resource: resource,
                        absence: ["ServerSideEncryptionConfigurationNotFoundError"])
            await fetch(Operation.getPublicAccessBlock, subresource(bucket, "publicAccessBlock", region: region), resource: resource,
                        absence: ["NoSuchPublicAccessBlockConfiguration"])
            await fetch(Operation.getBucketVersioning, subresource(bucket, "versioning", region: region), resource: resource)
            await fetch(Operation.getBucketPolicy, subresource(bucket, "policy", region: region), resource: resource,
                        absence: ["NoSuchBucketPolicy"])
        }

        /// Path-style (`s3.REGION.amazonaws.com/BUCKET?encryption`), which AWS still serves for
        /// every bucket, names with dots included, and which reads the same against any endpoint
        /// (and so in a recording).
        func subresource(_ bucket: String, _ name: String, region: String) -> Call {
            Call(service: "s3", region: region, proto: .restXML, path: "/\(Self.encode(bucket))", parameters: [(name, "")])
        }

        // MARK: Regional services

        func regional(_ region: String) async {
            let resource = "region/\(region)"
            async let trails: Void = cloudTrail(region)
            async let groups: Void = {
                _ = await pages(Operation.describeSecurityGroups,
                                query("ec2", region, "DescribeSecurityGroups", version: ec2Version, [("MaxResults", "1000")]),
                                resource: resource, marker: "NextToken") {
                    $0["DescribeSecurityGroupsResponse"]?["nextToken"]?.string
                }
            }()
            async let ebs: Void = { _ = await fetch(Operation.getEbsEncryptionByDefault,
                                                    query("ec2", region, "GetEbsEncryptionByDefault", version: ec2Version),
                                                    resource: resource) }()
            async let vpcs: Void = {
                _ = await pages(Operation.describeVpcs, query("ec2", region, "DescribeVpcs", version: ec2Version, [("MaxResults", "1000")]),
                                resource: resource, marker: "NextToken") { $0["DescribeVpcsResponse"]?["nextToken"]?.string }
                _ = await pages(Operation.describeFlowLogs, query("ec2", region, "DescribeFlowLogs", version: ec2Version, [("MaxResults", "1000")]),
                                resource: resource, marker: "NextToken") { $0["DescribeFlowLogsResponse"]?["nextToken"]?.string }
            }()
            async let keys: Void = kms(region)
            async let databases: Void = {
                _ = await pages(Operation.describeDBInstances,
                                query("rds", region, "DescribeDBInstances", version: "2014-10-31", [("MaxRecords", "100")]),
                                resource: resource, marker: "Marker") {
                    $0["DescribeDBInstancesResponse"]?["DescribeDBInstancesResult"]?["Marker"]?.string
                }
            }()
            async let detectors: Void = guardDuty(region)
            _ = await (trails, groups, ebs, vpcs, keys, databases, detectors)
        }

        func cloudTrail(_ region: String) async {
            let prefix = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."
            guard let answer = await fetch(Operation.describeTrails,
                                           Call(service: "cloudtrail", region: region, proto: .json11(target: prefix + "DescribeTrails"),
                                                body: ["includeShadowTrails": false]),
                                           resource: "region/\(region)") else { return }
            for trail in answer["trailList"]?.array ?? [] {
                guard let arn = trail["TrailARN"]?.string else { continue }
                await fetch(Operation.getTrailStatus,
                            Call(service: "cloudtrail", region: region, proto: .json11(target: prefix + "GetTrailStatus"), body: ["Name": arn]),
                            resource: arn)
            }
        }

        func kms(_ region: String) async {
            var marker: String?
            var keys: [String] = []
            for _ in 0..<maxPages {
                var body: [String: Any] = ["Limit": 1000]
                if let marker { body["Marker"] = marker }
                guard let page = await fetch(Operation.listKeys,
                                             Call(service: "kms", region: region, proto: .json11(target: "TrentService.ListKeys"), body: body),
                                             resource: "region/\(region)") else { break }
                keys += (page["Keys"]?.array ?? []).compactMap { $0["KeyId"]?.string }
                guard page["Truncated"]?.bool == true, let next = page["NextMarker"]?.string, next != marker else { break }
                marker = next
            }
            try? await forEachConcurrently(keys, width: max(1, context.concurrency)) { key in
                await fetch(Operation.describeKey,
                            Call(service: "kms", region: region, proto: .json11(target: "TrentService.DescribeKey"), body: ["KeyId": key]),
                            resource: "key/\(key)")
                await fetch(Operation.getKeyRotationStatus,
                            Call(service: "kms", region: region, proto: .json11(target: "TrentService.GetKeyRotationStatus"), body: ["KeyId": key]),
                            resource: "key/\(key)", accepting: [200])
            }
        }

        func guardDuty(_ region: String) async {
            guard let list = await fetch(Operation.listDetectors, Call(service: "guardduty", region: region, proto: .restJSON, path: "/detector"),
                                         resource: "region/\(region)") else { return }
            for id in (list["detectorIds"]?.array ?? []).compactMap(\.string) {
                await fetch(Operation.getDetector, Call(service: "guardduty", region: region, proto: .restJSON, path: "/detector/\(Self.encode(id))"),
                            resource: "detector/\(id)")
            }
        }
    }
}

extension AWSCollector.Session.Wire {
    /// S3 subresources (`?encryption`) are sent without `=`.
    var isSubresource: Bool { if case .restXML = self { return true } else { return false } }
}
