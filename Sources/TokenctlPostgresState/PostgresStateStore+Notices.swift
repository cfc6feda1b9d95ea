import PostgresNIO
import TokenctlModel
import TokenctlState

extension PostgresStateStore {
    package func queueNotices(_ records: [NoticeRecord]) async throws(StateError) -> [NoticeRecord] {
        guard !records.isEmpty else { return [] }
        let logger = self.logger
        let queued = try await run("queue notices") { connection in
            var queued: [NoticeID] = []
            // One statement for the batch; RETURNING names the rows that were new.
            let rows = try await connection.query("""
                INSERT INTO tokenctl_notice (notifier, key, body, queued_at, next_attempt_at)
                SELECT * FROM unnest(\(records.map(\.notifier))::text[], \(records.map(\.key))::text[], \(records.map(\.body))::text[],
                                     \(records.map(\.queuedAt.secondsSinceEpoch))::bigint[], \(records.map(\.nextAttemptAt.secondsSinceEpoch))::bigint[])
                ON CONFLICT (notifier, key) DO NOTHING
                RETURNING notifier, key
                """, logger: logger)
            for try await (notifier, key) in rows.decode((String, String).self) { queued.append(NoticeID(notifier: notifier, key: key)) }
            return Set(queued)
        }
        return records.filter { queued.contains($0.id) }
    }

    package func pendingNotices(dueBy: Timestamp, limit: Int) async throws(StateError) -> [NoticeRecord] {
        let logger = self.logger
        return try await run("read pending notices") { connection in
            var records: [NoticeRecord] = []
            let rows = try await connection.query("""
                SELECT notifier, key, body, queued_at, attempts, next_attempt_at, last_error FROM tokenctl_notice
                WHERE sent_at IS NULL AND next_attempt_at <= \(dueBy.secondsSinceEpoch) ORDER BY queued_at, notifier, key LIMIT \(limit)
                """, logger: logger)
            for try await (notifier, key, body, queuedAt, attempts, next, lastError)
                in rows.decode((String, String, String, Int64, Int32, Int64, String?).self) {
                records.append(NoticeRecord(notifier: notifier, key: key, body: body, queuedAt: Timestamp(secondsSinceEpoch: queuedAt),
                                            attempts: Int(attempts), nextAttemptAt: Timestamp(secondsSinceEpoch: next), lastError: lastError))
            }
            return records
        }
    }

    package func claimNotices(notifiers: [String], dueBy: Timestamp, limit: Int, claimUntil: Timestamp) async throws(StateError) -> [NoticeRecord] {
        guard !notifiers.isEmpty, limit > 0 else { return [] }
        let logger = self.logger
        return try await run("claim notices") { connection in
            var records: [NoticeRecord] = []
            // SKIP LOCKED: replicas claiming at once take disjoint rows instead of waiting for each other.
            let rows = try await connection.query("""
                UPDATE tokenctl_notice SET next_attempt_at = \(claimUntil.secondsSinceEpoch)
                FROM (SELECT notifier, key, next_attempt_at AS due FROM tokenctl_notice
                      WHERE sent_at IS NULL AND notifier = ANY(\(notifiers)::text[]) AND next_attempt_at <= \(dueBy.secondsSinceEpoch)
                      ORDER BY next_attempt_at, queued_at, notifier, key LIMIT \(limit) FOR UPDATE SKIP LOCKED) AS claimed
                WHERE tokenctl_notice.notifier = claimed.notifier AND tokenctl_notice.key = claimed.key
                RETURNING tokenctl_notice.notifier, tokenctl_notice.key, tokenctl_notice.body, tokenctl_notice.queued_at,
                          tokenctl_notice.attempts, claimed.due, tokenctl_notice.last_error
                """, logger: logger)
            for try await (notifier, key, body, queuedAt, attempts, due, lastError)
                in rows.decode((String, String, String, Int64, Int32, Int64, String?).self) {
                records.append(NoticeRecord(notifier: notifier, key: key, body: body, queuedAt: Timestamp(secondsSinceEpoch: queuedAt),
                                            attempts: Int(attempts), nextAttemptAt: Timestamp(secondsSinceEpoch: due), lastError: lastError))
            }
            return records.sorted { ($0.nextAttemptAt, $0.queuedAt.secondsSinceEpoch, $0.notifier, $0.key)
                < ($1.nextAttemptAt, $1.queuedAt.secondsSinceEpoch, $1.notifier, $1.key) }
        }
    }

    package func noticesDelivered(_ ids: [NoticeID], at: Timestamp) async throws(StateError) {
        guard !ids.isEmpty else { return }
        let logger = self.logger
        _ = try await run("mark notices sent") { connection in
            try await connection.query("""
                UPDATE tokenctl_notice SET sent_at = \(at.secondsSinceEpoch), last_error = NULL
                FROM unnest(\(ids.map(\.notifier))::text[], \(ids.map(\.key))::text[]) AS sent(notifier, key)
                WHERE tokenctl_notice.notifier = sent.notifier AND tokenctl_notice.key = sent.key
                """, logger: logger)
        }
    }

    package func noticesFailed(_ ids: [NoticeID], error: String, nextAttemptAt: Timestamp) async throws(StateError) {
        guard !ids.isEmpty else { return }
        let logger = self.logger
        _ = try await run("record a failed notice delivery") { connection in
            try await connection.query("""
                UPDATE tokenctl_notice SET attempts = attempts + 1, last_error = \(error), next_attempt_at = \(nextAttemptAt.secondsSinceEpoch)
                FROM unnest(\(ids.map(\.notifier))::text[], \(ids.map(\.key))::text[]) AS failed(notifier, key)
                WHERE tokenctl_notice.notifier = failed.notifier AND tokenctl_notice.key = failed.key AND tokenctl_notice.sent_at IS NULL
                """, logger: logger)
        }
    }

    package func noticeSummary() async throws(StateError) -> NoticeOutboxSummary {
        let logger = self.logger
        return try await run("count notices") { connection in
            var summary = NoticeOutboxSummary()
            let rows = try await connection.query("""
                SELECT COUNT(*) FILTER (WHERE sent_at IS NULL), COUNT(*) FILTER (WHERE sent_at IS NULL AND attempts > 0),
                       MIN(queued_at) FILTER (WHERE sent_at IS NULL), COUNT(sent_at) FROM tokenctl_notice
                """, logger: logger)
            for try await (pending, failing, oldest, sent) in rows.decode((Int64, Int64, Int64?, Int64).self) {
                summary = NoticeOutboxSummary(pending: Int(pending), failing: Int(failing),
                                              oldestPendingSince: oldest.map(Timestamp.init(secondsSinceEpoch:)), sent: Int(sent))
            }
            return summary
        }
    }
}
