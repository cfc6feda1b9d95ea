import GRDB
import TokenctlModel
import TokenctlState

extension SQLiteStateStore {
    package func queueNotices(_ records: [NoticeRecord]) async throws(StateError) -> [NoticeRecord] {
        guard !records.isEmpty else { return [] }
        guard let writer else { throw StateError.writeFailed(path: path, detail: "the state was opened read-only") }
        do {
            return try await writer.write { db in
                var queued: [NoticeRecord] = []
                let insert = try db.makeStatement(sql: """
                    INSERT OR IGNORE INTO notice (notifier, key, body, queued_at, attempts, next_attempt_at) VALUES (?, ?, ?, ?, 0, ?)
                    """)
                for record in records {
                    try insert.execute(arguments: [record.notifier, record.key, record.body, record.queuedAt.secondsSinceEpoch,
                                                   record.nextAttemptAt.secondsSinceEpoch])
                    if db.changesCount > 0 { queued.append(record) }
                }
                return queued
            }
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    package func pendingNotices(dueBy: Timestamp, limit: Int) async throws(StateError) -> [NoticeRecord] {
        guard let writer else { return [] }
        do {
            return try await writer.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT notifier, key, body, queued_at, attempts, next_attempt_at, last_error FROM notice
                    WHERE sent_at IS NULL AND next_attempt_at <= ? ORDER BY queued_at, notifier, key LIMIT ?
                    """, arguments: [dueBy.secondsSinceEpoch, limit]).map { row in
                    NoticeRecord(notifier: row[0], key: row[1], body: row[2], queuedAt: Timestamp(secondsSinceEpoch: row[3]),
                                 attempts: row[4], nextAttemptAt: Timestamp(secondsSinceEpoch: row[5]), lastError: row[6])
                }
            }
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    package func claimNotices(notifiers: [String], dueBy: Timestamp, limit: Int, claimUntil: Timestamp) async throws(StateError) -> [NoticeRecord] {
        guard !notifiers.isEmpty, limit > 0 else { return [] }
        guard let writer else { throw StateError.writeFailed(path: path, detail: "the state was opened read-only") }
        do {
            // One write transaction: SQLite lets one writer in at a time, so two claimers never get the same rows.
            return try await writer.write { db in
                let placeholders = Array(repeating: "?", count: notifiers.count).joined(separator: ", ")
                var arguments = StatementArguments(notifiers)
                arguments += [dueBy.secondsSinceEpoch, limit]
                let records = try Row.fetchAll(db, sql: """
                    SELECT notifier, key, body, queued_at, attempts, next_attempt_at, last_error FROM notice
                    WHERE sent_at IS NULL AND notifier IN (\(placeholders)) AND next_attempt_at <= ?
                    ORDER BY next_attempt_at, queued_at, notifier, key LIMIT ?
                    """, arguments: arguments).map { row in
                    NoticeRecord(notifier: row[0], key: row[1], body: row[2], queuedAt: Timestamp(secondsSinceEpoch: row[3]),
                                 attempts: row[4], nextAttemptAt: Timestamp(secondsSinceEpoch: row[5]), lastError: row[6])
                }
                let claim = try db.makeStatement(sql: "UPDATE notice SET next_attempt_at = ? WHERE notifier = ? AND key = ?")
                for record in records {
                    try claim.execute(arguments: [claimUntil.secondsSinceEpoch, record.notifier, record.key])
                }
                return records
            }
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    package func noticesDelivered(_ ids: [NoticeID], at: Timestamp) async throws(StateError) {
        try await updateNotices(ids, sql: "UPDATE notice SET sent_at = ?, last_error = NULL WHERE notifier = ? AND key = ?",
                                values: [at.secondsSinceEpoch.databaseValue])
    }

    package func noticesFailed(_ ids: [NoticeID], error: String, nextAttemptAt: Timestamp) async throws(StateError) {
        try await updateNotices(ids, sql: """
            UPDATE notice SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE notifier = ? AND key = ? AND sent_at IS NULL
            """, values: [error.databaseValue, nextAttemptAt.secondsSinceEpoch.databaseValue])
    }

    package func noticeSummary() async throws(StateError) -> NoticeOutboxSummary {
        guard let writer else { return NoticeOutboxSummary() }
        do {
            return try await writer.read { db in
                let row = try Row.fetchOne(db, sql: """
                    SELECT COUNT(*) FILTER (WHERE sent_at IS NULL), COUNT(*) FILTER (WHERE sent_at IS NULL AND attempts > 0),
                           MIN(queued_at) FILTER (WHERE sent_at IS NULL), COUNT(sent_at) FROM notice
                    """)
                guard let row else { return NoticeOutboxSummary() }
                let oldest: Int64? = row[2]
                return NoticeOutboxSummary(pending: row[0], failing: row[1], oldestPendingSince: oldest.map(Timestamp.init(secondsSinceEpoch:)),
                                           sent: row[3])
            }
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    private func updateNotices(_ ids: [NoticeID], sql: String, values: [DatabaseValue]) async throws(StateError) {
        guard !ids.isEmpty else { return }
        guard let writer else { throw StateError.writeFailed(path: path, detail: "the state was opened read-only") }
        do {
            try await writer.write { db in
                let statement = try db.makeStatement(sql: sql)
                for id in ids { try statement.execute(arguments: StatementArguments(values + [id.notifier.databaseValue, id.key.databaseValue])) }
            }
        } catch {
            throw Self.classify(error, path: path)
        }
    }
}
