import Foundation
import Pipeline
import Transport

/// Storage chosen by URL: `file:///path` for a local directory, or
/// `s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1&path_style=true`.
/// Without `endpoint`, AWS S3 of the region is used with virtual-hosted addressing; with one,
/// path-style is the default (MinIO, moto; R2 works either way with `region=auto`).
public enum StorageURL {
    public enum Parsed: Sendable, Equatable {
        case local(URL)
        case s3(S3Location)
    }

    public static func parse(_ text: String) throws -> Parsed {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            throw PipelineError(.configuration, "storage URL \(quotedForMessage(text)) is not a URL: use file:///path or s3://bucket/prefix")
        }
        switch scheme {
        case "file":
            guard !components.path.isEmpty else { throw PipelineError(.configuration, "storage URL \(text) has no path") }
            return .local(URL(fileURLWithPath: components.path))
        case "s3":
            guard let bucket = components.host, isValidBucket(bucket) else {
                throw PipelineError(.configuration, "storage URL \(quotedForMessage(text)) names no valid bucket (3-63 lowercase letters, digits, '.', '-')")
            }
            var options: [String: String] = [:]
            for item in components.queryItems ?? [] { options[item.name] = item.value ?? "" }
            let known: Set = ["endpoint", "region", "path_style"]
            if let unknown = options.keys.sorted().first(where: { !known.contains($0) }) {
                throw PipelineError(.configuration, "storage URL option '\(unknown)' is unknown (known: endpoint, region, path_style)")
            }
            let region = options["region"] ?? ProcessInfo.processInfo.environment["AWS_REGION"]
                ?? ProcessInfo.processInfo.environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
            // The region becomes part of a host name and of every signature: letters, digits and
            // '-' only (us-east-1, eu-central-2, auto).
            guard isValidRegion(region) else {
                throw PipelineError(.configuration, "storage region \(quotedForMessage(region)) is not a region name such as us-east-1 (lowercase letters, digits and '-')")
            }
            let endpoint: URL
            if let given = options["endpoint"] {
                guard let url = URL(string: given), let endpointScheme = url.scheme, ["http", "https"].contains(endpointScheme),
                      url.host != nil else {
                    throw PipelineError(.configuration, "storage endpoint \(quotedForMessage(given)) must be an http or https URL")
                }
                endpoint = url
            } else {
                guard let aws = URL(string: "https://s3.\(region).amazonaws.com") else {
                    throw PipelineError(.configuration, "cannot form the S3 endpoint of region \(region)")
                }
                endpoint = aws
            }
            let pathStyle: Bool
            switch options["path_style"]?.lowercased() {
            case nil: pathStyle = options["endpoint"] != nil || bucket.contains(".")
            case "true", "1", "yes": pathStyle = true
            case "false", "0", "no": pathStyle = false
            case let other?: throw PipelineError(.configuration, "path_style must be true or false, not \(other)")
            }
            var prefix = components.path
            while prefix.hasPrefix("/") { prefix.removeFirst() }
            if !prefix.isEmpty, !prefix.hasSuffix("/") { prefix += "/" }
            guard !prefix.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) else {
                throw PipelineError(.configuration, "storage prefix \(quotedForMessage(prefix)) may not contain '.' or '..'")
            }
            return .s3(S3Location(endpoint: endpoint, bucket: bucket, region: region, pathStyle: pathStyle, prefix: prefix))
        default:
            throw PipelineError(.configuration, "storage URL scheme '\(scheme)' is not supported: use file:// or s3://")
        }
    }

    static func isValidRegion(_ name: String) -> Bool {
        (1...32).contains(name.count) && !name.hasPrefix("-") && !name.hasSuffix("-") && name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-"
        }
    }

    static func isValidBucket(_ name: String) -> Bool {
        (3...63).contains(name.count) && name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "." || $0 == "-"
        } && !name.hasPrefix("-") && !name.hasSuffix("-")
    }
}
