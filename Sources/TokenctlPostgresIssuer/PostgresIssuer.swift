import Crypto
import Foundation
import Logging
import PostgresNIO
import Synchronization
import TokenctlDrivers
import TokenctlModel
import TokenctlPostgresSupport

/// The `postgres` issuer: each credential is a login role of a PostgreSQL server.
///
/// ```swift
/// let issuer = try PostgresIssuer(name: "reporting-db", settings: settings, adminURL: url, logger: logger)
/// let results = await issuer.issueEach(requests, now: now)   // CREATE ROLE … PASSWORD '<SCRAM verifier>' VALID UNTIL …
/// try await issuer.revoke(["tk_payments_reporting_v1"], now: now)   // NOLOGIN, end sessions, reassign, DROP ROLE
/// ```
///
/// - A role is created in one transaction with its password (a SCRAM-SHA-256 verifier computed here, so the
///   plaintext never reaches the server or its logs), `VALID UNTIL` from the lifespan, membership in the group
///   roles the scopes name (`role:NAME`), and a comment marking it as tokenctl's with the intent's idempotency key.
/// - Roles are created over several connections at once, so that computing verifiers here overlaps with the
///   server checking them (it runs one PBKDF2 per password to refuse empty ones).
/// - Retiring makes the role NOLOGIN, ends its sessions, reassigns what it owns (when `reassignOwnedTo` is set)
///   and drops it. A role that owns objects without `reassignOwnedTo` stays NOLOGIN, and retirement says why.
/// - The inventory is one catalog query: roles with this issuer's marker, and roles named like the template
///   without a marker (reported as unmarked ghosts, never touched).
package final class PostgresIssuer: CredentialIssuer, ScopeChecking {
    /// The Issuer's name.
    package let name: String
    let endpoint: PostgresEndpoint
    let names: RoleNames
    let reassignOwnedTo: String?
    let logger: Logger
    /// Connections used at once to create roles.
    package let parallelism: Int

    /// Creates the issuer. `adminURL` is the resolved `url` reference; the manifest's TLS settings override its `sslmode`.
    package init(name: String, settings: PostgresSettings, adminURL: String, parallelism: Int = 4, logger: Logger) throws(PostgresFailure) {
        var endpoint = try PostgresEndpoint(parsing: adminURL)
        endpoint.tlsMode = settings.tlsMode
        endpoint.caFile = settings.tlsCAFile ?? endpoint.caFile
        self.name = name
        self.endpoint = endpoint
        names = RoleNames(template: settings.roleTemplate, issuer: name)
        reassignOwnedTo = settings.reassignOwnedTo
        self.parallelism = max(1, parallelism)
        self.logger = logger.cappedForDriver()
    }

    /// Roles (`r`) with their comment (`d.description`, NULL when none): where markers are read.
    static let rolesWithComments = "pg_roles r LEFT JOIN pg_shdescription d ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass"

    // MARK: Issue

    package func issue(_ requests: [IssueRequest], now: Timestamp) async throws -> [IssuedCredential] {
        let results = await issueEach(requests, now: now)
        guard let failure = results.compactMap({ result -> (any Error)? in if case .failure(let error) = result { error } else { nil } }).first else {
            return results.compactMap { try? $0.get() }
        }
        // All or none: drop what this call created.
        let created = results.compactMap { try? $0.get() }.filter { $0.secret != nil }.map(\.credentialID)
        try? await revoke(created, now: now)
        throw failure
    }

    package func issueEach(_ requests: [IssueRequest], now: Timestamp) async -> [Result<IssuedCredential, any Error>] {
        guard !requests.isEmpty else { return [] }
        let queue = WorkQueue(count: requests.count)
        let results = ConcurrentSlots<Result<IssuedCredential, PostgresFailure>>(
            count: requests.count, initial: .failure(PostgresFailure("the request was not processed")))
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<min(parallelism, requests.count) {
                group.addTask {
                    var connection: PostgresConnection?
                    while let index = queue.next() {
                        do {
                            if connection == nil || connection?.isClosed == true {
                                connection = try await self.endpoint.connect(logger: self.logger)
                            }
                            guard let open = connection else { continue }
                            let request = requests[index]
                            results.set(index, .success(try await Deadline.run(seconds: 20, onTimeout: { PostgresTransaction.abandon(open) }) {
                                try await self.createRole(request, on: open, now: now)
                            }))
                        } catch {
                            let failure = PostgresFailure.describing(error, doing: "create the role for \(requests[index].subject)")
                            results.set(index, .failure(failure))
                            // After any error the connection is replaced: the server may be ending it (57P01), and a
                            // query sent on such a connection can wait forever. Closing is never awaited, for the same reason.
                            if let open = connection {
                                PostgresTransaction.abandon(open)
                                connection = nil
                            }
                        }
                    }
                    if let connection { PostgresTransaction.abandon(connection) }
                }
            }
        }
        return results.take().map { $0.mapError { $0 } }
    }

    private func createRole(_ request: IssueRequest, on connection: PostgresConnection, now: Timestamp) async throws -> IssuedCredential {
        let version = request.version ?? 1
        let role = names.role(subject: request.subject, version: version)
        var groups: [String] = []
        for scope in request.scopes {
            guard scope.hasPrefix("role:"), scope.count > 5 else {
                throw PostgresFailure("scope '\(scope)' of \(request.subject) is not a group role (write role:NAME)")
            }
            groups.append(String(scope.dropFirst(5)))
        }
        let password = Self.newPassword()
        let verifier = try SCRAMVerifier.make(password: password)
        let marker = names.marker(subject: request.subject, version: version, intent: request.idempotencyKey)
        let validUntil = request.expiresAt.map { $0.description } ?? "infinity"
        var statement = "CREATE ROLE \(SQLText.identifier(role)) LOGIN PASSWORD \(SQLText.literal(verifier)) VALID UNTIL \(SQLText.literal(validUntil))"
        if !groups.isEmpty { statement += " IN ROLE " + groups.map(SQLText.identifier).joined(separator: ", ") }
        do {
            // One statement, so one round trip and atomic: the role never exists without its marker.
            try await connection.query(PostgresQuery(unsafeSQL: SQLText.block([
                statement, "COMMENT ON ROLE \(SQLText.identifier(role)) IS \(SQLText.literal(marker))",
            ])), logger: logger)
        } catch {
            let failure = PostgresFailure.describing(error, doing: "create role \(role) for \(request.subject)")
            switch failure.sqlState {
            case "42710":
                // The role exists: ours from an earlier attempt with this intent (idempotent), or a clash.
                if let existingMarker = try await comment(of: role, on: connection), existingMarker.hasPrefix(names.markerPrefix) {
                    if let key = request.idempotencyKey, RoleNames.intent(inMarker: existingMarker) == key {
                        return IssuedCredential(credentialID: role, secret: nil, fingerprint: "", hint: role)
                    }
                    throw PostgresFailure("role \(role) for \(request.subject) already exists, made by tokenctl for another issue; "
                                          + "retire it (apply --refresh with ghosts: retire) or drop it, then apply again", sqlState: "42710")
                }
                throw PostgresFailure("role \(role) for \(request.subject) already exists and is not managed by tokenctl; "
                                      + "rename it, drop it, or change the issuer's roleTemplate", sqlState: "42710")
            case "42704":
                throw PostgresFailure("a scope of \(request.subject) names a group role that does not exist on \(endpoint.description) "
                                      + "(\(request.scopes.joined(separator: ", "))); create the role or fix the scope", sqlState: "42704")
            case "42501":
                throw PostgresFailure("the admin user of \(endpoint.description) may not create roles for \(request.subject); "
                                      + "grant it CREATEROLE (and membership with ADMIN OPTION in the group roles)", sqlState: "42501")
            default:
                throw failure
            }
        }
        let secret: String
        switch request.secretFormat ?? .connectionString {
        case .connectionString: secret = endpoint.url(user: role, password: password)
        case .password: secret = password
        }
        return IssuedCredential(credentialID: role, secret: Secret(secret),
                                fingerprint: "sha256:" + SHA256.hash(data: Data(password.utf8)).map { String(format: "%02x", $0) }.joined(),
                                hint: role)
    }

    /// 32 characters from [A-Za-z0-9]: 190 bits, safe in URLs and in SQL literals.
    static func newPassword() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<32).map { _ in alphabet[Int(generator.next(upperBound: UInt64(alphabet.count)))] })
    }

    private func comment(of role: String, on connection: PostgresConnection) async throws -> String? {
        let rows = try await connection.query("""
            SELECT d.description FROM \(unescaped: Self.rolesWithComments)
            WHERE r.rolname = \(role) AND d.description IS NOT NULL
            """, logger: logger)
        var found: String?
        for try await description in rows.decode(String.self) { found = description }
        return found
    }

    // MARK: Revoke and update

    package func revoke(_ credentialIDs: [String], now: Timestamp) async throws {
        guard !credentialIDs.isEmpty else { return }
        let connection = try await endpoint.connect(logger: logger)
        defer { PostgresTransaction.abandon(connection) }
        var problems: [String] = []
        for role in credentialIDs {
            do {
                try await retire(role, on: connection)
            } catch {
                problems.append(PostgresFailure.describing(error, doing: "retire role \(role)").description)
            }
        }
        if !problems.isEmpty { throw PostgresFailure(problems.joined(separator: "; ")) }
    }

    private func retire(_ role: String, on connection: PostgresConnection) async throws {
        // Only roles that carry this issuer's marker are touched; an unknown id is already gone.
        guard let marker = try await comment(of: role, on: connection) else {
            if try await roleExists(role, on: connection) {
                throw PostgresFailure("role \(role) exists but carries no tokenctl marker; tokenctl does not touch it")
            }
            return
        }
        guard marker.hasPrefix(names.markerPrefix) else { throw PostgresFailure("role \(role) belongs to another issuer (\(marker))") }
        let quoted = SQLText.identifier(role)
        try await connection.query(PostgresQuery(unsafeSQL: "ALTER ROLE \(quoted) NOLOGIN"), logger: logger)
        try await connection.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = \(role)", logger: logger)
        do {
            var statements: [String] = []
            if let owner = reassignOwnedTo {
                // REASSIGN and DROP OWNED need the privileges of the retiring role: take membership first (PostgreSQL 15
                // does not give a role's creator that membership by itself).
                statements += ["GRANT \(quoted) TO CURRENT_USER", "REASSIGN OWNED BY \(quoted) TO \(SQLText.identifier(owner))",
                               "DROP OWNED BY \(quoted)"]
            }
            try await connection.query(PostgresQuery(unsafeSQL: SQLText.block(statements + ["DROP ROLE \(quoted)"])), logger: logger)
        } catch {
            let failure = PostgresFailure.describing(error, doing: "drop role \(role)")
            if failure.sqlState == "2BP01" {
                throw PostgresFailure("role \(role) owns objects, so it was made NOLOGIN (it can no longer log in) but not dropped; "
                                      + "set reassignOwnedTo on the issuer, or reassign its objects by hand, then apply again", sqlState: "2BP01")
            }
            throw failure
        }
    }

    private func roleExists(_ role: String, on connection: PostgresConnection) async throws -> Bool {
        var exists = false
        for try await _ in try await connection.query("SELECT 1 FROM pg_roles WHERE rolname = \(role)", logger: logger).decode(Int32.self) {
            exists = true
        }
        return exists
    }

    package func update(credentialID: String, scopes: [String]) async throws {
        let connection = try await endpoint.connect(logger: logger)
        defer { PostgresTransaction.abandon(connection) }
        do {
            let wanted = Set(scopes.filter { $0.hasPrefix("role:") }.map { String($0.dropFirst(5)) })
            var current: Set<String> = []
            let rows = try await connection.query("""
                SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member
                WHERE r.rolname = \(credentialID)
                """, logger: logger)
            for try await group in rows.decode(String.self) { current.insert(group) }
            let statements = wanted.subtracting(current).sorted().map { "GRANT \(SQLText.identifier($0)) TO \(SQLText.identifier(credentialID))" }
                + current.subtracting(wanted).sorted().map { "REVOKE \(SQLText.identifier($0)) FROM \(SQLText.identifier(credentialID))" }
            if !statements.isEmpty { try await connection.query(PostgresQuery(unsafeSQL: SQLText.block(statements)), logger: logger) }
        } catch {
            throw PostgresFailure.describing(error, doing: "change the group roles of \(credentialID)")
        }
    }

    // MARK: Inventory

    package func list() async throws -> [ObservedCredential] {
        let connection = try await endpoint.connect(logger: logger)
        defer { PostgresTransaction.abandon(connection) }
        do {
            let rows = try await connection.query("""
                SELECT r.rolname, r.rolcanlogin, extract(epoch FROM r.rolvaliduntil)::float8, d.description
                FROM \(unescaped: Self.rolesWithComments)
                WHERE d.description LIKE \(RoleNames.escapeLike(names.markerPrefix) + "%")
                   OR (r.rolname LIKE \(names.likePattern) AND (d.description IS NULL OR d.description NOT LIKE 'tokenctl:%'))
                ORDER BY r.rolname
                """, logger: logger)
            var credentials: [ObservedCredential] = []
            for try await (role, canLogin, validUntil, description) in rows.decode((String, Bool, Double?, String?).self) {
                let expires = validUntil.flatMap { $0.isFinite ? Timestamp(secondsSinceEpoch: Int64($0)) : nil }
                let marked = description?.hasPrefix(names.markerPrefix) == true
                credentials.append(ObservedCredential(issuer: name, credentialID: role, hint: role, expiresAt: expires, revoked: !canLogin,
                                                      unmarked: marked ? nil : true))
            }
            return credentials
        } catch {
            throw PostgresFailure.describing(error, doing: "list the roles of \(endpoint.description)")
        }
    }

    package func credential(forIdempotencyKey key: String) async throws -> String? {
        let connection = try await endpoint.connect(logger: logger)
        defer { PostgresTransaction.abandon(connection) }
        do {
            let pattern = RoleNames.escapeLike(names.markerPrefix) + "%;intent=" + RoleNames.escapeLike(key) + ";%"
            let rows = try await connection.query("""
                SELECT r.rolname FROM \(unescaped: Self.rolesWithComments)
                WHERE d.description LIKE \(pattern)
                """, logger: logger)
            var found: String?
            for try await role in rows.decode(String.self) { found = role }
            return found
        } catch {
            throw PostgresFailure.describing(error, doing: "look up the role of an interrupted issue")
        }
    }

    // MARK: Scopes

    package func unknownScopes(_ scopes: Set<String>) async throws -> [String: String] {
        var unknown: [String: String] = [:]
        var groups: [String: String] = [:]
        for scope in scopes {
            if scope.hasPrefix("role:"), scope.count > 5 { groups[String(scope.dropFirst(5))] = scope } else { unknown[scope] = "not of the form role:NAME" }
        }
        guard !groups.isEmpty else { return unknown }
        let connection = try await endpoint.connect(logger: logger)
        defer { PostgresTransaction.abandon(connection) }
        do {
            var existing: Set<String> = []
            let rows = try await connection.query("SELECT rolname FROM pg_roles WHERE rolname = ANY(\(Array(groups.keys)))", logger: logger)
            for try await role in rows.decode(String.self) { existing.insert(role) }
            for (group, scope) in groups where !existing.contains(group) {
                unknown[scope] = "no role named \(group) on \(endpoint.description)"
            }
            return unknown
        } catch {
            throw PostgresFailure.describing(error, doing: "check the scopes' group roles")
        }
    }
}

/// Hands out indexes 0..<count to workers, each once.
final class WorkQueue: Sendable {
    private let nextIndex = Mutex(0)
    private let count: Int

    init(count: Int) { self.count = count }

    func next() -> Int? {
        nextIndex.withLock { next in
            guard next < count else { return nil }
            defer { next += 1 }
            return next
        }
    }
}
