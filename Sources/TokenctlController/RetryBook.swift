import TokenctlModel
import TokenctlPlanner

/// Which changes failed, how often, and when each may be tried again: capped exponential backoff per token.
///
/// ```swift
/// var book = RetryBook()
/// book.recordFailure(key: "default/api", action: .rotate, error: "store unwritable", now: now)
/// book.isWaiting("default/api", now: now)   // true for the next 2 seconds, then 4, 8… up to 5 minutes
/// ```
///
/// A failing token never blocks the others: the controller leaves its changes out of a pass while it waits,
/// and keeps it listed (needs attention) until a change for it succeeds. It is never given up.
package struct RetryBook: Sendable, Equatable {
    /// One failing token.
    package struct Entry: Sendable, Equatable, Codable {
        /// The token (or ghost credential) the change was for.
        package var key: String
        /// The action that failed last.
        package var action: String
        /// Failures in a row.
        package var failures: Int
        /// The last error, already free of secrets.
        package var lastError: String
        /// When it first failed in this run of failures.
        package var firstFailedAt: Timestamp
        /// When the next attempt may run.
        package var nextAttemptAt: Timestamp
    }

    /// The delay after the first failure.
    package var base: TokenDuration
    /// The longest delay.
    package var cap: TokenDuration
    /// The failing tokens by key.
    package private(set) var entries: [String: Entry] = [:]

    /// Creates a book, empty or holding `entries` a previous controller recorded (so that a restart keeps when each
    /// failure began: failure notices and the failure-age metric do not start over).
    package init(base: TokenDuration = TokenDuration(seconds: 2), cap: TokenDuration = TokenDuration(seconds: 300), restoring entries: [Entry] = []) {
        self.base = base
        self.cap = cap
        self.entries = Dictionary(entries.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The key a change is tracked under: its token, or the ghost credential it retires.
    package static func key(of change: PlannedChange) -> String {
        if let token = change.token { return token.description }
        return "ghost \(change.issuer)/\(change.ghost?.credentialID ?? "?")"
    }

    /// The delay before attempt number `failures + 1`.
    package func delay(afterFailures failures: Int) -> TokenDuration {
        let exponent = min(max(failures - 1, 0), 30)
        let seconds = base.seconds.multipliedReportingOverflow(by: Int64(1) << Int64(exponent))
        return TokenDuration(seconds: seconds.overflow ? cap.seconds : min(seconds.partialValue, cap.seconds))
    }

    /// Notes a failed change.
    package mutating func recordFailure(key: String, action: String, error: String, now: Timestamp) {
        var entry = entries[key] ?? Entry(key: key, action: action, failures: 0, lastError: "", firstFailedAt: now, nextAttemptAt: now)
        entry.failures += 1
        entry.action = action
        entry.lastError = error
        entry.nextAttemptAt = now + delay(afterFailures: entry.failures)
        entries[key] = entry
    }

    /// Notes a change that succeeded: the token is healthy again.
    package mutating func recordSuccess(key: String) {
        entries[key] = nil
    }

    /// Forgets tokens that no longer have anything planned (removed from the manifests, or fixed by someone else).
    package mutating func keepOnly(_ keys: Set<String>) {
        entries = entries.filter { keys.contains($0.key) }
    }

    /// Whether the token's changes must wait at `now`.
    package func isWaiting(_ key: String, now: Timestamp) -> Bool {
        entries[key].map { $0.nextAttemptAt > now } ?? false
    }

    /// The keys whose changes must wait at `now`.
    package func waitingKeys(now: Timestamp) -> Set<String> {
        Set(entries.values.filter { $0.nextAttemptAt > now }.map(\.key))
    }

    /// The earliest moment a waiting change may run again.
    package var earliestRetry: Timestamp? { entries.values.map(\.nextAttemptAt).min() }
}
