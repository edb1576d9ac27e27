import Foundation
import Pipeline

/// A check declared in the catalog: over every answer of one operation, each resource (the
/// answer, or each element of a list in it) that the `applies` expression selects must satisfy
/// `pass`. A failing result names every offending resource; a resource the expression cannot be
/// evaluated on (a timestamp that is not one, an order between a string and a number) is not
/// verified, never passed. Each body is read once, for the fields the expressions name, and the
/// work is one evaluation per resource.
enum DeclarativeCheck {
    static func make(_ spec: Catalog.CheckSpec, _ rule: Catalog.Rule) -> Check {
        let reading = Check.Reading(source: spec.source, operation: rule.operation, fields: rule.fields.isEmpty ? [FieldPath("")] : rule.fields)
        let check = Check(id: spec.id, reads: [reading]) { index, _ in
            evaluate(spec, rule, index)
        }
        return check.described(by: spec)
    }

    static func evaluate(_ spec: Catalog.CheckSpec, _ rule: Catalog.Rule, _ index: EvidenceIndex) -> Check.Verdict {
        let answers = index.evidence(source: spec.source, operation: rule.operation)
        if let failure = index.failures(source: spec.source, operation: rule.operation).first {
            return .init(.notVerified, "\(rule.operation) could not be collected: \(failure.reason)", evidence: answers)
        }
        if answers.isEmpty { return .init(.notVerified, "\(rule.operation) was not collected") }
        let now = answers.map(\.collectedAt).max() ?? Date()
        var evaluated = 0
        var offenders: [String] = []
        var unknown: [String] = []
        for answer in answers {
            guard case .value(let body) = EvidenceReader.value(answer, in: index) else {
                return .init(.notVerified, "evidence \(answer.id.prefix(12)) (\(answer.request)) is unreadable", evidence: answers)
            }
            let resources: [JSONValue]
            if let each = rule.each {
                var value = body
                for component in each { value = value[component] ?? .null }
                switch value {
                case .array(let list): resources = list
                case .null: resources = []
                default: resources = [value]  // XML answers read a one-element list as the element
                }
            } else {
                resources = [body]
            }
            for resource in resources {
                let name = HTTPSourceDefinition.expand(rule.resource) { path in
                    var value = resource
                    for component in path.split(separator: ".") { value = value[String(component)] ?? .null }
                    switch value {
                    case .string(let text): return text
                    case .number, .bool: return "\(CheckExpression.Value.json(value))"
                    default: return "?"
                    }
                } ?? answer.resource
                do {
                    if let applies = rule.applies, try !applies.holds(for: resource, now: now) { continue }
                    evaluated += 1
                    if try !rule.pass.holds(for: resource, now: now) {
                        offenders.append("\(name): does not satisfy \(rule.passText)")
                    }
                } catch {
                    evaluated += 1
                    unknown.append("\(name): cannot be evaluated: \(error.message)")
                }
            }
        }
        if !offenders.isEmpty {
            return .init(.fail, "\(offenders.count) of \(evaluated) resources fail: \(spec.title).",
                         findings: offenders.sorted() + unknown.sorted(), evidence: answers)
        }
        if !unknown.isEmpty {
            return .init(.notVerified, "\(unknown.count) of \(evaluated) resources could not be evaluated.", findings: unknown.sorted(), evidence: answers)
        }
        if evaluated == 0 {
            return .init(.notApplicable, "No resource this check is about" + (rule.appliesText.map { " (\($0))" } ?? "") + ".", evidence: answers)
        }
        return .init(.pass, "All \(evaluated) resource\(evaluated == 1 ? "" : "s") satisfy \(rule.passText).", evidence: answers)
    }
}
