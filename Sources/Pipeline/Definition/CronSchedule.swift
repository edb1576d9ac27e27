import Foundation

/// A five-field cron expression (minute hour day-of-month month day-of-week) in UTC, with
/// lists, ranges, steps, month and weekday names, and the @hourly/@daily/@weekly/@monthly/
/// @yearly macros. Day-of-month and day-of-week combine as in Vixie cron: when both are
/// restricted, a time matches if either does.
public struct CronSchedule: Sendable, Hashable, CustomStringConvertible {
    public let expression: String
    let minutes: Set<Int>
    let hours: Set<Int>
    let daysOfMonth: Set<Int>
    let months: Set<Int>
    let daysOfWeek: Set<Int>
    let domRestricted: Bool
    let dowRestricted: Bool

    public var description: String { expression }

    public struct ParseError: Error, Sendable, Equatable {
        public let message: String
        /// 0-based character offset of the offending field within the expression.
        public let offset: Int
    }

    static let macros = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]
    static let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

    public init(_ expression: String) throws(ParseError) {
        self.expression = expression
        let trimmed = expression.trimmingCharacters(in: .whitespaces)
        let text = Self.macros[trimmed.lowercased()] ?? trimmed
        if text.hasPrefix("@") {
            throw ParseError(message: "unknown cron macro '\(trimmed)' (use @hourly, @daily, @weekly, @monthly or @yearly)", offset: 0)
        }
        var fields: [(Substring, Int)] = []
        var index = text.startIndex
        while index < text.endIndex {
            while index < text.endIndex, text[index] == " " || text[index] == "\t" { index = text.index(after: index) }
            guard index < text.endIndex else { break }
            let start = index
            while index < text.endIndex, text[index] != " ", text[index] != "\t" { index = text.index(after: index) }
            fields.append((text[start..<index], text.distance(from: text.startIndex, to: start)))
        }
        guard fields.count == 5 else {
            throw ParseError(message: "a cron expression has 5 fields (minute hour day-of-month month day-of-week), found \(fields.count)", offset: 0)
        }
        let offsetBase = 0
        minutes = try Self.field(fields[0], "minute", 0...59, names: [], offsetBase)
        hours = try Self.field(fields[1], "hour", 0...23, names: [], offsetBase)
        daysOfMonth = try Self.field(fields[2], "day-of-month", 1...31, names: [], offsetBase)
        months = try Self.field(fields[3], "month", 1...12, names: Self.monthNames, offsetBase, nameBase: 1)
        var dow = try Self.field(fields[4], "day-of-week", 0...7, names: Self.dayNames, offsetBase)
        if dow.contains(7) { dow.remove(7); dow.insert(0) }
        daysOfWeek = dow
        domRestricted = fields[2].0 != "*" && fields[2].0 != "?"
        dowRestricted = fields[4].0 != "*" && fields[4].0 != "?"
    }

    private static func field(_ field: (Substring, Int), _ name: String, _ range: ClosedRange<Int>,
                              names: [String], _ base: Int, nameBase: Int = 0) throws(ParseError) -> Set<Int> {
        let (text, offset) = field
        var values = Set<Int>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2, !part.isEmpty else {
                throw ParseError(message: "\(name) field '\(text)' is not a list of values, ranges and steps", offset: base + offset)
            }
            var step = 1
            if pieces.count == 2 {
                guard let s = Int(pieces[1]), s > 0 else {
                    throw ParseError(message: "\(name) step '\(pieces[1])' must be a positive number", offset: base + offset)
                }
                step = s
            }
            let rangeText = pieces[0]
            var lower: Int
            var upper: Int
            if rangeText == "*" || rangeText == "?" {
                lower = range.lowerBound
                upper = range.upperBound
            } else {
                let bounds = rangeText.split(separator: "-", omittingEmptySubsequences: false)
                guard bounds.count <= 2 else {
                    throw ParseError(message: "\(name) range '\(rangeText)' is not valid", offset: base + offset)
                }
                func value(_ s: Substring) throws(ParseError) -> Int {
                    if let n = Int(s) { return n }
                    if let i = names.firstIndex(of: s.lowercased()) { return i + nameBase }
                    throw ParseError(message: "\(name) value '\(s)' is not a number", offset: base + offset)
                }
                lower = try value(bounds[0])
                upper = bounds.count == 2 ? try value(bounds[1]) : (pieces.count == 2 ? range.upperBound : lower)
            }
            guard range.contains(lower), range.contains(upper) else {
                throw ParseError(message: "\(name) value out of range \(range.lowerBound)-\(range.upperBound) in '\(text)'", offset: base + offset)
            }
            guard lower <= upper else {
                throw ParseError(message: "\(name) range '\(rangeText)' runs backwards", offset: base + offset)
            }
            values.formUnion(stride(from: lower, through: upper, by: step))
        }
        return values
    }

    public static let utc = TimeZone(identifier: "UTC")!

    /// Whether the schedule fires at this minute, read in `timeZone` (UTC unless given).
    public func matches(_ date: Date, in timeZone: TimeZone = CronSchedule.utc) -> Bool {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let c = calendar.dateComponents([.minute, .hour, .day, .month, .weekday], from: date)
        guard let minute = c.minute, let hour = c.hour, let day = c.day, let month = c.month, let weekday = c.weekday
        else { return false }
        guard minutes.contains(minute), hours.contains(hour) else { return false }
        return matchesDay(day: day, month: month, weekday: weekday)
    }

    func matchesDay(day: Int, month: Int, weekday: Int) -> Bool {
        guard months.contains(month) else { return false }
        let domMatch = daysOfMonth.contains(day)
        let dowMatch = daysOfWeek.contains(weekday - 1)
        if domRestricted && dowRestricted { return domMatch || dowMatch }
        return domMatch && dowMatch
    }

    /// The last time at or before `date` at which the schedule fired, searching back up to five
    /// years; hours and days that cannot match are skipped whole.
    public func previous(atOrBefore date: Date, in timeZone: TimeZone = CronSchedule.utc) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        var t = (date.timeIntervalSince1970 / 60).rounded(.down) * 60
        let limit = t - 5 * 366 * 86_400
        while t > limit {
            let candidate = Date(timeIntervalSince1970: t)
            let c = calendar.dateComponents([.minute, .hour, .day, .month, .weekday], from: candidate)
            let minute = c.minute ?? 0
            let hour = c.hour ?? 0
            if !matchesDay(day: c.day ?? 0, month: c.month ?? 0, weekday: c.weekday ?? 0) {
                // To the last minute of the day before, however long this day is (DST).
                t = calendar.startOfDay(for: candidate).timeIntervalSince1970 - 60
                continue
            }
            if !hours.contains(hour) {
                t -= Double(minute * 60 + 60)                   // to minute 59 of the hour before
                continue
            }
            if minutes.contains(minute) { return candidate }
            t -= 60
        }
        return nil
    }

    /// The first time strictly after `date` at which the schedule fires, searching up to five years.
    public func next(after date: Date, in timeZone: TimeZone = CronSchedule.utc) -> Date? {
        var t = (date.timeIntervalSince1970 / 60).rounded(.down) * 60 + 60
        let limit = t + 5 * 366 * 86_400
        while t < limit {
            let candidate = Date(timeIntervalSince1970: t)
            if matches(candidate, in: timeZone) { return candidate }
            t += 60
        }
        return nil
    }
}

