import Foundation
import Logging
import Metrics
import TokenctlModel
import TokenctlPlanner
import TokenctlState

/// One round of delivery: pending notices from the outbox, grouped by notifier into batches, posted in each notifier's
/// format (signed when it has a signing key), then marked sent or failed with backoff in the outbox.
///
/// ```swift
/// let delivery = NoticeDelivery(client: WebhookClient(), resolve: { try secrets.value(of: $0) }, logger: logger)
/// let round = await delivery.deliver(try await outbox.pendingNotices(dueBy: now, limit: 500), notifiers: byName, outbox: outbox, now: now)
/// ```
package struct NoticeDelivery: Sendable {
    /// Notices per request at most.
    package static let batchSize = 100
    /// The first retry's delay; each failure doubles it up to `maximumBackoff`.
    package static let firstBackoff: Int64 = 2
    /// The longest delay between attempts (a receiver's Retry-After may ask for more, up to an hour).
    package static let maximumBackoff: Int64 = 300

    /// What one round did.
    package struct Round: Sendable, Equatable {
        /// Notices a receiver accepted.
        package var sent = 0
        /// Notices whose attempt failed (they stay pending).
        package var failed = 0
        /// Notices left alone because their notifier is not in the manifests.
        package var skipped = 0

        /// Creates a round's counts.
        package init(sent: Int = 0, failed: Int = 0, skipped: Int = 0) {
            self.sent = sent
            self.failed = failed
            self.skipped = skipped
        }
    }

    private let client: WebhookClient
    private let resolve: @Sendable (SecretReference, String) throws -> String
    private let logger: Logger
    private let factory: MetricsFactory

    /// `resolve` reads a secret reference (the URL, the signing key); its second argument says which, for its error.
    package init(client: WebhookClient, resolve: @escaping @Sendable (SecretReference, String) throws -> String, logger: Logger,
                 factory: MetricsFactory = MetricsSystem.factory) {
        self.client = client
        self.resolve = resolve
        self.logger = logger
        self.factory = factory
    }

    /// The delay before the next attempt after `attempts` failures (counting the one just made).
    package static func backoff(afterAttempts attempts: Int, retryAfter: Int64?) -> Int64 {
        let doubled = firstBackoff << Int64(min(max(attempts - 1, 0), 20))
        return max(min(doubled, maximumBackoff), min(retryAfter ?? 0, 3_600))
    }

    /// Delivers `records` (claimed by the caller); records of notifiers missing from `notifiers` stay pending.
    package func deliver(_ records: [NoticeRecord], notifiers: [String: Notifier], outbox: any NoticeOutbox, now: Timestamp) async -> Round {
        var round = Round()
        let byNotifier = Dictionary(grouping: records, by: \.notifier)
        let decoder = JSONDecoder()
        for name in byNotifier.keys.sorted() {
            var group: [(record: NoticeRecord, notice: Notice)] = []
            for record in byNotifier[name] ?? [] {
                if let notice = try? decoder.decode(Notice.self, from: Data(record.body.utf8)) {
                    group.append((record, notice))
                } else {
                    // One unreadable record is parked on its own; it does not hold back the rest of its batch.
                    round.failed += 1
                    await recordFailure("a queued notice could not be read; it was written by another tokenctl version", retryAfter: nil,
                                        batch: [record], notifier: name, outbox: outbox, now: now)
                }
            }
            guard let notifier = notifiers[name] else {
                round.skipped += group.count
                continue
            }
            var start = 0
            while start < group.count && !Task.isCancelled {
                let batch = Array(group[start..<min(start + Self.batchSize, group.count)])
                start += Self.batchSize
                if let failure = await post(batch.map(\.notice), notifier: notifier, now: now) {
                    round.failed += batch.count
                    await recordFailure(failure.text, retryAfter: failure.retryAfter, batch: batch.map(\.record), notifier: name,
                                        outbox: outbox, now: now)
                } else {
                    round.sent += batch.count
                    await recordSent(batch, notifier: name, outbox: outbox, now: now)
                }
            }
        }
        return round
    }

    private func post(_ notices: [Notice], notifier: Notifier, now: Timestamp) async -> (text: String, retryAfter: Int64?)? {
        let url: String
        var headers = [("Content-Type", "application/json")]
        let body = NoticePayload.body(notices, notifier: notifier.metadata.name, format: notifier.format, at: now)
        do {
            url = try resolve(notifier.url, "the webhook URL of notifier '\(notifier.metadata.name)'")
            if let signingKey = notifier.signingKey {
                let key = try resolve(signingKey, "the signing key of notifier '\(notifier.metadata.name)'")
                headers.append((NoticeSignature.headerName, NoticeSignature.header(body: body, key: Array(key.utf8), at: now.secondsSinceEpoch)))
            }
        } catch {
            return ("\(error)", nil)
        }
        guard let failure = await client.post(body, to: url, headers: headers, timeout: notifier.timeout.seconds) else { return nil }
        if case .status(_, let retryAfter) = failure { return (failure.description, retryAfter) }
        return (failure.description, nil)
    }

    private func recordSent(_ batch: [(record: NoticeRecord, notice: Notice)], notifier: String, outbox: any NoticeOutbox, now: Timestamp) async {
        do {
            try await outbox.noticesDelivered(batch.map(\.record.id), at: now)
        } catch {
            // Sent but not recorded: once the claim lapses they are sent again (at least once, never lost).
            logger.error("notices were sent but could not be recorded as sent; they will be sent again",
                         metadata: ["notifier": "\(notifier)", "error": "\(error)"])
        }
        for (record, notice) in batch {
            Counter(label: "tokenctl_notices_sent_total", dimensions: [("notifier", notifier), ("event", notice.event.rawValue)],
                    factory: factory).increment()
            logger.info("notice sent", metadata: ["notifier": "\(notifier)", "notice": "\(record.key)"])
        }
    }

    private func recordFailure(_ failure: String, retryAfter: Int64?, batch: [NoticeRecord], notifier: String, outbox: any NoticeOutbox, now: Timestamp) async {
        let attempts = (batch.map(\.attempts).max() ?? 0) + 1
        let delay = Self.backoff(afterAttempts: attempts, retryAfter: retryAfter)
        Counter(label: "tokenctl_notice_delivery_failures_total", dimensions: [("notifier", notifier)], factory: factory).increment(by: batch.count)
        logger.warning("notice delivery failed; will retry", metadata: [
            "notifier": "\(notifier)", "notices": "\(batch.count)", "error": "\(failure)", "attempts": "\(attempts)", "retry_in": "\(delay)s",
        ])
        do {
            try await outbox.noticesFailed(batch.map(\.id), error: failure, nextAttemptAt: now + TokenDuration(seconds: delay))
        } catch {
            logger.error("a failed notice delivery could not be recorded", metadata: ["notifier": "\(notifier)", "error": "\(error)"])
        }
    }
}
