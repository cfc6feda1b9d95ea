import Foundation
import GRDB
import GRDBSQLite
import TokenctlModel
import TokenctlState

/// The embedded state backend: one SQLite database (WAL) under `.tokenctl/state.db`.
///
/// ```swift
/// let store = try SQLiteStateStore(directory: ".tokenctl", mode: .readWrite)
/// let state = try await store.load()
/// ```
package final class SQLiteStateStore: StateStore, AuditLogStore, NoticeOutbox {
    /// How the database is opened.
    package enum Mode: Sendable {
        /// Read only; a missing database reads as empty state and nothing is created (for plan and status).
        case readOnly
        /// Read and write; the directory, its `.gitignore` and the database are created when missing.
        case readWrite
    }

    /// The database file.
    package let path: String
    let writer: (any DatabaseWriter)?

    /// The file name inside the state directory.
    package static let fileName = "state.db"

    /// Opens (or, read-write, creates) the state in `directory`.
    package init(directory: String, mode: Mode) throws(StateError) {
        path = (directory as NSString).appendingPathComponent(Self.fileName)
        if mode == .readOnly && !FileManager.default.fileExists(atPath: path) {
            writer = nil
            return
        }
        if mode == .readWrite { try StateLocation.prepare(directory) }
        var configuration = Configuration()
        configuration.readonly = mode == .readOnly
        configuration.busyMode = .timeout(10)
        configuration.label = "tokenctl-state"
        do {
            let opened: any DatabaseWriter = mode == .readOnly
                ? try DatabaseQueue(path: path, configuration: configuration)
                : try DatabasePool(path: path, configuration: configuration)
            try Self.checkAndMigrate(opened, path: path, readOnly: mode == .readOnly)
            writer = opened
        } catch let error as StateError {
            throw error
        } catch {
            throw Self.classify(error, path: path)
        }
        if mode == .readWrite { chmod(path, 0o600) }
    }

    /// A value in the state that this version cannot read (an unknown status, say): the state is refused, never guessed at.
    struct UnreadableValue: Error {
        var detail: String
    }

    static func classify(_ error: any Error, path: String) -> StateError {
        if let error = error as? StateError { return error }
        if let value = error as? UnreadableValue { return .corrupt(path: path, detail: value.detail) }
        if let error = error as? DatabaseError {
            switch error.resultCode {
            case .SQLITE_NOTADB, .SQLITE_CORRUPT: return .corrupt(path: path, detail: error.message ?? "not a database")
            case .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_READONLY, .SQLITE_AUTH: return .unavailable(path: path, detail: error.message ?? "\(error.resultCode)")
            case .SQLITE_FULL, .SQLITE_IOERR: return .writeFailed(path: path, detail: error.message ?? "\(error.resultCode)")
            default: return .corrupt(path: path, detail: error.message ?? "\(error.resultCode)")
            }
        }
        return .unavailable(path: path, detail: "\(error)")
    }

    // MARK: Schema

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        // Forward-only, named migrations: never edit one that has shipped; add the next.
        migrator.registerMigration("v1-initial") { db in
            try db.execute(sql: """
                CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
                INSERT INTO meta (key, value) VALUES ('serial', '0');
                CREATE TABLE token (
                    namespace TEXT NOT NULL, name TEXT NOT NULL, issuer TEXT NOT NULL, owner TEXT NOT NULL,
                    lifespan TEXT NOT NULL, rotation_every TEXT, overlap TEXT NOT NULL, window TEXT,
                    PRIMARY KEY (namespace, name)) WITHOUT ROWID;
                CREATE TABLE credential (
                    namespace TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
                    credential_id TEXT NOT NULL, fingerprint TEXT NOT NULL, scopes TEXT NOT NULL,
                    issued_at INTEGER NOT NULL, expires_at INTEGER, status TEXT NOT NULL,
                    retire_after INTEGER, last_used_at INTEGER,
                    PRIMARY KEY (namespace, name, version),
                    FOREIGN KEY (namespace, name) REFERENCES token (namespace, name) ON DELETE CASCADE) WITHOUT ROWID;
                CREATE TABLE delivery (
                    namespace TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
                    store TEXT NOT NULL, key TEXT NOT NULL, content_fingerprint TEXT NOT NULL, delivered_at INTEGER NOT NULL,
                    PRIMARY KEY (namespace, name, version, store, key),
                    FOREIGN KEY (namespace, name, version) REFERENCES credential (namespace, name, version) ON DELETE CASCADE) WITHOUT ROWID;
                CREATE TABLE state_lock (
                    id INTEGER PRIMARY KEY CHECK (id = 1), holder TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
                    acquired_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
                """)
        }
        migrator.registerMigration("v2-intent-key") { db in
            try db.execute(sql: "ALTER TABLE credential ADD COLUMN intent_key TEXT")
        }
        migrator.registerMigration("v3-audit") { db in
            try db.execute(sql: """
                CREATE TABLE audit (sequence INTEGER PRIMARY KEY NOT NULL, entry TEXT NOT NULL, previous_hash TEXT NOT NULL, hash TEXT NOT NULL);
                """)
        }
        migrator.registerMigration("v4-notice-outbox") { db in
            try db.execute(sql: """
                CREATE TABLE notice (notifier TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, queued_at INTEGER NOT NULL,
                                     attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL, last_error TEXT,
                                     sent_at INTEGER, PRIMARY KEY (notifier, key)) WITHOUT ROWID;
                CREATE INDEX notice_pending ON notice (next_attempt_at) WHERE sent_at IS NULL;
                """)
        }
        return migrator
    }

    static func checkAndMigrate(_ writer: any DatabaseWriter, path: String, readOnly: Bool) throws {
        let migrator = Self.migrator
        let (superseded, unknown): (Bool, [String]) = try writer.read { db in
            // Reading the schema is what reveals a file that is not a database.
            _ = try db.tableExists("meta")
            let applied = try migrator.appliedIdentifiers(db)
            let known = Set(migrator.migrations)
            return (try migrator.hasBeenSuperseded(db), applied.filter { !known.contains($0) }.sorted())
        }
        if superseded { throw StateError.newerVersion(path: path, unknownMigrations: unknown) }
        if readOnly {
            let complete = try writer.read { db in try migrator.hasCompletedMigrations(db) }
            if !complete {
                throw StateError.unavailable(path: path, detail: "its schema needs an upgrade that a read-only command cannot make; run tokenctl apply once")
            }
        } else {
            try migrator.migrate(writer)
        }
    }

    // MARK: StateStore

    package func load() async throws(StateError) -> RecordedState {
        guard let writer else { return RecordedState() }
        do {
            return try await writer.read { db in try Self.read(db) }
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    package func serial() async throws(StateError) -> Int64 {
        guard let writer else { return 0 }
        do {
            return try await writer.read { db in try Self.serial(db) }
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    package func write(_ writes: [StateWrite], expectedSerial: Int64?, audit: [AuditRecord], anchor: String?) async throws(StateError) -> Int64 {
        guard let writer else { throw .unavailable(path: path, detail: "it was opened read-only") }
        do {
            return try await writer.write { db in
                let current = try Self.serial(db)
                if let expectedSerial, expectedSerial != current {
                    throw StateError.serialMismatch(expected: expectedSerial, actual: current)
                }
                let tokens = try TokenRowWriter(db)
                for write in writes {
                    switch write {
                    case .upsert(let token): try tokens.upsert(token)
                    case .delete(let id): try tokens.delete(id)
                    }
                }
                try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'serial'", arguments: [String(current + 1)])
                try self.insertAudit(audit, anchor: anchor, db)
                return current + 1
            }
        } catch let error as StateError {
            throw error
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    package func acquireLock(_ request: LockRequest, now: Timestamp) async throws(StateError) -> StateLock {
        guard let writer else { throw .unavailable(path: path, detail: "it was opened read-only") }
        let lock = StateLock(holder: request.holder, host: request.host, processID: request.processID, acquiredAt: now,
                             expiresAt: now + request.ttl)
        do {
            return try await writer.write { db in
                if let existing = try Self.lock(db), existing.expiresAt > now,
                   existing.holder != request.holder || existing.processID != request.processID || existing.host != request.host {
                    throw StateError.locked(existing)
                }
                try db.execute(sql: """
                    INSERT OR REPLACE INTO state_lock (id, holder, host, pid, acquired_at, expires_at) VALUES (1, ?, ?, ?, ?, ?)
                    """, arguments: [lock.holder, lock.host, Int64(lock.processID), lock.acquiredAt.secondsSinceEpoch, lock.expiresAt.secondsSinceEpoch])
                return lock
            }
        } catch let error as StateError {
            throw error
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    package func releaseLock(holder: String, processID: Int32) async throws(StateError) {
        guard let writer else { return }
        do {
            try await writer.write { db in
                try db.execute(sql: "DELETE FROM state_lock WHERE holder = ? AND pid = ?", arguments: [holder, Int64(processID)])
            }
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    package func setting(_ key: String) async throws(StateError) -> String? {
        guard let writer else { return nil }
        do {
            return try await writer.read { db in
                try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: ["setting." + key])
            }
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    package func setSetting(_ key: String, to value: String) async throws(StateError) {
        guard let writer else { throw StateError.writeFailed(path: path, detail: "the state was opened read-only") }
        do {
            try await writer.write { db in
                try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", arguments: ["setting." + key, value])
            }
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    package func currentLock(now: Timestamp) async throws(StateError) -> StateLock? {
        guard let writer else { return nil }
        do {
            let lock = try await writer.read { db in try Self.lock(db) }
            return lock.flatMap { $0.expiresAt > now ? $0 : nil }
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    // MARK: Audit

    package func appendAudit(_ records: [AuditRecord], anchor: String?) async throws(StateError) {
        guard let writer else { throw .unavailable(path: path, detail: "it was opened read-only") }
        do {
            try await writer.write { db in try self.insertAudit(records, anchor: anchor, db) }
        } catch let error as StateError {
            throw error
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    package func resealAudit(_ records: [AuditRecord], anchor: String?) async throws(StateError) {
        guard let writer else { throw .unavailable(path: path, detail: "it was opened read-only") }
        let path = path
        do {
            try await writer.write { db in
                let last = try Int64.fetchOne(db, sql: "SELECT max(sequence) FROM audit") ?? 0
                let existing = records.prefix { $0.sequence <= last }
                guard existing.count == last, existing.enumerated().allSatisfy({ $0.element.sequence == Int64($0.offset) + 1 }) else {
                    throw StateError.writeFailed(path: path, detail: "a re-sealed audit log must hold all \(last) existing entries in sequence")
                }
                let update = try db.cachedStatement(sql: "UPDATE audit SET previous_hash = ?, hash = ? WHERE sequence = ? AND entry = ?")
                for record in existing {
                    try update.execute(arguments: [record.previousHash, record.hash, record.sequence, record.json])
                    guard db.changesCount == 1 else {
                        throw StateError.writeFailed(path: path, detail: "audit entry #\(record.sequence) differs from the one recorded; "
                                                     + "re-sealing never changes an entry")
                    }
                }
                try self.insertAudit(Array(records.dropFirst(existing.count)), anchor: anchor, db)
            }
        } catch let error as StateError {
            throw error
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    private func insertAudit(_ records: [AuditRecord], anchor: String?, _ db: Database) throws {
        guard !records.isEmpty || anchor != nil else { return }
        var expected = (try Int64.fetchOne(db, sql: "SELECT max(sequence) FROM audit") ?? 0) + 1
        let insert = try db.cachedStatement(sql: "INSERT INTO audit (sequence, entry, previous_hash, hash) VALUES (?, ?, ?, ?)")
        for record in records {
            guard record.sequence == expected else {
                throw StateError.writeFailed(path: path, detail: "audit sequence \(record.sequence) where \(expected) was next")
            }
            try insert.execute(arguments: [record.sequence, record.json, record.previousHash, record.hash])
            expected += 1
        }
        if let anchor {
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('audit_anchor', ?)", arguments: [anchor])
        }
    }

    package func auditAnchor() async throws(StateError) -> String? {
        guard let writer else { return nil }
        do {
            return try await writer.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'audit_anchor'") }
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    package func auditRecords() async throws(StateError) -> [AuditRecord] {
        guard let writer else { return [] }
        do {
            return try await writer.read { db in
                try Row.fetchAll(db, sql: "SELECT sequence, entry, previous_hash, hash FROM audit ORDER BY sequence").map {
                    AuditRecord(sequence: $0[0], json: $0[1], previousHash: $0[2], hash: $0[3])
                }
            }
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    package func lastAuditRecord() async throws(StateError) -> AuditRecord? {
        guard let writer else { return nil }
        do {
            return try await writer.read { db in
                try Row.fetchOne(db, sql: "SELECT sequence, entry, previous_hash, hash FROM audit ORDER BY sequence DESC LIMIT 1").map {
                    AuditRecord(sequence: $0[0], json: $0[1], previousHash: $0[2], hash: $0[3])
                }
            }
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    // MARK: Rows

    static func serial(_ db: Database) throws -> Int64 {
        let text = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'serial'")
        return text.flatMap { Int64($0) } ?? 0
    }

    static func lock(_ db: Database) throws -> StateLock? {
        guard let row = try Row.fetchOne(db, sql: "SELECT holder, host, pid, acquired_at, expires_at FROM state_lock WHERE id = 1") else {
            return nil
        }
        return StateLock(holder: row[0], host: row[1], processID: Int32(truncatingIfNeeded: row[2] as Int64),
                         acquiredAt: Timestamp(secondsSinceEpoch: row[3]), expiresAt: Timestamp(secondsSinceEpoch: row[4]))
    }

    static func read(_ db: Database) throws -> RecordedState {
        let serial = try serial(db)
        // Three scans in primary-key order, merged like a sort-merge join, reading columns straight from
        // SQLite: loading 100k tokens is dominated by per-row overhead, so there is none to spare.
        var tokens: [RecordedToken] = []
        tokens.reserveCapacity(try Int.fetchOne(db, sql: "SELECT count(*) FROM token") ?? 0)
        try scan(db, "SELECT namespace, name, issuer, owner, lifespan, rotation_every, overlap, window FROM token ORDER BY namespace, name") { row in
            let id = TokenID(namespace: text(row, 0), name: text(row, 1))
            func duration(_ column: Int32, _ field: String) throws -> TokenDuration? {
                guard let value = optionalText(row, column) else { return nil }
                guard let duration = try? TokenDuration(parsing: value) else {
                    throw UnreadableValue(detail: "token \(id) has the unreadable \(field) '\(value)'")
                }
                return duration
            }
            guard let lifespan = try? Lifespan(parsing: text(row, 4)) else {
                throw UnreadableValue(detail: "token \(id) has the unreadable lifespan '\(text(row, 4))'")
            }
            tokens.append(RecordedToken(
                id: id, issuer: text(row, 2), owner: text(row, 3), lifespan: lifespan,
                rotationEvery: try duration(5, "rotation interval"),
                overlap: try duration(6, "overlap") ?? TokenDuration(seconds: 0),
                window: optionalText(row, 7), versions: []))
        }
        var tokenIndex = 0
        // A fleet repeats a few scope lists: versions share one array per list rather than each holding its own. Reused only
        // for the same bytes: `String` equality would also match a canonically equivalent spelling, which is not what was stored.
        var scopeLists: [String: (text: String, scopes: [String])] = [:]
        try scan(db, """
            SELECT namespace, name, version, credential_id, fingerprint, scopes, issued_at, expires_at, status, retire_after, last_used_at,
                   intent_key
            FROM credential ORDER BY namespace, name, version
            """) { row in
            tokenIndex = advance(tokens, from: tokenIndex, to: row)
            guard tokenIndex < tokens.count else { return }
            let scopeText = text(row, 5)
            let scopes: [String]
            if let known = scopeLists[scopeText], known.text.utf8.elementsEqual(scopeText.utf8) {
                scopes = known.scopes
            } else {
                scopes = scopeText.isEmpty ? [] : scopeText.split(separator: "\n").map(String.init)
                if scopeLists.count < 4_096, scopeLists[scopeText] == nil { scopeLists[scopeText] = (scopeText, scopes) }
            }
            guard let status = CredentialStatus(rawValue: text(row, 8)) else {
                throw UnreadableValue(detail: "version \(sqlite3_column_int64(row, 2)) of token \(tokens[tokenIndex].id) has the unknown status "
                                      + "'\(text(row, 8))' (known: \(CredentialStatus.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            tokens[tokenIndex].versions.append(CredentialVersion(
                version: Int(sqlite3_column_int64(row, 2)), credentialID: text(row, 3), fingerprint: text(row, 4),
                scopes: scopes,
                issuedAt: Timestamp(secondsSinceEpoch: sqlite3_column_int64(row, 6)),
                expiresAt: optionalInt(row, 7).map(Timestamp.init(secondsSinceEpoch:)),
                status: status,
                retireAfter: optionalInt(row, 9).map(Timestamp.init(secondsSinceEpoch:)),
                deliveries: [], lastUsedAt: optionalInt(row, 10).map(Timestamp.init(secondsSinceEpoch:)),
                intentKey: optionalText(row, 11)))
        }
        tokenIndex = 0
        try scan(db, """
            SELECT namespace, name, version, store, key, content_fingerprint, delivered_at FROM delivery ORDER BY namespace, name, version, store, key
            """) { row in
            tokenIndex = advance(tokens, from: tokenIndex, to: row)
            guard tokenIndex < tokens.count else { return }
            let version = Int(sqlite3_column_int64(row, 2))
            guard let versionIndex = tokens[tokenIndex].versions.firstIndex(where: { $0.version == version }) else { return }
            tokens[tokenIndex].versions[versionIndex].deliveries.append(DeliveryRecord(
                store: text(row, 3), key: text(row, 4), contentFingerprint: text(row, 5),
                deliveredAt: Timestamp(secondsSinceEpoch: sqlite3_column_int64(row, 6))))
        }
        var byID: [TokenID: RecordedToken] = [:]
        byID.reserveCapacity(tokens.count)
        for token in tokens { byID[token.id] = token }
        return RecordedState(serial: serial, tokens: byID)
    }

    /// Steps through a query's rows, calling `body` with the raw statement positioned on each.
    private static func scan(_ db: Database, _ sql: String, _ body: (OpaquePointer) throws -> Void) throws {
        let statement = try db.makeStatement(sql: sql)
        let raw = statement.sqliteStatement
        defer { sqlite3_reset(raw) }
        while true {
            let code = sqlite3_step(raw)
            if code == SQLITE_DONE { return }
            guard code == SQLITE_ROW else {
                throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
            }
            try body(raw)
        }
    }

    /// Moves `index` forward to the token the row (namespace, name in columns 0 and 1) belongs to.
    private static func advance(_ tokens: [RecordedToken], from index: Int, to row: OpaquePointer) -> Int {
        var index = index
        let namespace = text(row, 0), name = text(row, 1)
        while index < tokens.count, tokens[index].id.namespace != namespace || tokens[index].id.name != name { index += 1 }
        return index
    }

    private static func text(_ row: OpaquePointer, _ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(row, column) else { return "" }
        return String(cString: pointer)
    }

    private static func optionalText(_ row: OpaquePointer, _ column: Int32) -> String? {
        sqlite3_column_type(row, column) == SQLITE_NULL ? nil : text(row, column)
    }

    private static func optionalInt(_ row: OpaquePointer, _ column: Int32) -> Int64? {
        sqlite3_column_type(row, column) == SQLITE_NULL ? nil : sqlite3_column_int64(row, column)
    }
}
