import Foundation
import GRDB
import TokenctlDrivers
import TokenctlModel

/// tokenctl's own token authority: random tokens with a prefix and checksum; only their hashes
/// are stored (SQLite, `authority.db` in the state directory), with scopes, owner, expiry,
/// revocation and last-used time.
///
/// ```swift
/// let authority = try BuiltinAuthority(directory: ".tokenctl", mode: .readWrite)
/// let issued = try authority.issue(IssueRequest(issuer: "local", owner: "team-a", subject: "payments/api",
///                                               scopes: ["orders:read"], expiresAt: nil, idempotencyKey: "k1"), now: now)
/// ```
package final class BuiltinAuthority: Sendable {
    /// How the authority database is opened.
    package enum Mode: Sendable {
        /// Reads only; a missing database is an empty authority.
        case readOnly
        /// Reads and writes; created when missing.
        case readWrite
    }

    /// Why the authority failed; messages never contain a token.
    package enum AuthorityError: Error, Equatable, Sendable, CustomStringConvertible, SafeToPrint {
        /// The database cannot be opened or is damaged.
        case unavailable(path: String, detail: String)
        /// The credential does not exist.
        case unknownCredential(String)
        /// The database was written by a newer tokenctl.
        case newerVersion(path: String, unknownMigrations: [String])

        package var description: String {
            switch self {
            case let .unavailable(path, detail):
                "the builtin issuer's database '\(path)' cannot be used (\(detail)); check the state directory and its permissions"
            case let .unknownCredential(id):
                "the builtin issuer has no credential with id \(id)"
            case let .newerVersion(path, unknown):
                "the builtin issuer's database '\(path)' was written by a newer tokenctl (unknown migrations: "
                    + "\(unknown.joined(separator: ", "))); upgrade tokenctl to use it (nothing was changed)"
            }
        }
    }

    /// The database file.
    package let path: String
    private let database: (any DatabaseWriter)?

    /// The file name inside the state directory.
    package static let fileName = "authority.db"

    /// Opens the authority in a state directory.
    package init(directory: String, mode: Mode) throws(AuthorityError) {
        path = (directory as NSString).appendingPathComponent(Self.fileName)
        if mode == .readOnly && !FileManager.default.fileExists(atPath: path) {
            database = nil
            return
        }
        do {
            if mode == .readWrite {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            }
            var configuration = Configuration()
            configuration.readonly = mode == .readOnly
            configuration.busyMode = .timeout(10)
            let writer: any DatabaseWriter = mode == .readOnly
                ? try DatabaseQueue(path: path, configuration: configuration)
                : try DatabasePool(path: path, configuration: configuration)
            // A newer tokenctl's schema is refused before anything is read or written with this version's assumptions.
            let migrator = Self.migrator
            let (superseded, unknown): (Bool, [String]) = try writer.read { db in
                let known = Set(migrator.migrations)
                return (try migrator.hasBeenSuperseded(db), try migrator.appliedIdentifiers(db).filter { !known.contains($0) }.sorted())
            }
            if superseded { throw AuthorityError.newerVersion(path: path, unknownMigrations: unknown) }
            if mode == .readWrite {
                try migrator.migrate(writer)
                chmod(path, 0o600)
            }
            database = writer
        } catch let error as AuthorityError {
            throw error
        } catch {
            throw .unavailable(path: path, detail: (error as? DatabaseError)?.message ?? "\(error)")
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-initial") { db in
            try db.execute(sql: """
                CREATE TABLE credential (
                    id TEXT PRIMARY KEY NOT NULL, issuer TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, hint TEXT NOT NULL,
                    owner TEXT NOT NULL, subject TEXT NOT NULL, scopes TEXT NOT NULL,
                    issued_at INTEGER NOT NULL, expires_at INTEGER, revoked_at INTEGER, last_used_at INTEGER,
                    idempotency_key TEXT UNIQUE);
                CREATE INDEX credential_issuer ON credential (issuer);
                """)
        }
        // Which credentials changed, in order: lets a running `serve` keep its in-memory index current by reading
        // only what changed since it last looked. Last-used times are not changes (nothing an answer shows).
        migrator.registerMigration("v2-change-log") { db in
            try db.execute(sql: """
                CREATE TABLE credential_change (sequence INTEGER PRIMARY KEY AUTOINCREMENT, credential_id TEXT NOT NULL);
                CREATE TRIGGER credential_inserted AFTER INSERT ON credential
                BEGIN INSERT INTO credential_change (credential_id) VALUES (NEW.id); END;
                CREATE TRIGGER credential_changed AFTER UPDATE OF scopes, expires_at, revoked_at, token_hash ON credential
                BEGIN INSERT INTO credential_change (credential_id) VALUES (NEW.id); END;
                """)
        }
        return migrator
    }

    private func writer() throws(AuthorityError) -> any DatabaseWriter {
        guard let database else { throw .unavailable(path: path, detail: "it does not exist yet or was opened read-only") }
        return database
    }

    private func run<T>(_ body: () throws -> T) throws(AuthorityError) -> T {
        do {
            return try body()
        } catch let error as AuthorityError {
            throw error
        } catch {
            throw .unavailable(path: path, detail: (error as? DatabaseError)?.message ?? "\(error)")
        }
    }

    // MARK: Issuer operations

    /// Issues a token. With an idempotency key already used, returns the earlier credential's id and no secret
    /// (the secret was never stored, so it cannot be handed out twice).
    package func issue(_ request: IssueRequest, prefix: String = BuiltinIssuerSettings.defaultPrefix,
                      now: Timestamp) throws(AuthorityError) -> IssuedCredential {
        try issue([request], prefix: prefix, now: now)[0]
    }

    /// Issues many tokens in one transaction (one fsync), all or none; each token starts with `prefix_`.
    package func issue(_ requests: [IssueRequest], prefix: String = BuiltinIssuerSettings.defaultPrefix,
                      now: Timestamp) throws(AuthorityError) -> [IssuedCredential] {
        let writer = try writer()
        return try run {
            try writer.write { db in
                // A key used before inserts nothing (and fires no trigger); only then is the earlier credential looked up,
                // rather than probing the key's index once more for every new token.
                let insert = try db.cachedStatement(sql: """
                    INSERT INTO credential (id, issuer, token_hash, hint, owner, subject, scopes, issued_at, expires_at, idempotency_key)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING
                    """)
                let lookup = try db.cachedStatement(sql: "SELECT id FROM credential WHERE idempotency_key = ?")
                defer { try? Self.pruneChanges(db) }
                return try requests.map { request in
                    let token = TokenFormat.generate(prefix: prefix)
                    let id = Self.newCredentialID()
                    let hash = TokenFormat.hash(token)
                    let hint = TokenFormat.hint(token)
                    try insert.execute(arguments: [id, request.issuer, hash, hint, request.owner, request.subject,
                                                   request.scopes.joined(separator: " "), now.secondsSinceEpoch,
                                                   request.expiresAt?.secondsSinceEpoch, request.idempotencyKey])
                    if db.changesCount == 0, let key = request.idempotencyKey {
                        // The secret was never stored, so it cannot be handed out twice.
                        return IssuedCredential(credentialID: try String.fetchOne(lookup, arguments: [key]) ?? "", secret: nil, fingerprint: "",
                                                hint: "")
                    }
                    return IssuedCredential(credentialID: id, secret: Secret(token), fingerprint: hash, hint: hint)
                }
            }
        }
    }

    /// Revokes a credential; revoking twice is fine, an unknown id is too (nothing to revoke).
    package func revoke(credentialID: String, now: Timestamp) throws(AuthorityError) {
        try revoke([credentialID], now: now)
    }

    /// Revokes many credentials in one transaction.
    package func revoke(_ credentialIDs: [String], now: Timestamp) throws(AuthorityError) {
        let writer = try writer()
        try run {
            try writer.write { db in
                let update = try db.cachedStatement(sql: "UPDATE credential SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                for id in credentialIDs { try update.execute(arguments: [now.secondsSinceEpoch, id]) }
                try Self.pruneChanges(db)
            }
        }
    }

    /// The credential issued under an idempotency key.
    package func credential(forIdempotencyKey key: String) throws(AuthorityError) -> String? {
        guard let database else { return nil }
        return try run {
            try database.read { db in try String.fetchOne(db, sql: "SELECT id FROM credential WHERE idempotency_key = ?", arguments: [key]) }
        }
    }

    /// Changes a credential's scopes in place.
    package func update(credentialID: String, scopes: [String]) throws(AuthorityError) {
        let writer = try writer()
        try run {
            try writer.write { db in
                try db.execute(sql: "UPDATE credential SET scopes = ? WHERE id = ?", arguments: [scopes.joined(separator: " "), credentialID])
                if db.changesCount == 0 { throw AuthorityError.unknownCredential(credentialID) }
            }
        }
    }

    /// The issuer's inventory: every credential of `issuer`, revoked ones included (marked).
    package func list(issuer: String) throws(AuthorityError) -> [ObservedCredential] {
        guard let database else { return [] }
        return try run {
            try database.read { db in
                try Row.fetchAll(db, sql: "SELECT id, hint, expires_at, revoked_at FROM credential WHERE issuer = ? ORDER BY id",
                                 arguments: [issuer]).map { row in
                    let expires: Int64? = row[2]
                    let revoked: Int64? = row[3]
                    return ObservedCredential(issuer: issuer, credentialID: row[0], hint: row[1],
                                              expiresAt: expires.map(Timestamp.init(secondsSinceEpoch:)), revoked: revoked != nil)
                }
            }
        }
    }

    /// Every credential of `issuer` with its idempotency key, revoked ones included (for `state rebuild`).
    package func issuedRecords(issuer: String) throws(AuthorityError) -> [IssuedRecord] {
        guard let database else { return [] }
        return try run {
            try database.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT id, idempotency_key, token_hash, scopes, issued_at, expires_at, revoked_at FROM credential
                    WHERE issuer = ? ORDER BY issued_at, id
                    """, arguments: [issuer]).map { row in
                    let scopes: String = row[3]
                    let expires: Int64? = row[5]
                    let revoked: Int64? = row[6]
                    return IssuedRecord(credentialID: row[0], idempotencyKey: row[1], fingerprint: row[2],
                                        scopes: scopes.split(separator: " ").map(String.init),
                                        issuedAt: Timestamp(secondsSinceEpoch: row[4]), expiresAt: expires.map(Timestamp.init(secondsSinceEpoch:)),
                                        revoked: revoked != nil)
                }
            }
        }
    }

    /// Checks a presented token: its checksum first (no lookup), then its hash. With `recordUse`, records the
    /// last use of a valid token at once; a busy server passes false and batches them through `recordUse(_:)`.
    package func verify(_ token: Secret, now: Timestamp, recordUse: Bool = true) throws(AuthorityError) -> Verification {
        let (wellFormed, hash) = token.withRevealed { (TokenFormat.hasValidChecksum($0), TokenFormat.hash($0)) }
        guard wellFormed else { return .invalid(.badChecksum) }
        guard let database else { return .invalid(.unknown) }
        return try run {
            guard let row = try database.read({ db in
                try Row.fetchOne(db, sql: "SELECT id, issuer, owner, subject, scopes, issued_at, expires_at, revoked_at FROM credential WHERE token_hash = ?",
                                 arguments: [hash])
            }) else { return .invalid(.unknown) }
            let revoked: Int64? = row[7]
            if revoked != nil { return .invalid(.revoked) }
            let expires: Int64? = row[6]
            if let expires, expires <= now.secondsSinceEpoch { return .invalid(.expired) }
            let id: String = row[0]
            if recordUse, let writer = database as? DatabasePool {
                try writer.write { db in
                    try db.execute(sql: "UPDATE credential SET last_used_at = ? WHERE id = ?", arguments: [now.secondsSinceEpoch, id])
                }
            }
            let scopes: String = row[4]
            return .valid(VerifiedCredential(
                credentialID: id, issuer: row[1], owner: row[2], subject: row[3],
                scopes: scopes.split(separator: " ").map(String.init), issuedAt: Timestamp(secondsSinceEpoch: row[5]),
                expiresAt: expires.map(Timestamp.init(secondsSinceEpoch:))))
        }
    }

    /// Records last-use times by credential id in one transaction; a time never moves back.
    package func recordUse(_ times: [String: Timestamp]) throws(AuthorityError) {
        guard !times.isEmpty else { return }
        let writer = try writer()
        try run {
            try writer.write { db in
                let update = try db.cachedStatement(
                    sql: "UPDATE credential SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)")
                for (id, time) in times { try update.execute(arguments: [time.secondsSinceEpoch, id, time.secondsSinceEpoch]) }
            }
        }
    }

    /// Last-used times by credential id, for status.
    package func lastUsed(issuer: String) throws(AuthorityError) -> [String: Timestamp] {
        guard let database else { return [:] }
        return try run {
            try database.read { db in
                var result: [String: Timestamp] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT id, last_used_at FROM credential WHERE issuer = ? AND last_used_at IS NOT NULL",
                                            arguments: [issuer]) {
                    result[row[0]] = Timestamp(secondsSinceEpoch: row[1])
                }
                return result
            }
        }
    }

    // MARK: Change log

    /// How many changes the log keeps: a reader further behind than this loads everything again.
    static let changesKept: Int64 = 500_000

    static func pruneChanges(_ db: Database) throws {
        try db.cachedStatement(sql: "DELETE FROM credential_change WHERE sequence <= (SELECT max(sequence) FROM credential_change) - ?")
            .execute(arguments: [changesKept])
    }

    /// What a credential answers to introspection, without its last-used time.
    package struct CredentialFacts: Sendable, Equatable {
        /// The SHA-256 of the token (raw bytes).
        package var tokenHash: [UInt8]
        /// The credential, as `verify` would find it.
        package var credential: VerifiedCredential
        /// Whether it was revoked.
        package var revoked: Bool
    }

    /// Credentials that changed after change `sequence` (every credential when `sequence` is nil, or when the log no longer
    /// reaches back that far), and the sequence of the newest change; `complete` says whether everything was read.
    package func changes(after sequence: Int64?) throws(AuthorityError) -> (facts: [CredentialFacts], newest: Int64, complete: Bool) {
        guard let database else { return ([], 0, true) }
        return try run {
            try database.read { db in
                let newest = try Int64.fetchOne(db, sql: "SELECT max(sequence) FROM credential_change") ?? 0
                if let sequence, sequence == newest { return ([], newest, false) }
                let oldest = try Int64.fetchOne(db, sql: "SELECT min(sequence) FROM credential_change") ?? 0
                let columns = "c.id, c.issuer, c.owner, c.subject, c.scopes, c.issued_at, c.expires_at, c.revoked_at, c.token_hash"
                let rows: RowCursor
                var complete = false
                if let sequence, sequence + 1 >= oldest {
                    rows = try Row.fetchCursor(db, sql: """
                        SELECT \(columns) FROM credential c WHERE c.id IN (SELECT credential_id FROM credential_change WHERE sequence > ?)
                        """, arguments: [sequence])
                } else {
                    rows = try Row.fetchCursor(db, sql: "SELECT \(columns) FROM credential c")
                    complete = true
                }
                var facts: [CredentialFacts] = []
                while let row = try rows.next() {
                    let hashText: String = row[8]
                    guard hashText.hasPrefix("sha256:"), let hash = Hex.bytes(String(hashText.dropFirst(7))) else { continue }
                    let scopes: String = row[4]
                    let expires: Int64? = row[6]
                    let revoked: Int64? = row[7]
                    facts.append(CredentialFacts(
                        tokenHash: hash,
                        credential: VerifiedCredential(credentialID: row[0], issuer: row[1], owner: row[2], subject: row[3],
                                                       scopes: scopes.split(separator: " ").map(String.init),
                                                       issuedAt: Timestamp(secondsSinceEpoch: row[5]),
                                                       expiresAt: expires.map(Timestamp.init(secondsSinceEpoch:))),
                        revoked: revoked != nil))
                }
                return (facts, newest, complete)
            }
        }
    }

    /// Whether an id has the form this authority gives its credentials (`tk-` and 16 hexadecimal digits).
    package static func isCredentialID(_ id: String) -> Bool {
        id.utf8.count == 19 && id.hasPrefix("tk-") && id.utf8.dropFirst(3).allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    static func newCredentialID() -> String {
        "tk-" + Hex.string(withUnsafeBytes(of: TokenFormat.randomWords(1)[0].bigEndian) { Array($0) })
    }
}

/// The outcome of `verify`.
package enum Verification: Sendable, Equatable {
    /// Valid, with what it grants.
    case valid(VerifiedCredential)
    /// Not valid, and why.
    case invalid(InvalidReason)

    /// Why a token is not valid.
    package enum InvalidReason: String, Sendable, Equatable {
        case badChecksum = "bad checksum (mistyped or not a tokenctl token)"
        case unknown = "unknown to this issuer"
        case expired = "expired"
        case revoked = "revoked"
    }
}

/// A valid token's facts (never the token).
package struct VerifiedCredential: Sendable, Equatable {
    /// The authority's id for the credential.
    package var credentialID: String
    /// The Issuer's name.
    package var issuer: String
    /// The accountable owner.
    package var owner: String
    /// What it was issued for, e.g. `payments/orders-api-ci`.
    package var subject: String
    /// What it may do.
    package var scopes: [String]
    /// When it was issued.
    package var issuedAt: Timestamp
    /// When it expires; nil for never.
    package var expiresAt: Timestamp?
}

/// The builtin authority as a `CredentialIssuer` for one Issuer of the manifests.
package struct BuiltinIssuer: CredentialIssuer, RebuildableIssuer {
    /// The authority.
    package let authority: BuiltinAuthority
    /// The Issuer's name.
    package let name: String
    /// The prefix of the tokens it issues.
    package let prefix: String

    /// Adapts an authority.
    package init(authority: BuiltinAuthority, name: String, prefix: String = BuiltinIssuerSettings.defaultPrefix) {
        self.authority = authority
        self.name = name
        self.prefix = prefix
    }

    package func issue(_ requests: [IssueRequest], now: Timestamp) async throws -> [IssuedCredential] {
        try authority.issue(requests, prefix: prefix, now: now)
    }

    package func revoke(_ credentialIDs: [String], now: Timestamp) async throws {
        try authority.revoke(credentialIDs, now: now)
    }

    package func update(credentialID: String, scopes: [String]) async throws {
        try authority.update(credentialID: credentialID, scopes: scopes)
    }

    package func list() async throws -> [ObservedCredential] {
        try authority.list(issuer: name)
    }

    package func credential(forIdempotencyKey key: String) async throws -> String? {
        try authority.credential(forIdempotencyKey: key)
    }

    package func issuedRecords() async throws -> [IssuedRecord] {
        try authority.issuedRecords(issuer: name)
    }

    package func fingerprint(of secret: Secret) -> String {
        secret.withRevealed { TokenFormat.hash($0) }
    }
}
