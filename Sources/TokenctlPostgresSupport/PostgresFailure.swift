import Foundation
import Logging
import PostgresNIO
import Synchronization
import TokenctlModel

/// A PostgreSQL failure as a full sentence that is safe to print: it carries the server's SQLSTATE and message
/// but never the SQL that was sent (which may hold a password verifier) nor the connection password.
package struct PostgresFailure: Error, Sendable, CustomStringConvertible, Equatable, SafeToPrint {
    /// The message.
    package var description: String
    /// The SQLSTATE code, when the server sent one (e.g. `42710` duplicate object, `28P01` bad password).
    package var sqlState: String?

    /// A failure with a message.
    package init(_ description: String, sqlState: String? = nil) {
        self.description = description
        self.sqlState = sqlState
    }

    /// The error that made a transaction fail: the closure's own, else the failure to begin, commit or roll back.
    package static func unwrapTransaction(_ error: any Error) -> any Error {
        guard let transaction = error as? PostgresTransactionError else { return error }
        return transaction.closureError ?? transaction.beginError ?? transaction.commitError ?? transaction.rollbackError ?? error
    }

    /// Describes a driver error of an operation (`doing`, e.g. "connect to postgres://admin@db:5432/app").
    package static func describing(_ error: any Error, doing operation: String) -> PostgresFailure {
        let error = unwrapTransaction(error)
        if let failure = error as? PostgresFailure { return failure }
        guard let error = error as? PSQLError else {
            return PostgresFailure("cannot \(operation): \(type(of: error)) (details withheld: they may contain secrets)")
        }
        if let state = error.serverInfo?[.sqlState] {
            let message = error.serverInfo?[.message] ?? "no message"
            // A syntax error's message quotes the statement; statements may carry verifiers, so it is withheld.
            let safe = state == "42601" ? "syntax error (statement withheld)" : message
            let hint: String
            switch state {
            case "28P01", "28000": hint = "; check the user and password in the connection URL"
            case "42501": hint = "; the user lacks a privilege (a postgres issuer's admin needs CREATEROLE, ADMIN OPTION on the "
                + "group roles, and membership in the reassignOwnedTo role)"
            case "3D000": hint = "; create the database or fix the URL"
            case "57P01", "57P02", "57P03": hint = "; the server is shutting down or starting; retry"
            default: hint = ""
            }
            return PostgresFailure("cannot \(operation): \(safe) (SQLSTATE \(state))\(hint)", sqlState: state)
        }
        switch error.code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown:
            return PostgresFailure("cannot \(operation): the connection failed or was lost; check that the server is running and reachable")
        case .sslUnsupported:
            return PostgresFailure("cannot \(operation): the server does not support TLS; use sslmode=disable only on a trusted network")
        case .authMechanismRequiresPassword:
            return PostgresFailure("cannot \(operation): the server asks for a password and the URL has none")
        case .unsupportedAuthMechanism, .saslError:
            return PostgresFailure("cannot \(operation): authentication failed; check the user and password in the connection URL")
        default:
            return PostgresFailure("cannot \(operation): \(error.code)")
        }
    }
}

/// SQL quoting for statements that cannot take bind parameters (role names and passwords in DDL).
package enum SQLText {
    /// `"name"` with embedded quotes doubled.
    package static func identifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Statements as one atomic `DO` block (one round trip; errors keep their SQLSTATE), dollar-quoted with a tag
    /// that does not occur in the statements (role names may contain `$`).
    package static func block(_ statements: [String]) -> String {
        let body = "BEGIN " + statements.map { $0 + "; " }.joined() + "END"
        var tag = "$tokenctl$"
        var counter = 0
        while body.contains(tag) {
            counter += 1
            tag = "$tokenctl\(counter)$"
        }
        return "DO \(tag) \(body) \(tag)"
    }

    /// `'text'` with embedded quotes doubled (standard_conforming_strings is on in every supported server).
    package static func literal(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }
}

/// Transactions that never wait on a dead connection: on any error the connection is closed (the server rolls
/// back what it had) instead of sending ROLLBACK, which can wait forever on a connection the server just ended.
package enum PostgresTransaction {
    /// Runs `body` between BEGIN and COMMIT.
    package static func run<T>(_ connection: PostgresConnection, logger: Logger, isolation: isolated (any Actor)? = #isolation,
                              _ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            try await connection.query("BEGIN", logger: logger)
            let result = try await body(connection)
            try await connection.query("COMMIT", logger: logger)
            return result
        } catch {
            abandon(connection)
            throw error
        }
    }

    /// Closes a connection without waiting; it stays alive until the close completes.
    package static func abandon(_ connection: PostgresConnection) {
        let closing: EventLoopFuture<Void> = connection.close()
        closing.whenComplete { _ in withExtendedLifetime(connection) {} }
    }
}

extension Logger {
    /// A logger for the driver: at most `notice`, because at debug and trace the driver logs statements, and
    /// statements can carry password verifiers.
    package func cappedForDriver() -> Logger {
        var logger = self
        if logger.logLevel < .notice { logger.logLevel = .notice }
        return logger
    }
}

/// A deadline for driver calls that might never answer (a connection the server ended without the driver
/// noticing): the caller gets an error after `seconds`, `onTimeout` runs (close the connection), and the
/// abandoned call is left to finish or fail on its own.
package enum Deadline {
    package static func run<T: Sendable>(seconds: Double, onTimeout: @escaping @Sendable () -> Void,
                                        onLateResult: @escaping @Sendable (T) -> Void = { _ in },
                                        _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let gate = Gate<T>()
        return try await withCheckedThrowingContinuation { continuation in
            gate.arm(continuation)
            let work = Task {
                do {
                    let value = try await operation()
                    // Finished after the deadline: nobody takes the result, so it is disposed of (a connection closed).
                    if !gate.finish(.success(value)) { onLateResult(value) }
                } catch {
                    gate.finish(.failure(error))
                }
            }
            Task {
                try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
                if gate.finish(.failure(PostgresFailure("the server did not answer within \(Int(seconds)) seconds; the connection was dropped"))) {
                    onTimeout()
                    work.cancel()
                }
            }
        }
    }

    /// Resumes a continuation once.
    private final class Gate<T: Sendable>: Sendable {
        private struct State {
            var continuation: CheckedContinuation<T, any Error>?
            var pending: Result<T, any Error>?
            var done = false
        }
        private let state = Mutex(State())

        func arm(_ continuation: CheckedContinuation<T, any Error>) {
            let pending = state.withLock { state -> Result<T, any Error>? in
                if let pending = state.pending { return pending }
                state.continuation = continuation
                return nil
            }
            if let pending { continuation.resume(with: pending) }
        }

        /// Returns true when this call decided the outcome.
        @discardableResult
        func finish(_ result: Result<T, any Error>) -> Bool {
            let (decided, waiting) = state.withLock { state -> (Bool, CheckedContinuation<T, any Error>?) in
                guard !state.done else { return (false, nil) }
                state.done = true
                guard let continuation = state.continuation else {
                    state.pending = result
                    return (true, nil)
                }
                state.continuation = nil
                return (true, continuation)
            }
            waiting?.resume(with: result)
            return decided
        }
    }
}
