import Testing
import TokenctlController
import TokenctlModel

@Suite struct WakeScheduleTests {
    let now = 1_000_000.0

    @Test func defaults() {
        let schedule = WakeSchedule(interval: 300)
        #expect(schedule.jitterFraction == 0.1)
        #expect(schedule.minimumSleep == 0.2)
    }

    @Test(arguments: [(0.0, 90.0), (0.5, 100.0), (1.0, 110.0)])
    func jitterSpreadsTheInterval(jitter: Double, expectedSleep: Double) {
        let schedule = WakeSchedule(interval: 100, jitterFraction: 0.1)
        let wake = schedule.nextWake(after: now, nextDue: nil, nextRetry: nil, jitter: jitter)
        #expect(abs(wake - (now + expectedSleep)) < 1e-6)
    }

    @Test func jitterOutsideZeroToOneIsClamped() {
        let schedule = WakeSchedule(interval: 100, jitterFraction: 0.2)
        #expect(abs(schedule.nextWake(after: now, nextDue: nil, nextRetry: nil, jitter: -3) - (now + 80)) < 1e-6)
        #expect(abs(schedule.nextWake(after: now, nextDue: nil, nextRetry: nil, jitter: 7) - (now + 120)) < 1e-6)
    }

    @Test func anEarlierDueMomentWins() {
        let schedule = WakeSchedule(interval: 300)
        let wake = schedule.nextWake(after: now, nextDue: ts(Int64(now) + 10), nextRetry: nil, jitter: 0.5)
        #expect(wake == now + 10)
    }

    @Test func anEarlierRetryWins() {
        let schedule = WakeSchedule(interval: 300)
        let wake = schedule.nextWake(after: now, nextDue: ts(Int64(now) + 50), nextRetry: ts(Int64(now) + 4), jitter: 0.5)
        #expect(wake == now + 4)
    }

    @Test func aLaterDueMomentDoesNotDelayTheInterval() {
        let schedule = WakeSchedule(interval: 300, jitterFraction: 0)
        let wake = schedule.nextWake(after: now, nextDue: ts(Int64(now) + 10_000), nextRetry: ts(Int64(now) + 9_000), jitter: 0.5)
        #expect(wake == now + 300)
    }

    @Test func aDueMomentInThePastStillSleepsTheMinimum() {
        let schedule = WakeSchedule(interval: 300, minimumSleep: 0.5)
        #expect(schedule.nextWake(after: now, nextDue: ts(Int64(now) - 3_600), nextRetry: nil, jitter: 0.5) == now + 0.5)
        #expect(schedule.nextWake(after: now, nextDue: nil, nextRetry: ts(Int64(now)), jitter: 0.5) == now + 0.5)
    }

    @Test func aTinyIntervalStillSleepsTheMinimum() {
        let schedule = WakeSchedule(interval: 0.01, jitterFraction: 0.5, minimumSleep: 0.2)
        #expect(schedule.nextWake(after: now, nextDue: nil, nextRetry: nil, jitter: 0) == now + 0.2)
    }

    @Test func stateFailureBackoffDoublesUpTo30Seconds() {
        let schedule = WakeSchedule(interval: 300)
        let sleeps = (1...9).map { schedule.retryAfterStateFailure(now: now, consecutiveFailures: $0) - now }
        #expect(sleeps == [1, 2, 4, 8, 16, 30, 30, 30, 30])
        #expect(schedule.retryAfterStateFailure(now: now, consecutiveFailures: 0) - now == 1)
        #expect(schedule.retryAfterStateFailure(now: now, consecutiveFailures: Int.max) - now == 30)
    }

    @Test func stateFailureBackoffIsCappedByTheInterval() {
        let schedule = WakeSchedule(interval: 5)
        let sleeps = (1...6).map { schedule.retryAfterStateFailure(now: now, consecutiveFailures: $0) - now }
        #expect(sleeps == [1, 2, 4, 5, 5, 5])
    }
}
