import PostgresNIO
import TokenctlModel

/// A PostgreSQL failure as a full sentence that is safe to print: it carries the server's SQLSTATE and message
/// but never the SQL that was sent (which may hold a password verifier) nor the connection password.
public struct PostgresFailure: Error, Sendable, CustomStringConvertible, Equatable, SafeToPrint {
    /// The message.
    public var description: String
    /// The SQLSTATE code, when the server sent one (e.g. `42710` duplicate object, `28P01` bad password).
    public var sqlState: String?

    /// A failure with a message.
    public init(_ description: String, sqlState: String? = nil) {
        self.description = description
        self.sqlState = sqlState
    }

    /// The error that made a transaction fail: the closure's own, else the failure to begin, commit or roll back.
    public static func unwrapTransaction(_ error: any Error) -> any Error {
        guard let transaction = error as? PostgresTransactionError else { return error }
        return transaction.closureError ?? transaction.beginError ?? transaction.commitError ?? transaction.rollbackError ?? error
    }

    /// Describes a driver error of an operation (`doing`, e.g. "connect to postgres://admin@db:5432/app").
    public static func describing(_ error: any Error, doing operation: String) -> PostgresFailure {
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
            case "42501": hint = "; the user lacks a privilege (a postgres issuer's admin needs CREATEROLE)"
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
public enum SQLText {
    /// `"name"` with embedded quotes doubled.
    public static func identifier(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// `'text'` with embedded quotes doubled (standard_conforming_strings is on in every supported server).
    public static func literal(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }
}
