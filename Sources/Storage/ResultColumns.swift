import Foundation
import Pipeline

/// The JSON columns both stores keep for a check result: findings, controls, evidence ids.
struct ResultColumns {
    let findings: String
    let controls: String
    let evidenceIDs: String

    init(_ result: CheckResult) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        findings = String(decoding: try encoder.encode(result.findings), as: UTF8.self)
        controls = String(decoding: try encoder.encode(result.controls), as: UTF8.self)
        evidenceIDs = String(decoding: try encoder.encode(result.evidenceIDs), as: UTF8.self)
    }

    static func artifacts(_ export: ExportRecord) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(export.artifacts), as: UTF8.self)
    }

    static func artifacts(_ text: String?, export: String) throws -> [Artifact] {
        do {
            return try JSONDecoder().decode([Artifact].self, from: Data((text ?? "").utf8))
        } catch {
            throw PipelineError(.database, "export \(export): its artifacts column is not readable: \(error)")
        }
    }
}
