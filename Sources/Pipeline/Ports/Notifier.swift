import Foundation

/// What a run tells the people who asked to hear: the events of one run of one organization.
public struct RunNotice: Sendable, Equatable, Codable {
    public struct Event: Sendable, Equatable, Codable {
        public var kind: NotifyOptions.Event
        /// One line a person reads.
        public var summary: String
        /// What it is about: failing checks, failed sources, items not collected (at most a few dozen).
        public var details: [String]

        public init(kind: NotifyOptions.Event, summary: String, details: [String] = []) {
            self.kind = kind
            self.summary = summary
            self.details = details
        }
    }

    public var organizationID: String
    public var organizationName: String
    public var pipeline: String
    public var runID: String
    public var asOf: Date
    public var events: [Event]

    enum CodingKeys: String, CodingKey {
        case organizationID = "organization_id", organizationName = "organization_name", pipeline, runID = "run_id",
             asOf = "as_of", events
    }

    public init(organizationID: String, organizationName: String, pipeline: String, runID: String, asOf: Date, events: [Event]) {
        self.organizationID = organizationID
        self.organizationName = organizationName
        self.pipeline = pipeline
        self.runID = runID
        self.asOf = asOf
        self.events = events
    }

    /// The events of a run that finished, of the kinds `wanted`: sources that failed as a whole
    /// (a failure), checks that passed last time and fail now, evidence not collected.
    public static func events(of outcome: RunOutcome, wanted: [NotifyOptions.Event]) -> [Event] {
        var events: [Event] = []
        if wanted.contains(.runFailed), !outcome.sourceErrors.isEmpty {
            let failed = outcome.sourceErrors.sorted { $0.key < $1.key }
            events.append(Event(kind: .runFailed, summary: "\(failed.count) source\(failed.count == 1 ? "" : "s") failed: "
                                    + failed.map(\.key).joined(separator: ", ") + "; their checks are not verified",
                                details: failed.map { "\($0.key): \($0.value)" }))
        }
        if wanted.contains(.regression), let failing = outcome.changes?.newlyFailing, !failing.isEmpty {
            events.append(Event(kind: .regression, summary: "\(failing.count) check\(failing.count == 1 ? "" : "s") newly failing",
                                details: Array(failing.prefix(50))))
        }
        // A source that failed or is not connected as a whole is said once, above (or not at all).
        let notCollected = outcome.failures.filter { $0.operation != "*" }
        if wanted.contains(.staleEvidence), !notCollected.isEmpty {
            events.append(Event(kind: .staleEvidence,
                                summary: "\(notCollected.count) evidence item\(notCollected.count == 1 ? "" : "s") not collected, with nothing fresh to stand in",
                                details: notCollected.prefix(50).map { "\($0.source) \($0.operation) \($0.resource): \($0.reason)" }))
        }
        return events
    }
}

/// Sends a run's notice where its definition's notify stage says (a webhook, email). The
/// pipeline logs a failure to notify; it never fails a run for it.
public protocol Notifier: Sendable {
    func send(_ notice: RunNotice, options: NotifyOptions) async throws
}
