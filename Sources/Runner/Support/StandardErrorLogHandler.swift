import Foundation
import Logging
import Pipeline

/// swift-log handler writing one line per entry to standard error: `time level label: message
/// key=value` as text, or one JSON object per line with dot-separated metadata keys.
struct StandardErrorLogHandler: LogHandler {
    let label: String
    let json: Bool
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    init(label: String, json: Bool) {
        self.label = label
        self.json = json
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let time = Timestamp.iso8601(Date())
        if json {
            var object: [String: String] = ["time": time, "level": event.level.rawValue, "logger": label,
                                            "message": "\(event.message)"]
            for (key, value) in merged { object[key] = "\(value)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            StandardError.write(String(decoding: data, as: UTF8.self) + "\n")
        } else {
            let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            StandardError.write("\(time) \(event.level.rawValue) \(label): \(event.message)\(fields.isEmpty ? "" : " " + fields)\n")
        }
    }
}
