import TokenctlModel

/// One notice in the outbox: queued once per notifier and key, delivered with retries, remembered once sent.
package struct NoticeRecord: Hashable, Sendable {
    /// The Notifier it goes to.
    package var notifier: String
    /// The occurrence of the event it reports (see `NoticePlanner`); with `notifier`, its identity.
    package var key: String
    /// The notice itself as JSON (identity, owner, times, reason; never a secret).
    package var body: String
    /// When it was queued.
    package var queuedAt: Timestamp
    /// Delivery attempts that failed so far.
    package var attempts: Int
    /// When the next attempt may start.
    package var nextAttemptAt: Timestamp
    /// Why the last attempt failed.
    package var lastError: String?
    /// When a receiver accepted it; nil while pending.
    package var sentAt: Timestamp?

    /// Creates a pending record.
    package init(notifier: String, key: String, body: String, queuedAt: Timestamp, attempts: Int = 0, nextAttemptAt: Timestamp? = nil,
                 lastError: String? = nil, sentAt: Timestamp? = nil) {
        self.notifier = notifier
        self.key = key
        self.body = body
        self.queuedAt = queuedAt
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt ?? queuedAt
        self.lastError = lastError
        self.sentAt = sentAt
    }

    /// The record's identity: notifier and key.
    package var id: NoticeID { NoticeID(notifier: notifier, key: key) }
}

/// A notice's identity in the outbox.
package struct NoticeID: Hashable, Sendable {
    /// The Notifier.
    package var notifier: String
    /// The event occurrence.
    package var key: String

    /// Creates an identity.
    package init(notifier: String, key: String) {
        self.notifier = notifier
        self.key = key
    }
}

/// How the outbox stands, for metrics and `status`.
package struct NoticeOutboxSummary: Sendable, Equatable {
    /// Notices not delivered yet.
    package var pending = 0
    /// Of those, notices whose delivery has failed at least once.
    package var failing = 0
    /// When the oldest pending notice was queued.
    package var oldestPendingSince: Timestamp?
    /// Notices delivered, ever.
    package var sent = 0

    /// Creates a summary.
    package init(pending: Int = 0, failing: Int = 0, oldestPendingSince: Timestamp? = nil, sent: Int = 0) {
        self.pending = pending
        self.failing = failing
        self.oldestPendingSince = oldestPendingSince
        self.sent = sent
    }
}

/// The durable outbox of notices, kept with the state: a notice is queued once per notifier and key (so a restart or a
/// second replica never queues it twice), claimed by one sender at a time, delivered with retries that survive a
/// restart, and marked sent. Delivery is at least once: a sender that dies after the receiver accepted a notice but
/// before recording it sends it again once its claim lapses.
///
/// ```swift
/// let fresh = try await store.queueNotices(records)            // only those never queued before
/// for record in try await store.claimNotices(notifiers: ["security"], dueBy: now, limit: 100, claimUntil: now + 600) { … }
/// try await store.noticesDelivered([record.id], at: now)
/// ```
package protocol NoticeOutbox: Sendable {
    /// Queues the records whose identity was never queued before, and returns those (in the order given).
    func queueNotices(_ records: [NoticeRecord]) async throws(StateError) -> [NoticeRecord]
    /// Pending records whose next attempt is due by `dueBy`, oldest first, at most `limit` (read only).
    func pendingNotices(dueBy: Timestamp, limit: Int) async throws(StateError) -> [NoticeRecord]
    /// Claims for delivery, atomically, at most `limit` pending records of `notifiers` due by `dueBy`, oldest first: their
    /// next attempt moves to `claimUntil`, so that no other sender (a second replica, `tokenctl notices`) claims them
    /// meanwhile, and a sender that dies mid-delivery leaves them to be claimed again after `claimUntil`.
    func claimNotices(notifiers: [String], dueBy: Timestamp, limit: Int, claimUntil: Timestamp) async throws(StateError) -> [NoticeRecord]
    /// Marks records as sent.
    func noticesDelivered(_ ids: [NoticeID], at: Timestamp) async throws(StateError)
    /// Records a failed attempt: one more attempt, its error, and when to try again.
    func noticesFailed(_ ids: [NoticeID], error: String, nextAttemptAt: Timestamp) async throws(StateError)
    /// Counts for metrics and status.
    func noticeSummary() async throws(StateError) -> NoticeOutboxSummary
}
