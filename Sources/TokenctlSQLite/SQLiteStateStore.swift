import Foundation
import GRDB
import TokenctlModel
import TokenctlState

/// The embedded state backend: one SQLite database (WAL) under `.tokenctl/state.db`.
///
/// ```swift
/// let store = try SQLiteStateStore(directory: ".tokenctl", mode: .readWrite)
/// let state = try await store.load()
/// ```
public final class SQLiteStateStore: StateStore {
    /// How the database is opened.
    public enum Mode: Sendable {
        /// Read only; a missing database reads as empty state and nothing is created (for plan and status).
        case readOnly
        /// Read and write; the directory, its `.gitignore` and the database are created when missing.
        case readWrite
    }

    /// The database file.
    public let path: String
    private let writer: (any DatabaseWriter)?

    /// The file name inside the state directory.
    public static let fileName = "state.db"

    /// Opens (or, read-write, creates) the state in `directory`.
    public init(directory: String, mode: Mode) throws(StateError) {
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

    static func classify(_ error: any Error, path: String) -> StateError {
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

    public func load() async throws(StateError) -> RecordedState {
        guard let writer else { return RecordedState() }
        do {
            return try await writer.read { db in try Self.read(db) }
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    public func serial() async throws(StateError) -> Int64 {
        guard let writer else { return 0 }
        do {
            return try await writer.read { db in try Self.serial(db) }
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    public func write(_ writes: [StateWrite], expectedSerial: Int64?) async throws(StateError) -> Int64 {
        guard let writer else { throw .unavailable(path: path, detail: "it was opened read-only") }
        do {
            return try await writer.write { db in
                let current = try Self.serial(db)
                if let expectedSerial, expectedSerial != current {
                    throw StateError.serialMismatch(expected: expectedSerial, actual: current)
                }
                for write in writes {
                    switch write {
                    case .upsert(let token): try Self.upsert(token, db)
                    case .delete(let id):
                        try db.execute(sql: "DELETE FROM token WHERE namespace = ? AND name = ?", arguments: [id.namespace, id.name])
                    }
                }
                try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'serial'", arguments: [String(current + 1)])
                return current + 1
            }
        } catch let error as StateError {
            throw error
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    public func acquireLock(_ request: LockRequest, now: Timestamp) async throws(StateError) -> StateLock {
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

    public func releaseLock(holder: String, processID: Int32) async throws(StateError) {
        guard let writer else { return }
        do {
            try await writer.write { db in
                try db.execute(sql: "DELETE FROM state_lock WHERE holder = ? AND pid = ?", arguments: [holder, Int64(processID)])
            }
        } catch {
            throw Self.classify(error, path: path)
        }
    }

    public func currentLock(now: Timestamp) async throws(StateError) -> StateLock? {
        guard let writer else { return nil }
        do {
            let lock = try await writer.read { db in try Self.lock(db) }
            return lock.flatMap { $0.expiresAt > now ? $0 : nil }
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

    static func upsert(_ token: RecordedToken, _ db: Database) throws {
        let key: StatementArguments = [token.id.namespace, token.id.name]
        try db.execute(sql: "DELETE FROM token WHERE namespace = ? AND name = ?", arguments: key)
        try db.cachedStatement(sql: """
            INSERT INTO token (namespace, name, issuer, owner, lifespan, rotation_every, overlap, window) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [token.id.namespace, token.id.name, token.issuer, token.owner, token.lifespan.description,
                                     token.rotationEvery?.description, token.overlap.description, token.window])
        let credentialInsert = try db.cachedStatement(sql: """
            INSERT INTO credential (namespace, name, version, credential_id, fingerprint, scopes, issued_at, expires_at, status, retire_after, last_used_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        let deliveryInsert = try db.cachedStatement(sql: """
            INSERT INTO delivery (namespace, name, version, store, key, content_fingerprint, delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?)
            """)
        for version in token.versions {
            try credentialInsert.execute(arguments: [
                token.id.namespace, token.id.name, version.version, version.credentialID, version.fingerprint,
                version.scopes.joined(separator: "\n"), version.issuedAt.secondsSinceEpoch, version.expiresAt?.secondsSinceEpoch,
                version.status.rawValue, version.retireAfter?.secondsSinceEpoch, version.lastUsedAt?.secondsSinceEpoch,
            ])
            for delivery in version.deliveries {
                try deliveryInsert.execute(arguments: [token.id.namespace, token.id.name, version.version, delivery.store, delivery.key,
                                                       delivery.contentFingerprint, delivery.deliveredAt.secondsSinceEpoch])
            }
        }
    }

    static func read(_ db: Database) throws -> RecordedState {
        let serial = try serial(db)
        var tokens: [TokenID: RecordedToken] = [:]
        let count = try Int.fetchOne(db, sql: "SELECT count(*) FROM token") ?? 0
        tokens.reserveCapacity(count)
        let tokenRows = try Row.fetchCursor(db, sql: "SELECT namespace, name, issuer, owner, lifespan, rotation_every, overlap, window FROM token")
        while let row = try tokenRows.next() {
            let id = TokenID(namespace: row[0], name: row[1])
            let lifespanText: String = row[4]
            let everyText: String? = row[5]
            let overlapText: String = row[6]
            tokens[id] = RecordedToken(
                id: id, issuer: row[2], owner: row[3],
                lifespan: (try? Lifespan(parsing: lifespanText)) ?? .never,
                rotationEvery: everyText.flatMap { try? TokenDuration(parsing: $0) },
                overlap: (try? TokenDuration(parsing: overlapText)) ?? TokenDuration(seconds: 0),
                window: row[7], versions: [])
        }
        var deliveries: [String: [DeliveryRecord]] = [:]
        let deliveryRows = try Row.fetchCursor(db, sql: "SELECT namespace, name, version, store, key, content_fingerprint, delivered_at FROM delivery")
        while let row = try deliveryRows.next() {
            let namespace: String = row[0], name: String = row[1], version: Int = row[2]
            deliveries["\(namespace)/\(name)/\(version)", default: []].append(
                DeliveryRecord(store: row[3], key: row[4], contentFingerprint: row[5], deliveredAt: Timestamp(secondsSinceEpoch: row[6])))
        }
        let credentialRows = try Row.fetchCursor(db, sql: """
            SELECT namespace, name, version, credential_id, fingerprint, scopes, issued_at, expires_at, status, retire_after, last_used_at
            FROM credential ORDER BY namespace, name, version
            """)
        while let row = try credentialRows.next() {
            let id = TokenID(namespace: row[0], name: row[1])
            let version: Int = row[2]
            let scopes: String = row[5]
            let statusText: String = row[8]
            let expires: Int64? = row[7], retireAfter: Int64? = row[9], lastUsed: Int64? = row[10]
            let credential = CredentialVersion(
                version: version, credentialID: row[3], fingerprint: row[4],
                scopes: scopes.isEmpty ? [] : scopes.split(separator: "\n").map(String.init),
                issuedAt: Timestamp(secondsSinceEpoch: row[6]), expiresAt: expires.map(Timestamp.init(secondsSinceEpoch:)),
                status: CredentialStatus(rawValue: statusText) ?? .pending, retireAfter: retireAfter.map(Timestamp.init(secondsSinceEpoch:)),
                deliveries: deliveries["\(id.namespace)/\(id.name)/\(version)"] ?? [],
                lastUsedAt: lastUsed.map(Timestamp.init(secondsSinceEpoch:)))
            tokens[id]?.versions.append(credential)
        }
        return RecordedState(serial: serial, tokens: tokens)
    }
}
