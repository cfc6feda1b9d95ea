import Foundation
import Logging
import NIOSSL
import PostgresNIO
import Synchronization

/// Where a PostgreSQL server is and how to log in: parsed from `postgres://user:password@host:port/database?sslmode=…`.
///
/// ```swift
/// let endpoint = try PostgresEndpoint(parsing: "postgres://admin:pw@127.0.0.1:5432/app?sslmode=disable")
/// let connection = try await endpoint.connect(logger: logger)
/// ```
///
/// `sslmode` is `disable`, `require` (encrypted, server not verified) or `verify-full` (certificate and host name
/// checked, against `sslrootcert` or the system's roots). Without it, `require`. The password never appears in
/// `description`.
package struct PostgresEndpoint: Sendable, CustomStringConvertible {
    /// The host name or address.
    package var host: String
    /// The TCP port.
    package var port: Int
    /// The user to log in as.
    package var username: String
    /// The password, if any.
    package var password: String?
    /// The database.
    package var database: String
    /// `disable`, `require` or `verify-full`.
    package var tlsMode: String
    /// A CA bundle for `verify-full`.
    package var caFile: String?

    /// The TLS modes understood.
    package static let tlsModes = ["disable", "require", "verify-full"]

    /// Parses a `postgres://` or `postgresql://` URL.
    package init(parsing text: String) throws(PostgresFailure) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let components = URLComponents(string: trimmed), ["postgres", "postgresql"].contains(components.scheme ?? ""),
              let host = components.host, !host.isEmpty else {
            throw PostgresFailure("the connection URL is not of the form postgres://USER:PASSWORD@HOST:PORT/DATABASE")
        }
        guard let user = components.user, !user.isEmpty else {
            throw PostgresFailure("the connection URL names no user (postgres://USER:PASSWORD@HOST:PORT/DATABASE)")
        }
        self.host = host
        port = components.port ?? 5432
        username = user.removingPercentEncoding ?? user
        password = components.password.map { $0.removingPercentEncoding ?? $0 }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.isEmpty ? username : path
        let query = Dictionary(components.queryItems?.map { ($0.name, $0.value ?? "") } ?? [], uniquingKeysWith: { first, _ in first })
        tlsMode = query["sslmode"] ?? "require"
        caFile = query["sslrootcert"]
        guard Self.tlsModes.contains(tlsMode) else {
            throw PostgresFailure("sslmode '\(tlsMode)' is not supported; use disable, require or verify-full")
        }
    }

    /// `postgres://user@host:port/database` (no password).
    package var description: String { "postgres://\(username)@\(host):\(port)/\(database)" }

    /// A URL for the same server and database with another user and password (for delivered connection strings).
    package func url(user: String, password: String) -> String {
        var components = URLComponents()
        components.scheme = "postgresql"
        components.user = user
        components.password = password
        components.host = host
        components.port = port
        components.path = "/" + database
        components.queryItems = [URLQueryItem(name: "sslmode", value: tlsMode)]
        return components.string ?? ""
    }

    /// The driver's configuration.
    package func configuration() throws(PostgresFailure) -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        do {
            switch tlsMode {
            case "disable":
                tls = .disable
            case "require":
                var settings = TLSConfiguration.makeClientConfiguration()
                settings.certificateVerification = .none
                tls = .require(try NIOSSLContext(configuration: settings))
            default:
                var settings = TLSConfiguration.makeClientConfiguration()
                settings.certificateVerification = .fullVerification
                if let caFile { settings.trustRoots = .file(caFile) }
                tls = .require(try NIOSSLContext(configuration: settings))
            }
        } catch {
            throw PostgresFailure("cannot set up TLS for \(description) (\(caFile.map { "CA file \($0)" } ?? "system roots")): check sslrootcert")
        }
        var configuration = PostgresConnection.Configuration(host: host, port: port, username: username, password: password,
                                                             database: database, tls: tls)
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }

    /// Opens a connection; failures name the server and say what to check, never the password.
    package func connect(logger: Logger) async throws(PostgresFailure) -> PostgresConnection {
        let configuration = try configuration()
        let logger = logger.cappedForDriver()
        let description = description
        do {
            // The driver's connect timeout covers TCP only; a server that ends the session during authentication
            // could leave connect waiting, so the whole handshake gets a deadline.
            return try await Deadline.run(seconds: 15, onTimeout: {}, onLateResult: { PostgresTransaction.abandon($0) }) {
                try await PostgresConnection.connect(configuration: configuration, id: Self.nextID(), logger: logger)
            }
        } catch {
            throw PostgresFailure.describing(error, doing: "connect to \(description)")
        }
    }

    static let handshakeDeadline: UInt64 = 15_000_000_000
    private static let counter = Counter()
    private static func nextID() -> Int { counter.next() }

    private final class Counter: Sendable {
        private let value = Mutex(0)
        func next() -> Int { value.withLock { $0 += 1; return $0 } }
    }
}