/// When a scheduled pipeline is due for an organization: the latest slot at or before now, unless
/// a run since that slot succeeded. However many slots were missed (the machine was down), only
/// the latest is due: the pipeline runs once, not once per missed slot.
public enum ScheduleDecision {
    public struct Due: Sendable, Equatable {
        /// The latest slot at or before now.
        public let slot: Date
        /// Whether no successful run has come since it.
        public let due: Bool
        /// Slots missed before it since the last successful run (run once, not each).
        public let missed: Int

        public init(slot: Date, due: Bool, missed: Int) {
            self.slot = slot
            self.due = due
            self.missed = missed
        }
    }

    /// `lastSuccess` is the run clock of the organization's latest successful run of the pipeline.
    public static func decide(_ schedule: CronSchedule, now: Date, lastSuccess: Date?,
                              in timeZone: TimeZone = CronSchedule.utc) -> Due? {
        guard let slot = schedule.previous(atOrBefore: now, in: timeZone) else { return nil }
        guard let lastSuccess else { return Due(slot: slot, due: true, missed: 0) }
        guard lastSuccess < slot else { return Due(slot: slot, due: false, missed: 0) }
        var missed = 0
        var cursor = lastSuccess
        while missed < 1000, let next = schedule.next(after: cursor, in: timeZone), next < slot {
            missed += 1
            cursor = next
        }
        return Due(slot: slot, due: true, missed: missed)
    }
}
