import TokenctlModel

/// When the controller wakes next: a pure function of the clock, the interval and what falls due.
///
/// ```swift
/// let schedule = WakeSchedule(interval: 300)
/// schedule.nextWake(after: now, nextDue: plan.nextDueAt, nextRetry: book.earliestRetry, jitter: 0.5)
/// ```
///
/// The interval is jittered (±10% by default) so that replicas and restarts do not fall into step;
/// a due moment or a retry wakes the controller exactly then, so a 10-second rotation is not left
/// waiting for the interval.
package struct WakeSchedule: Sendable, Equatable {
    /// Seconds between passes when nothing falls due sooner.
    package var interval: Double
    /// The share of the interval by which it may vary, up or down.
    package var jitterFraction: Double
    /// The shortest sleep, so that a due moment in the past never spins the loop.
    package var minimumSleep: Double

    /// Creates a schedule.
    package init(interval: Double, jitterFraction: Double = 0.1, minimumSleep: Double = 0.2) {
        self.interval = interval
        self.jitterFraction = jitterFraction
        self.minimumSleep = minimumSleep
    }

    /// The moment (seconds since the epoch) to wake after a pass that ended at `now`. `jitter` is a number
    /// in 0…1 (random in production, fixed in tests).
    package func nextWake(after now: Double, nextDue: Timestamp?, nextRetry: Timestamp?, jitter: Double) -> Double {
        let spread = interval * jitterFraction * (2 * min(max(jitter, 0), 1) - 1)
        var wake = now + max(minimumSleep, interval + spread)
        for moment in [nextDue, nextRetry].compactMap({ $0 }) {
            wake = min(wake, Double(moment.secondsSinceEpoch))
        }
        return max(wake, now + minimumSleep)
    }

    /// The moment after a pass that could not reach the state: backoff that doubles from 1 second up to the interval.
    package func retryAfterStateFailure(now: Double, consecutiveFailures: Int) -> Double {
        let exponent = Double(min(max(consecutiveFailures - 1, 0), 20))
        return now + min(max(minimumSleep, interval), pow2(exponent), 30)
    }

    private func pow2(_ exponent: Double) -> Double {
        var value = 1.0
        for _ in 0..<Int(exponent) { value *= 2 }
        return value
    }
}
