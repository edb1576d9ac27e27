import Foundation
import Pipeline

/// A manual control (a policy, an HR process, an access review): met by evidence a person
/// uploaded for one of its controls (`pipeline evidence upload --controls … --reviewer …`), as long
/// as the review is fresh at the run's clock. Stale evidence, or none, leaves it not verified,
/// saying when it was reviewed and when it expired.
enum ManualCheck {
    /// The source of manual checks in the catalog: what people upload.
    static let source = "upload"

    static func make(_ spec: Catalog.CheckSpec) -> Check {
        var check = Check(id: spec.id, reads: []) { index, _ in
            evaluate(spec, index)
        }.described(by: spec)
        check.manual = true
        return check
    }

    static func evaluate(_ spec: Catalog.CheckSpec, _ index: EvidenceIndex) -> Check.Verdict {
        let clock = index.clock ?? Date()
        var seen = Set<String>()
        let uploads = spec.controls.flatMap { index.uploads(supporting: $0.id) }.filter { seen.insert($0.id).inserted }
        let controls = Array(Set(spec.controls.map(\.id))).sorted().joined(separator: ",")
        guard !uploads.isEmpty else {
            return .init(.notVerified, "No evidence uploaded: attach it with `pipeline evidence upload --controls \(controls) --reviewer …`.")
        }
        let fresh = uploads.filter { $0.freshUntil > clock }
        let describe = { (e: Evidence) -> String in
            let reviewer = e.request.range(of: ", reviewed by ").map { " by " + e.request[$0.upperBound...] } ?? ""
            return "\(e.resource): reviewed \(Timestamp.day(e.collectedAt))\(reviewer), valid until \(Timestamp.day(e.freshUntil))"
        }
        if !fresh.isEmpty {
            return .init(.pass, "Met by \(fresh.count) uploaded document\(fresh.count == 1 ? "" : "s") reviewed within their validity.",
                         findings: fresh.map(describe).sorted(), evidence: fresh)
        }
        let latest = uploads.max { $0.freshUntil < $1.freshUntil }!
        return .init(.notVerified, "Stale: the latest evidence was reviewed on \(Timestamp.day(latest.collectedAt)) and expired on \(Timestamp.day(latest.freshUntil)).",
                     findings: uploads.map(describe).sorted(), evidence: uploads)
    }
}
