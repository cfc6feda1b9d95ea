import Foundation
import Logging
import PostgresNIO
import TokenctlModel
import TokenctlPostgresSupport
import TokenctlState

/// The state on PostgreSQL, shared by several tokenctl processes (controller replicas, operators, CI).
///
/// ```swift
/// let store = try PostgresStateStore(url: "postgres://tokenctl:pw@db:5432/tokenctl?sslmode=require", logger: logger)
/// let lock = try await store.acquireLock(request, now: now)        // a lease: new holders get a new epoch
/// let serial = try await store.write([.upsert(token)], expectedSerial: state.serial)   // refused once the lease is lost
/// ```
///
/// The lock is a lease (holder, host, pid, expiry) with a fencing epoch that grows with every new holder. A store that
/// took the lease checks, in the same transaction as every state write, that the epoch is still its own: a
/// process that was paused or cut off past its lease, while another took over, cannot write any more.
/// Tables live in the URL's database: `tokenctl_meta`, `tokenctl_lock`, `tokenctl_token` (one JSON document per
/// token), `tokenctl_audit` and `tokenctl_migrations` (forward-only, named; a newer state is refused).
package actor PostgresStateStore: StateStore, AuditLogStore, NoticeOutbox {
    /// The server and database, without the password.
    package nonisolated let location: String
    private let endpoint: PostgresEndpoint
    let logger: Logger
    private var connection: PostgresConnection?
    private var migrated = false
    /// The lease this store took, checked by every write.
    private var lease: (holder: String, host: String, processID: Int32, epoch: Int64)?

    static let migrations = ["v1-initial", "v2-audit-anchor", "v3-settings", "v4-notice-outbox"]

    /// Opens (lazily: the first operation connects) the state at a `postgres://` URL.
    package init(url: String, logger: Logger = Logger(label: "tokenctl.state.postgres")) throws(StateError) {
        do {
            endpoint = try PostgresEndpoint(parsing: url)
        } catch {
            throw .unavailable(path: "the PostgreSQL state URL", detail: error.description)
        }
        location = endpoint.description
        self.logger = logger.cappedForDriver()
    }

    deinit {
        // The connection must outlive its closing (the driver asserts it was closed before it is freed).
        if let connection {
            let closing: EventLoopFuture<Void> = connection.close()
            closing.whenComplete { _ in withExtendedLifetime(connection) {} }
        }
    }

    /// Closes the connection.
    package func close() {
        if let connection { PostgresTransaction.abandon(connection) }
        connection = nil
    }

    // MARK: Connection and schema

    private func session() async throws(StateError) -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        connection = nil
        let opened: PostgresConnection
        do {
            opened = try await endpoint.connect(logger: logger)
        } catch {
            throw .unavailable(path: location, detail: error.description)
        }
        connection = opened
        if !migrated {
            try await migrate(opened)
            migrated = true
        }
        return opened
    }

    /// Whether an operation is using the connection, and who waits for it.
    private var connectionBusy = false
    private var connectionWaiters: [CheckedContinuation<Void, Never>] = []

    /// One operation at a time on the connection: the actor is re-entrant at every `await`, and two transactions
    /// interleaved on one connection would commit each other's statements (the lease renewal runs beside writes).
    private func takeConnection() async {
        if connectionBusy {
            await withCheckedContinuation { connectionWaiters.append($0) }
        } else {
            connectionBusy = true
        }
    }

    private func giveBackConnection() {
        if connectionWaiters.isEmpty {
            connectionBusy = false
        } else {
            connectionWaiters.removeFirst().resume()
        }
    }

    /// Runs `body` on the connection, mapping driver errors; a lost connection is reopened by the next call.
    func run<T>(_ doing: String, _ body: (PostgresConnection) async throws -> T) async throws(StateError) -> T {
        await takeConnection()
        defer { giveBackConnection() }
        let connection = try await session()
        do {
            return try await body(connection)
        } catch {
            // After any error the connection is replaced (a failed transaction already closed it; the server may be
            // ending it): the next call connects afresh. Closing is never awaited.
            self.connection = nil
            PostgresTransaction.abandon(connection)
            let cause = PostgresFailure.unwrapTransaction(error)
            if let stateError = cause as? StateError { throw stateError }
            let failure = PostgresFailure.describing(cause, doing: doing)
            if failure.sqlState == nil { throw .unavailable(path: location, detail: failure.description) }
            throw .writeFailed(path: location, detail: failure.description)
        }
    }

    private func migrate(_ connection: PostgresConnection) async throws(StateError) {
        do {
            try await PostgresTransaction.run(connection, logger: logger) { db in
                // Replicas starting together migrate one at a time.
                try await db.query("SELECT pg_advisory_xact_lock(7356212)", logger: logger)
                try await db.query("CREATE TABLE IF NOT EXISTS tokenctl_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                                   logger: logger)
                var applied: [String] = []
                for try await name in try await db.query("SELECT name FROM tokenctl_migrations", logger: logger).decode(String.self) {
                    applied.append(name)
                }
                let unknown = applied.filter { !Self.migrations.contains($0) }
                if !unknown.isEmpty { throw StateError.newerVersion(path: location, unknownMigrations: unknown.sorted()) }
                if !applied.contains("v1-initial") {
                    for statement in [
                        "CREATE TABLE tokenctl_meta (id int PRIMARY KEY CHECK (id = 1), serial bigint NOT NULL)",
                        "INSERT INTO tokenctl_meta (id, serial) VALUES (1, 0)",
                        """
                        CREATE TABLE tokenctl_lock (id int PRIMARY KEY CHECK (id = 1), holder text, host text, pid int,
                            acquired_at bigint, expires_at bigint, epoch bigint NOT NULL)
                        """,
                        "INSERT INTO tokenctl_lock (id, epoch) VALUES (1, 0)",
                        "CREATE TABLE tokenctl_token (namespace text NOT NULL, name text NOT NULL, data text NOT NULL, PRIMARY KEY (namespace, name))",
                        "CREATE TABLE tokenctl_audit (sequence bigint PRIMARY KEY, json text NOT NULL, previous_hash text NOT NULL, hash text NOT NULL)",
                        "INSERT INTO tokenctl_migrations (name) VALUES ('v1-initial')",
                    ] {
                        try await db.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                }
                if !applied.contains("v2-audit-anchor") {
                    for statement in [
                        "CREATE TABLE tokenctl_audit_anchor (id int PRIMARY KEY CHECK (id = 1), anchor text NOT NULL)",
                        "INSERT INTO tokenctl_migrations (name) VALUES ('v2-audit-anchor')",
                    ] {
                        try await db.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                }
                if !applied.contains("v3-settings") {
                    for statement in [
                        "CREATE TABLE tokenctl_setting (key text PRIMARY KEY, value text NOT NULL)",
                        "INSERT INTO tokenctl_migrations (name) VALUES ('v3-settings')",
                    ] {
                        try await db.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                }
                if !applied.contains("v4-notice-outbox") {
                    for statement in [
                        """
                        CREATE TABLE tokenctl_notice (notifier text NOT NULL, key text NOT NULL, body text NOT NULL, queued_at bigint NOT NULL,
                                                      attempts int NOT NULL DEFAULT 0, next_attempt_at bigint NOT NULL, last_error text,
                                                      sent_at bigint, PRIMARY KEY (notifier, key))
                        """,
                        "CREATE INDEX tokenctl_notice_pending ON tokenctl_notice (next_attempt_at) WHERE sent_at IS NULL",
                        "INSERT INTO tokenctl_migrations (name) VALUES ('v4-notice-outbox')",
                    ] {
                        try await db.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                }
            }
        } catch {
            let cause = PostgresFailure.unwrapTransaction(error)
            if let stateError = cause as? StateError { throw stateError }
            throw .unavailable(path: location, detail: PostgresFailure.describing(cause, doing: "prepare the state tables").description)
        }
    }

    private func readSerial(_ connection: PostgresConnection) async throws -> Int64 {
        var serial: Int64 = 0
        for try await value in try await connection.query("SELECT serial FROM tokenctl_meta WHERE id = 1", logger: logger).decode(Int64.self) {
            serial = value
        }
        return serial
    }

    // MARK: StateStore

    package func load() async throws(StateError) -> RecordedState {
        let location = location
        return try await run("read the state") { connection in
            try await PostgresTransaction.run(connection, logger: logger) { db in
                let serial = try await readSerial(db)
                var tokens: [TokenID: RecordedToken] = [:]
                let decoder = JSONDecoder()
                for try await data in try await db.query("SELECT data FROM tokenctl_token", logger: logger).decode(String.self) {
                    guard let token = try? decoder.decode(RecordedToken.self, from: Data(data.utf8)) else {
                        throw StateError.corrupt(path: location, detail: "a token record is not valid JSON of this version")
                    }
                    tokens[token.id] = token
                }
                return RecordedState(serial: serial, tokens: tokens)
            }
        }
    }

    package func serial() async throws(StateError) -> Int64 {
        try await run("read the state serial") { connection in
            try await readSerial(connection)
        }
    }

    package func write(_ writes: [StateWrite], expectedSerial: Int64?, audit: [AuditRecord], anchor: String?) async throws(StateError) -> Int64 {
        let lease = lease
        let location = location
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var upsertNamespaces: [String] = [], upsertNames: [String] = [], upsertData: [String] = []
        var deleteNamespaces: [String] = [], deleteNames: [String] = []
        for write in writes {
            switch write {
            case .upsert(let token):
                guard let data = try? encoder.encode(token) else {
                    throw .writeFailed(path: location, detail: "token \(token.id) cannot be encoded")
                }
                upsertNamespaces.append(token.id.namespace)
                upsertNames.append(token.id.name)
                upsertData.append(String(decoding: data, as: UTF8.self))
            case .delete(let id):
                deleteNamespaces.append(id.namespace)
                deleteNames.append(id.name)
            }
        }
        return try await run("write the state") { connection in
            try await PostgresTransaction.run(connection, logger: logger) { db in
                try await Self.checkFence(db, lease: lease, logger: logger)
                var newSerial: Int64?
                let updated = try await db.query("""
                    UPDATE tokenctl_meta SET serial = serial + 1 WHERE id = 1 AND (\(expectedSerial)::bigint IS NULL OR serial = \(expectedSerial))
                    RETURNING serial
                    """, logger: logger)
                for try await value in updated.decode(Int64.self) { newSerial = value }
                guard let newSerial else {
                    throw StateError.serialMismatch(expected: expectedSerial ?? -1, actual: try await readSerial(db))
                }
                if !upsertNames.isEmpty {
                    try await db.query("""
                        INSERT INTO tokenctl_token (namespace, name, data)
                        SELECT * FROM unnest(\(upsertNamespaces)::text[], \(upsertNames)::text[], \(upsertData)::text[])
                        ON CONFLICT (namespace, name) DO UPDATE SET data = EXCLUDED.data
                        """, logger: logger)
                }
                if !deleteNames.isEmpty {
                    try await db.query("""
                        DELETE FROM tokenctl_token t USING unnest(\(deleteNamespaces)::text[], \(deleteNames)::text[]) AS d(namespace, name)
                        WHERE t.namespace = d.namespace AND t.name = d.name
                        """, logger: logger)
                }
                try await Self.insertAudit(audit, anchor: anchor, db, location: location, logger: logger)
                return newSerial
            }
        }
    }

    package func acquireLock(_ request: LockRequest, now: Timestamp) async throws(StateError) -> StateLock {
        let held = lease
        let taken: (StateLock, Int64) = try await run("take the state lock") { connection in
            try await PostgresTransaction.run(connection, logger: logger) { db in
                let rows = try await db.query(
                    "SELECT holder, host, pid, acquired_at, expires_at, epoch FROM tokenctl_lock WHERE id = 1 FOR UPDATE", logger: logger)
                var epoch: Int64 = 0
                var renewal = false
                for try await (holder, host, pid, acquired, expires, current) in rows.decode((String?, String?, Int32?, Int64?, Int64?, Int64).self) {
                    epoch = current
                    if let holder, let host, let pid, let acquired, let expires, expires > now.secondsSinceEpoch {
                        let existing = StateLock(holder: holder, host: host, processID: pid, acquiredAt: Timestamp(secondsSinceEpoch: acquired),
                                                 expiresAt: Timestamp(secondsSinceEpoch: expires))
                        guard holder == request.holder, host == request.host, pid == request.processID else { throw StateError.locked(existing) }
                    }
                    // Renewing our own lease keeps its epoch; any other taking (fresh, lapsed, another holder) starts a new one.
                    renewal = holder == request.holder && host == request.host && pid == request.processID && held?.epoch == current
                }
                let newEpoch = renewal ? epoch : epoch + 1
                let lock = StateLock(holder: request.holder, host: request.host, processID: request.processID, acquiredAt: now,
                                     expiresAt: now + request.ttl)
                try await db.query("""
                    UPDATE tokenctl_lock SET holder = \(lock.holder), host = \(lock.host), pid = \(lock.processID),
                        acquired_at = \(lock.acquiredAt.secondsSinceEpoch), expires_at = \(lock.expiresAt.secondsSinceEpoch), epoch = \(newEpoch)
                    WHERE id = 1
                    """, logger: logger)
                return (lock, newEpoch)
            }
        }
        lease = (request.holder, request.host, request.processID, taken.1)
        return taken.0
    }

    package func releaseLock(holder: String, processID: Int32) async throws(StateError) {
        // Our own lease is released only at its epoch: a former holder that lost the lease (same holder name and pid,
        // as every replica in a container may have) must not free its successor's.
        let epoch: Int64? = lease.flatMap { $0.holder == holder && $0.processID == processID ? $0.epoch : nil }
        try await run("release the state lock") { connection in
            try await connection.query("""
                UPDATE tokenctl_lock SET holder = NULL, host = NULL, pid = NULL, acquired_at = NULL, expires_at = NULL
                WHERE id = 1 AND holder = \(holder) AND pid = \(processID) AND (\(epoch)::bigint IS NULL OR epoch = \(epoch))
                """, logger: logger)
        }
        if lease?.holder == holder && lease?.processID == processID { lease = nil }
    }

    package func currentLock(now: Timestamp) async throws(StateError) -> StateLock? {
        try await run("read the state lock") { connection in
            let rows = try await connection.query("SELECT holder, host, pid, acquired_at, expires_at FROM tokenctl_lock WHERE id = 1", logger: logger)
            var lock: StateLock?
            for try await (holder, host, pid, acquired, expires) in rows.decode((String?, String?, Int32?, Int64?, Int64?).self) {
                if let holder, let host, let pid, let acquired, let expires, expires > now.secondsSinceEpoch {
                    lock = StateLock(holder: holder, host: host, processID: pid, acquiredAt: Timestamp(secondsSinceEpoch: acquired),
                                     expiresAt: Timestamp(secondsSinceEpoch: expires))
                }
            }
            return lock
        }
    }

    /// The fencing epoch of the lease this store holds, if any (for tests and diagnostics).
    package var leaseEpoch: Int64? { lease?.epoch }

    // MARK: AuditLogStore

    package func appendAudit(_ records: [AuditRecord], anchor: String?) async throws(StateError) {
        guard !records.isEmpty else { return }
        let location = location
        try await run("append to the audit log") { connection in
            try await PostgresTransaction.run(connection, logger: logger) { db in
                try await Self.insertAudit(records, anchor: anchor, db, location: location, logger: logger)
            }
        }
    }

    package func resealAudit(_ records: [AuditRecord], anchor: String?) async throws(StateError) {
        let lease = lease
        let location = location
        try await run("re-seal the audit log") { connection in
            try await PostgresTransaction.run(connection, logger: logger) { db in
                try await Self.checkFence(db, lease: lease, logger: logger)
                try await db.query("LOCK TABLE tokenctl_audit IN SHARE ROW EXCLUSIVE MODE", logger: logger)
                var last: Int64 = 0
                for try await value in try await db.query("SELECT coalesce(max(sequence), 0) FROM tokenctl_audit", logger: logger)
                    .decode(Int64.self) { last = value }
                let existing = Array(records.prefix { $0.sequence <= last })
                guard existing.count == last, existing.enumerated().allSatisfy({ $0.element.sequence == Int64($0.offset) + 1 }) else {
                    throw StateError.writeFailed(path: location, detail: "a re-sealed audit log must hold all \(last) existing entries in sequence")
                }
                var updated: Int64 = 0
                if !existing.isEmpty {
                    let rows = try await db.query("""
                        UPDATE tokenctl_audit a SET previous_hash = r.previous_hash, hash = r.hash
                        FROM unnest(\(existing.map(\.sequence))::bigint[], \(existing.map(\.json))::text[],
                                    \(existing.map(\.previousHash))::text[], \(existing.map(\.hash))::text[]) AS r(sequence, json, previous_hash, hash)
                        WHERE a.sequence = r.sequence AND a.json = r.json
                        RETURNING a.sequence
                        """, logger: logger)
                    for try await _ in rows.decode(Int64.self) { updated += 1 }
                }
                guard updated == last else {
                    throw StateError.writeFailed(path: location, detail: "\(last - updated) audit entries differ from the ones recorded; "
                                                 + "re-sealing never changes an entry")
                }
                try await Self.insertAudit(Array(records.dropFirst(existing.count)), anchor: anchor, db, location: location, logger: logger)
            }
        }
    }

    /// Appends audit records after the last one, and moves the anchor, inside the caller's transaction.
    private static func insertAudit(_ records: [AuditRecord], anchor: String?, _ db: PostgresConnection, location: String,
                                    logger: Logger) async throws {
        guard !records.isEmpty || anchor != nil else { return }
        if !records.isEmpty {
            try await db.query("LOCK TABLE tokenctl_audit IN SHARE ROW EXCLUSIVE MODE", logger: logger)
            var last: Int64 = 0
            for try await value in try await db.query("SELECT coalesce(max(sequence), 0) FROM tokenctl_audit", logger: logger)
                .decode(Int64.self) { last = value }
            for (offset, record) in records.enumerated() where record.sequence != last + 1 + Int64(offset) {
                throw StateError.writeFailed(path: location, detail: "audit record \(record.sequence) does not follow \(last + Int64(offset))")
            }
            try await db.query("""
                INSERT INTO tokenctl_audit (sequence, json, previous_hash, hash)
                SELECT * FROM unnest(\(records.map(\.sequence))::bigint[], \(records.map(\.json))::text[],
                                     \(records.map(\.previousHash))::text[], \(records.map(\.hash))::text[])
                """, logger: logger)
        }
        if let anchor {
            try await db.query("""
                INSERT INTO tokenctl_audit_anchor (id, anchor) VALUES (1, \(anchor))
                ON CONFLICT (id) DO UPDATE SET anchor = excluded.anchor
                """, logger: logger)
        }
    }

    /// Fencing: the lease this store holds, if any, must still be ours, checked under the row lock in the writing transaction.
    private static func checkFence(_ db: PostgresConnection, lease: (holder: String, host: String, processID: Int32, epoch: Int64)?,
                                   logger: Logger) async throws {
        guard let lease else { return }
        let rows = try await db.query("SELECT holder, epoch FROM tokenctl_lock WHERE id = 1 FOR UPDATE", logger: logger)
        for try await (holder, epoch) in rows.decode((String?, Int64).self) where epoch != lease.epoch || holder != lease.holder {
            throw StateError.fenced(holder: holder ?? "nobody",
                                    detail: "this store held the lease at epoch \(lease.epoch); the lock is at epoch \(epoch)")
        }
    }

    package func setting(_ key: String) async throws(StateError) -> String? {
        try await run("read a setting") { connection in
            var value: String?
            for try await text in try await connection.query("SELECT value FROM tokenctl_setting WHERE key = \(key)", logger: logger)
                .decode(String.self) { value = text }
            return value
        }
    }

    package func setSetting(_ key: String, to value: String) async throws(StateError) {
        let lease = lease
        try await run("record a setting") { connection in
            try await PostgresTransaction.run(connection, logger: logger) { db in
                // Fenced like every state write: a holder that lost the lease must not change what its successor relies on.
                try await Self.checkFence(db, lease: lease, logger: logger)
                try await db.query("""
                    INSERT INTO tokenctl_setting (key, value) VALUES (\(key), \(value))
                    ON CONFLICT (key) DO UPDATE SET value = excluded.value
                    """, logger: logger)
            }
        }
    }

    package func auditAnchor() async throws(StateError) -> String? {
        try await run("read the audit anchor") { connection in
            var anchor: String?
            for try await value in try await connection.query("SELECT anchor FROM tokenctl_audit_anchor WHERE id = 1", logger: logger)
                .decode(String.self) { anchor = value }
            return anchor
        }
    }

    package func auditRecords() async throws(StateError) -> [AuditRecord] {
        try await run("read the audit log") { connection in
            var records: [AuditRecord] = []
            let rows = try await connection.query("SELECT sequence, json, previous_hash, hash FROM tokenctl_audit ORDER BY sequence", logger: logger)
            for try await (sequence, json, previous, hash) in rows.decode((Int64, String, String, String).self) {
                records.append(AuditRecord(sequence: sequence, json: json, previousHash: previous, hash: hash))
            }
            return records
        }
    }

    package func lastAuditRecord() async throws(StateError) -> AuditRecord? {
        try await run("read the audit log") { connection in
            var record: AuditRecord?
            let rows = try await connection.query(
                "SELECT sequence, json, previous_hash, hash FROM tokenctl_audit ORDER BY sequence DESC LIMIT 1", logger: logger)
            for try await (sequence, json, previous, hash) in rows.decode((Int64, String, String, String).self) {
                record = AuditRecord(sequence: sequence, json: json, previousHash: previous, hash: hash)
            }
            return record
        }
    }
}
