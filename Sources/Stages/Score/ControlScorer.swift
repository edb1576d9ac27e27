import Pipeline

/// Rolls check results up to the controls they support: a control's status is the most severe
/// of its checks' (fail over not_verified over pass), and a framework's score counts controls.
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
                    ControlStatus(control: control, title: catalog.title(of: control),
                                  status: CheckStatus.combine(results.map(\.status)),
                                  checkIDs: results.map(\.checkID), evidenceIDs: results.flatMap(\.evidenceIDs))
                }
            return FrameworkScore(framework: framework, title: catalog.frameworkTitle(framework), controls: controls)
        }
        return ScoreSummary(frameworks: scores)
    }
}
