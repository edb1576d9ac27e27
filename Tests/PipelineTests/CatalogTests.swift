import Foundation
import Pipeline
import PipelineTesting
import Testing

/// The catalog shipped in pipelines/: frameworks and checks as data.
@Suite struct CatalogTests {
    @Test func theShippedCatalogLoadsCleanWithFortyChecksOrMore() {
        #expect(RepositoryCatalog.diagnostics.isEmpty, "\(RepositoryCatalog.diagnostics)")
        let catalog = RepositoryCatalog.shared
        #expect(catalog.checks.count >= 40)
        #expect(catalog.frameworks["iso27001"]?.controls.count == 93)
        #expect(catalog.frameworks["soc2"]?.controls.contains { $0.id == "CC6.1" } == true)
        for check in catalog.checks {
            // Every check supports a SOC 2 criterion and an ISO 27001 control, and every one it names exists.
            #expect(check.controls.contains { $0.framework == "soc2" } && check.controls.contains { $0.framework == "iso27001" }, "\(check.id)")
            for control in check.controls {
                #expect(catalog.frameworks[control.framework]?.title(of: control.id) != nil, "\(check.id): \(control.id)")
            }
            #expect(!check.description.isEmpty && !check.remediation.isEmpty, "\(check.id)")
        }
    }

    func folder(_ files: [String: String]) throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("catalog-\(UUID().uuidString)")
        for (path, text) in files {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        return root.path
    }

    static let framework = """
    id: acme-baseline
    title: Acme security baseline
    version: "1"
    controls:
      - {id: AB-1, title: "Two factors for everyone"}
      - {id: AB-2, title: "Code is reviewed"}
    """

    /// A third framework is data alone: a file of controls and a check that maps to them.
    @Test func aThirdFrameworkIsAddedAsData() throws {
        let path = try folder([
            "frameworks/baseline.yml": Self.framework,
            "checks/mine.yml": """
            checks:
              - id: github.my-2fa
                title: 2FA is required
                severity: high
                controls: {acme-baseline: [AB-1]}
                source: github
                evidence: orgs/get
                resource: "{login}"
                pass: two_factor_requirement_enabled == true
            """,
        ])
        let result = CatalogLoader(sources: ["github"]).load(folder: path)
        #expect(result.diagnostics.isEmpty, "\(result.diagnostics)")
        #expect(result.catalog.frameworkTitle("acme-baseline") == "Acme security baseline")
        #expect(result.catalog.check("github.my-2fa")?.controls == [ControlRef(framework: "acme-baseline", id: "AB-1")])
        #expect(result.catalog.check("github.my-2fa")?.rule?.fields.map(\.description).sorted() == ["login", "two_factor_requirement_enabled"])
    }

    /// Mistakes are reported at their file, line and column, expressions included.
    @Test func mistakesAreReportedWhereTheyAre() throws {
        let path = try folder([
            "frameworks/baseline.yml": Self.framework,
            "checks/bad.yml": """
            checks:
              - id: github.bad
                title: Bad
                severity: severe
                controls: {acme-baseline: [AB-3], nist: [AC-2]}
                source: github
                evidence: orgs/get
                resource: "{login"
                pass: "two_factor == true and"
              - id: github.half
                title: Half declared
                controls: {acme-baseline: [AB-1]}
                source: github
                pass: a == 1
            """,
        ])
        let diagnostics = CatalogLoader(sources: ["github"]).load(folder: path).diagnostics.map { "\($0.line):\($0.column) \($0.code) \($0.message)" }
        for expected in [
            "4:15 unknown-severity unknown severity 'severe'",
            "5:32 unknown-control 'AB-3' is not a control of acme-baseline",
            "5:39 unknown-framework unknown framework 'nist'",
            "8:15 invalid-template resource '{login': a '{' without its '}'",
            "9:34 invalid-expression in 'pass': the expression ends where a value was expected",
            "10:5 missing-key a declarative check needs 'evidence'",
        ] {
            #expect(diagnostics.contains { $0.hasPrefix(expected) }, "missing \(expected) in \(diagnostics)")
        }
    }

    /// A check in a later file replaces the shipped one of the same id: a user overrides in YAML.
    @Test func aLaterFileOverridesACheck() throws {
        let check = """
        checks:
          - id: github.x
            title: %@
            controls: {acme-baseline: [AB-1]}
            source: github
            evidence: orgs/get
            resource: "{login}"
            pass: a == 1
        """
        let path = try folder([
            "frameworks/baseline.yml": Self.framework,
            "checks/a-shipped.yml": check.replacingOccurrences(of: "%@", with: "Shipped"),
            "checks/z-local.yml": check.replacingOccurrences(of: "%@", with: "Ours"),
        ])
        #expect(CatalogLoader(sources: ["github"]).load(folder: path).catalog.check("github.x")?.title == "Ours")
    }
}

/// The fixture organizations exercise the whole catalog: every check passes on one of them and
/// fails on another (a manual control's failing outcome is not verified: nothing can prove it
/// wrong, only missing or stale), as their committed expected results (pipeline verify) say.
@Suite struct FixtureCoverageTests {
    @Test func everyCheckPassesOnOneFixtureOrganizationAndFailsOnAnother() throws {
        let orgs = RepositoryCatalog.root.appendingPathComponent("fixtures/orgs")
        var statuses: [String: [String: String]] = [:]
        for org in try FileManager.default.contentsOfDirectory(atPath: orgs.path).sorted() {
            let file = orgs.appendingPathComponent("\(org)/expected/report.json")
            guard let data = FileManager.default.contents(atPath: file.path) else { continue }
            let checks = (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["checks"] as? [String: [String: Any]] ?? [:]
            for (check, result) in checks { statuses[check, default: [:]][org] = result["status"] as? String }
        }
        #expect(statuses.count == RepositoryCatalog.shared.checks.count)
        for check in RepositoryCatalog.shared.checks {
            let seen = Set((statuses[check.id] ?? [:]).values)
            let failing = check.source == "upload" ? "not_verified" : "fail"
            #expect(seen.contains("pass") && seen.contains(failing), "\(check.id): \(statuses[check.id] ?? [:])")
        }
    }
}
