import Foundation
import Pipeline
import Testing

/// Exceptions accept failures, for a whole check or some resources, until they expire.
@Suite struct RiskExceptionTests {
    let clock = Date(timeIntervalSince1970: 1_795_824_000)  // 2026-11-28T00:00:00Z
    func result(_ status: CheckStatus, _ findings: [String] = []) -> CheckResult {
        CheckResult(checkID: "github.c", title: "C", controls: [], status: status, reason: "2 repositories fail.", findings: findings,
                    evidenceIDs: ["e1"])
    }
    func exception(_ resource: String?, days: Double) -> RiskException {
        RiskException(id: "exc-1", checkID: "github.c", resource: resource, approver: "olive@acme.example",
                      justification: "Replaced next quarter", expires: clock.addingTimeInterval(days * 86_400),
                      createdBy: "olive@acme.example", createdAt: clock)
    }

    @Test func aWholeCheckExceptionExceptsAFailure() {
        let applied = RiskException.apply([exception(nil, days: 30)], to: [result(.fail, ["a/web: x", "a/api: y"])], at: clock)[0]
        #expect(applied.status == .excepted)
        #expect(applied.reason == "Accepted as a risk by olive@acme.example until 2026-12-28: Replaced next quarter (2 repositories fail.)")
        #expect(applied.findings == ["a/web: x", "a/api: y"])
    }

    @Test func aResourceExceptionCoversThatResourceOnly() {
        let partial = RiskException.apply([exception("a/web", days: 30)], to: [result(.fail, ["a/web: x", "a/api: y"])], at: clock)[0]
        #expect(partial.status == .fail)
        #expect(partial.findings == ["a/web: x (excepted until 2026-12-28 by olive@acme.example)", "a/api: y"])
        let whole = RiskException.apply([exception("a/web", days: 30)], to: [result(.fail, ["a/web: x"])], at: clock)[0]
        #expect(whole.status == .excepted)
    }

    @Test func anExpiredExceptionStopsApplyingAndSaysSo() {
        let applied = RiskException.apply([exception(nil, days: -1)], to: [result(.fail, ["a/web: x"])], at: clock)[0]
        #expect(applied.status == .fail)
        #expect(applied.reason == "2 repositories fail. An exception approved by olive@acme.example expired on 2026-11-27.")
    }

    @Test func passesAndMissingEvidenceAreNeverTouched() {
        for status in [CheckStatus.pass, .notVerified, .notApplicable] {
            #expect(RiskException.apply([exception(nil, days: 30)], to: [result(status)], at: clock)[0].status == status)
        }
    }
}

/// What changed since the previous run.
@Suite struct RunChangesTests {
    let clock = Date(timeIntervalSince1970: 1_795_824_000)

    func result(_ id: String, _ status: CheckStatus, _ findings: [String] = []) -> CheckResult {
        CheckResult(checkID: id, title: id, controls: [], status: status, reason: "", findings: findings, evidenceIDs: [])
    }

    @Test func newlyFailingPassingFindingsResourcesAndExpiredExceptions() {
        let previous = PreviousResults(runID: "r1", asOf: clock.addingTimeInterval(-86_400), results: [
            "a": (.pass, []), "b": (.fail, ["x/1: bad"]), "c": (.notVerified, []), "d": (.fail, ["x/2: bad", "x/3: bad"]),
        ], resources: ["github acme", "github acme/old"])
        let exception = RiskException(id: "exc-1", checkID: "d", resource: nil, approver: "olive", justification: "j",
                                      expires: clock.addingTimeInterval(-3600), createdBy: "olive", createdAt: clock)
        let changes = RunChanges.compute(previous: previous, results: [
            result("a", .fail, ["x/9: bad"]), result("b", .pass), result("c", .pass), result("d", .fail, ["x/2: bad"]), result("e", .fail),
        ], resources: ["github acme", "github acme/new"], exceptions: [exception], clock: clock)
        #expect(changes.previousRun == "r1")
        #expect(changes.newlyFailing == ["a", "e"])
        #expect(changes.newlyPassing == ["b", "c"])
        #expect(changes.newFindings == ["a: x/9: bad"])
        #expect(changes.resolvedFindings == ["b: x/1: bad", "d: x/3: bad"])
        #expect(changes.newResources == ["github acme/new"])
        #expect(changes.vanishedResources == ["github acme/old"])
        #expect(changes.exceptionsExpired == ["d: approved by olive, expired 2026-11-27T23:00:00Z"])
        #expect(changes.summary == "2 newly failing, 2 newly passing, 1 new findings, 2 resolved findings, 1 new resources, 1 vanished resources, 1 exceptions expired")
    }

    @Test func aFirstRunHasNothingToCompare() {
        let changes = RunChanges.compute(previous: nil, results: [result("a", .fail)], resources: [], exceptions: [], clock: clock)
        #expect(changes.previousRun == nil && changes.isEmpty && changes.summary == "first run")
    }
}
