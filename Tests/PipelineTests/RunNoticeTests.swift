import Foundation
@testable import Pipeline
import Testing

@Suite struct RunNoticeTests {
    func outcome(sourceErrors: [String: String] = [:], newlyFailing: [String] = [], failures: [CollectionFailure] = [],
                 unconnected: [String] = []) throws -> RunOutcome {
        let run = RunRecord(id: "run-2", organizationID: try OrganizationID("acme"), pipeline: "nightly",
                            asOf: Date(timeIntervalSince1970: 1_795_824_000), actor: "system")
        let changes = RunChanges(previousRun: "run-1", newlyFailing: newlyFailing, newlyPassing: [], newFindings: [], resolvedFindings: [],
                                 newResources: [], vanishedResources: [], exceptionsExpired: [])
        return RunOutcome(run: run, evidenceCollected: 10, evidenceNew: 2, failures: failures, results: [], scores: nil, export: nil,
                          sourceErrors: sourceErrors, unconnected: unconnected, timings: [], changes: changes, reused: [])
    }

    @Test func aQuietRunHasNothingToSay() throws {
        #expect(RunNotice.events(of: try outcome(), wanted: NotifyOptions.Event.allCases).isEmpty)
    }

    @Test func eachKindOfEventIsSaidOnceAndOnlyWhenWanted() throws {
        let noisy = try outcome(sourceErrors: ["aws": "AWS refused the credentials"], newlyFailing: ["github.branch-protection"],
                                failures: [CollectionFailure(source: "aws", operation: "*", resource: "acme", reason: "refused"),
                                           CollectionFailure(source: "github", operation: "repos/get", resource: "acme/web", reason: "answered 500"),
                                           CollectionFailure(source: "google_workspace", operation: "*", resource: "acme", reason: "not connected")],
                                unconnected: ["google_workspace"])
        let all = RunNotice.events(of: noisy, wanted: NotifyOptions.Event.allCases)
        #expect(all.map(\.kind) == [.runFailed, .regression, .staleEvidence])
        #expect(all[0].details == ["aws: AWS refused the credentials"])
        #expect(all[1].summary == "1 check newly failing" && all[1].details == ["github.branch-protection"])
        // The whole-source failures are said once, as the failure; only the answer is stale.
        #expect(all[2].details == ["github repos/get acme/web: answered 500"])
        #expect(RunNotice.events(of: noisy, wanted: [.regression]).map(\.kind) == [.regression])
    }

    @Test func theNoticeIsSnakeCaseJSON() throws {
        let notice = RunNotice(organizationID: "acme", organizationName: "Acme", pipeline: "nightly", runID: "r",
                               asOf: Date(timeIntervalSince1970: 0), events: [.init(kind: .regression, summary: "s")])
        let object = try JSONSerialization.jsonObject(with: try JSONValueEncoder.canonicalData(notice)) as? [String: Any]
        #expect(object?["organization_id"] as? String == "acme" && object?["run_id"] as? String == "r"
                && object?["organization_name"] as? String == "Acme" && object?["as_of"] != nil, "\(String(describing: object))")
        #expect((object?["events"] as? [[String: Any]])?.first?["kind"] as? String == "regression")
    }
}
