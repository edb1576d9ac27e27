import Foundation
import Pipeline

/// The standard credential chain, as AWS SDKs read it: the environment
/// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), then the shared credentials
/// file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials) and the config file (AWS_CONFIG_FILE
/// or ~/.aws/config, `[profile NAME]`) for AWS_PROFILE or `default`.
public enum AWSCredentialChain {
    public static func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> AWSCredentials {
        if let key = environment["AWS_ACCESS_KEY_ID"], !key.isEmpty {
            guard let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty else {
                throw PipelineError(.configuration, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
            }
            let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: token)
        }
        let profile = environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        let home = environment["HOME"] ?? NSHomeDirectory()
        let credentialsFile = environment["AWS_SHARED_CREDENTIALS_FILE"] ?? "\(home)/.aws/credentials"
        let configFile = environment["AWS_CONFIG_FILE"] ?? "\(home)/.aws/config"
        // The credentials file first, then the config file's [profile NAME] (or [default]).
        var looked: [String] = []
        for file in [credentialsFile, configFile] {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { continue }
            looked.append(file)
            guard let section = parseINI(text)[profile] else { continue }
            guard let key = section["aws_access_key_id"], let secret = section["aws_secret_access_key"] else {
                throw PipelineError(.configuration, "profile [\(profile)] in \(file) lacks aws_access_key_id or aws_secret_access_key")
            }
            return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: section["aws_session_token"])
        }
        guard !looked.isEmpty else {
            throw PipelineError(.configuration, "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or add profile [\(profile)] to \(credentialsFile)")
        }
        throw PipelineError(.configuration, "no profile [\(profile)] in \(looked.joined(separator: " or "))")
    }

    static func parseINI(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                var name = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                if name.hasPrefix("profile ") { name = String(name.dropFirst("profile ".count)) }
                current = name
                sections[name, default: [:]] = sections[name] ?? [:]
                continue
            }
            guard let current, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            sections[current]?[key] = value
        }
        return sections
    }
}
