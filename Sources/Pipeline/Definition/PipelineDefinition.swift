import Foundation

/// A pipeline as its YAML file declares it: stages in order, each with its options.
/// The schema is documented in `pipelines/README.md`.
public struct PipelineDefinition: Sendable, Hashable {
    public let name: String
    public let description: String
    public let schedule: CronSchedule?
    public let stages: [Stage]
    /// Sources the definition declares itself (`sources:`), beside the built-in ones.
    public let httpSources: [HTTPSourceDefinition]
    /// The file it was loaded from.
    public let file: String

    public init(name: String, description: String, schedule: CronSchedule?, stages: [Stage],
                httpSources: [HTTPSourceDefinition] = [], file: String) {
        self.name = name
        self.description = description
        self.schedule = schedule
        self.stages = stages
        self.httpSources = httpSources
        self.file = file
    }

    public enum Stage: Sendable, Hashable {
        case collect(CollectOptions)
        case validate(ValidateOptions)
        case store(StoreOptions)
        case score(ScoreOptions)
        case render(RenderOptions)
        case notify(NotifyOptions)

        public var kind: StageKind {
            switch self {
            case .collect: return .collect
            case .validate: return .validate
            case .store: return .store
            case .score: return .score
            case .render: return .render
            case .notify: return .notify
            }
        }
    }

    public var collect: CollectOptions? {
        stages.lazy.compactMap { if case .collect(let o) = $0 { return o } else { return nil } }.first
    }
    public var validate: ValidateOptions? {
        stages.lazy.compactMap { if case .validate(let o) = $0 { return o } else { return nil } }.first
    }
    public var store: StoreOptions? {
        stages.lazy.compactMap { if case .store(let o) = $0 { return o } else { return nil } }.first
    }
    public var score: ScoreOptions? {
        stages.lazy.compactMap { if case .score(let o) = $0 { return o } else { return nil } }.first
    }
    public var render: RenderOptions? {
        stages.lazy.compactMap { if case .render(let o) = $0 { return o } else { return nil } }.first
    }
    public var notify: NotifyOptions? {
        stages.lazy.compactMap { if case .notify(let o) = $0 { return o } else { return nil } }.first
    }
}

public enum StageKind: String, Sendable, CaseIterable, Comparable {
    case collect, validate, store, score, render, notify

    /// Stages run in this order; a definition lists them in it.
    var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }
}

public struct CollectOptions: Sendable, Hashable {
    public var sources: [String]
    /// How many requests a source keeps in flight at once.
    public var concurrency: Int = 4
    /// How many sources run at once.
    public var sourceConcurrency: Int = 4
    /// Limit for one request, retries not included.
    public var timeout: Duration = .seconds(30)
    public var retry: RetryPolicy = RetryPolicy()
    /// How long collected evidence stays fresh.
    public var freshFor: Duration = .seconds(86_400)

    public init(sources: [String]) { self.sources = sources }
}

public struct ValidateOptions: Sendable, Hashable {
    public var frameworks: [String]
    /// Judge manual controls too (met by uploaded documents); off for a definition about one source.
    public var manualControls = false
    public init(frameworks: [String], manualControls: Bool = false) {
        self.frameworks = frameworks
        self.manualControls = manualControls
    }
}

public struct StoreOptions: Sendable, Hashable {
    /// Evidence rows written per transaction while collection streams in.
    public var batchSize: Int = 100
    public init() {}
}

public struct ScoreOptions: Sendable, Hashable {
    public var frameworks: [String]
    public init(frameworks: [String]) { self.frameworks = frameworks }
}

public struct RenderOptions: Sendable, Hashable {
    public enum Output: String, Sendable, Hashable, CaseIterable { case pdf, bundle }
    public var outputs: [Output]
    /// The report covers this many days up to the run's as-of time.
    public var periodDays: Int = 90
    public var title: String = "Compliance report"
    public init(outputs: [Output]) { self.outputs = outputs }
}

/// Who hears about a run, and when: a webhook (Slack-compatible JSON, signed with HMAC-SHA256)
/// and email over SMTP. The URLs and the signing secret are named by environment variables, never
/// written in the definition.
public struct NotifyOptions: Sendable, Hashable {
    public enum Event: String, Sendable, Hashable, CaseIterable, Codable {
        /// The run failed, or a source failed as a whole (revoked credentials, an API down).
        case runFailed = "run_failed"
        /// A check that passed in the previous run fails now.
        case regression
        /// Evidence could not be collected now and nothing fresh could stand in for it.
        case staleEvidence = "stale_evidence"
    }

    public struct Webhook: Sendable, Hashable {
        /// The variable holding the URL (a Slack incoming webhook, or any receiver).
        public var urlVariable: String
        /// The variable holding the HMAC key; unsigned when not named.
        public var secretVariable: String?
        public init(urlVariable: String, secretVariable: String?) {
            self.urlVariable = urlVariable
            self.secretVariable = secretVariable
        }
    }

    public struct Email: Sendable, Hashable {
        /// The variable holding the server's URL: `smtp://user:password@host:587` (STARTTLS when
        /// offered) or `smtps://…:465`.
        public var serverVariable: String
        public var from: String
        public var to: [String]
        public init(serverVariable: String, from: String, to: [String]) {
            self.serverVariable = serverVariable
            self.from = from
            self.to = to
        }
    }

    public var on: [Event] = Event.allCases
    public var webhook: Webhook?
    public var email: Email?
    public init(on: [Event] = Event.allCases, webhook: Webhook? = nil, email: Email? = nil) {
        self.on = on
        self.webhook = webhook
        self.email = email
    }
}

/// What a definition may name: filled in by the runner from what is actually built in, so lint
/// refuses a source that does not exist yet.
public struct Vocabulary: Sendable {
    public var sources: Set<String>
    public var frameworks: Set<String>

    public init(sources: Set<String>, frameworks: Set<String>) {
        self.sources = sources
        self.frameworks = frameworks
    }
}
