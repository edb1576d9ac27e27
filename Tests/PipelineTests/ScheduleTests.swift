import Foundation
import Pipeline
import Testing

@Suite struct ScheduleTests {
    func date(_ text: String) -> Date { Timestamp.parse(text)! }

    @Test func theLatestSlotIsFoundAtOrBeforeATime() throws {
        let nightly = try CronSchedule("0 2 * * *")
        #expect(nightly.previous(atOrBefore: date("2026-11-28T01:59:00Z")) == date("2026-11-27T02:00:00Z"))
        #expect(nightly.previous(atOrBefore: date("2026-11-28T02:00:00Z")) == date("2026-11-28T02:00:00Z"))
        #expect(nightly.previous(atOrBefore: date("2026-11-28T02:00:59Z")) == date("2026-11-28T02:00:00Z"))
        // Mondays at 06:30, and the first of each month at midnight (day of month or of week).
        let weekly = try CronSchedule("30 6 * * 1")
        #expect(weekly.previous(atOrBefore: date("2026-11-28T12:00:00Z")) == date("2026-11-23T06:30:00Z"))
        let either = try CronSchedule("0 0 1 * 1")
        #expect(either.previous(atOrBefore: date("2026-11-28T12:00:00Z")) == date("2026-11-23T00:00:00Z"))
        #expect(either.previous(atOrBefore: date("2026-12-01T00:10:00Z")) == date("2026-12-01T00:00:00Z"))
        // Once a year, found within the search without stepping through every minute of it.
        let yearly = try CronSchedule("15 4 29 2 *")
        #expect(yearly.previous(atOrBefore: date("2026-11-28T00:00:00Z")) == date("2024-02-29T04:15:00Z"))
        // Every slot `next` finds, `previous` finds back.
        var t = date("2026-11-28T00:00:00Z")
        for expression in ["*/7 * * * *", "0 */5 * * *", "10 3 * * 0,6"] {
            let schedule = try CronSchedule(expression)
            for _ in 0..<20 {
                let next = try #require(schedule.next(after: t))
                #expect(schedule.previous(atOrBefore: next) == next, "\(expression)")
                #expect(schedule.previous(atOrBefore: next.addingTimeInterval(-1)) ?? .distantPast < next, "\(expression)")
                t = next
            }
        }
    }

    @Test func theLatestSlotIsDueUntilARunSucceedsAfterItAndMissedSlotsRunOnce() throws {
        let nightly = try CronSchedule("0 2 * * *")
        let never = try #require(ScheduleDecision.decide(nightly, now: date("2026-11-28T03:00:00Z"), lastSuccess: nil))
        #expect(never == .init(slot: date("2026-11-28T02:00:00Z"), due: true, missed: 0))
        let ranAfter = ScheduleDecision.decide(nightly, now: date("2026-11-28T03:00:00Z"), lastSuccess: date("2026-11-28T02:00:05Z"))
        #expect(ranAfter?.due == false)
        let ranAtTheSlot = ScheduleDecision.decide(nightly, now: date("2026-11-28T03:00:00Z"), lastSuccess: date("2026-11-28T02:00:00Z"))
        #expect(ranAtTheSlot?.due == false)
        // Down from the 24th to the 28th: one run for the 28th's slot, three slots missed.
        let down = try #require(ScheduleDecision.decide(nightly, now: date("2026-11-28T09:00:00Z"), lastSuccess: date("2026-11-24T02:01:00Z")))
        #expect(down == .init(slot: date("2026-11-28T02:00:00Z"), due: true, missed: 3))
    }

    /// Read in an organization's zone: 02:00 in Berlin is 01:00 UTC in winter; a local time that
    /// does not exist on the day clocks go forward has no slot that day.
    @Test func slotsAreReadInTheOrganizationsTimeZone() throws {
        let berlin = try #require(TimeZone(identifier: "Europe/Berlin"))
        let nightly = try CronSchedule("0 2 * * *")
        #expect(nightly.previous(atOrBefore: date("2026-11-28T03:00:00Z"), in: berlin) == date("2026-11-28T01:00:00Z"))
        #expect(nightly.next(after: date("2026-11-28T03:00:00Z"), in: berlin) == date("2026-11-29T01:00:00Z"))
        #expect(nightly.previous(atOrBefore: date("2026-07-01T03:00:00Z"), in: berlin) == date("2026-07-01T00:00:00Z"))
        let newYork = try #require(TimeZone(identifier: "America/New_York"))
        let halfPastTwo = try CronSchedule("30 2 * * *")
        #expect(halfPastTwo.previous(atOrBefore: date("2026-03-08T12:00:00Z"), in: newYork) == date("2026-03-07T07:30:00Z"))
        #expect(halfPastTwo.previous(atOrBefore: date("2026-03-09T12:00:00Z"), in: newYork) == date("2026-03-09T06:30:00Z"))
        let due = ScheduleDecision.decide(nightly, now: date("2026-11-28T01:30:00Z"), lastSuccess: date("2026-11-27T01:05:00Z"), in: berlin)
        #expect(due == .init(slot: date("2026-11-28T01:00:00Z"), due: true, missed: 0))
        #expect(Organization.isValidTimeZone("Europe/Berlin") && !Organization.isValidTimeZone("Mars/Olympus")
                && !Organization.isValidTimeZone("../etc"))
    }
}
