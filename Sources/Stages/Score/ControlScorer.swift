import Pipeline

/// Rolls check results up to the controls they support: a control's status is the most severe
/// of its checks' (fail over not_verified over pass); its score, and its framework's, weigh each
/// check by its severity (low 1, medium 2, high 3, critical 4).
public struct ControlScorer: Scorer {
    /// Where the controls' and frameworks' titles come from.
    public let catalog: Catalog

    public init(catalog: Catalog) {
        self.catalog = catalog
    }

    public func score(_ results: [CheckResult], frameworks: [String]) -> ScoreSummary {
        var byControl: [ControlRef: [CheckResult]] = [:]
        for result in results {
            for control in result.controls where frameworks.contains(control.framework) {
                byControl[control, default: []].append(result)
            }
        }
        let scores = frameworks.map { framework in
            let controls = byControl
                .filter { $0.key.framework == framework }
                .map { control, results in
                    // Each check weighs its severity; pass, fail and not_verified are evaluated.
                    let evaluated = results.filter { [.pass, .fail, .notVerified].contains($0.status) }
                    let weight = { (result: CheckResult) in catalog.check(result.checkID)?.severity.weight ?? Catalog.Severity.medium.weight }
                    return ControlStatus(control: control, title: catalog.title(of: control),
                                         status: CheckStatus.combine(results.map(\.status)),
                                         checkIDs: results.map(\.checkID), evidenceIDs: results.flatMap(\.evidenceIDs),
                                         points: evaluated.filter { $0.status == .pass }.reduce(0) { $0 + weight($1) },
                                         possible: evaluated.reduce(0) { $0 + weight($1) })
                }
            return FrameworkScore(framework: framework, title: catalog.frameworkTitle(framework), controls: controls)
        }
        return ScoreSummary(frameworks: scores)
    }
}
