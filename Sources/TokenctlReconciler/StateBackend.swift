import Foundation
import TokenctlModel
import TokenctlPostgresState
import TokenctlSQLite
import TokenctlState

/// Where the state lives: SQLite in the state directory (default), or PostgreSQL shared by several processes.
package enum StateBackend {
    /// The store type every command works with.
    package typealias Store = any StateStore & AuditLogStore & NoticeOutbox

    package static let variable = "TOKENCTL_STATE_URL"

    package static func url(explicit: String?) -> String? {
        if let explicit, !explicit.isEmpty { return explicit }
        let value = ProcessInfo.processInfo.environment[variable] ?? ""
        return value.isEmpty ? nil : value
    }

    /// Whether state exists already (PostgreSQL state always counts as existing: it is shared).
    package static func exists(directory: String, url: String?) -> Bool {
        url != nil || FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent(SQLiteStateStore.fileName))
    }

    /// How long a lock lasts unless renewed: a lease of 30 s on shared state (renewed while held, so a killed or
    /// stalled holder is replaced quickly), 15 minutes on local state (a dead holder on this host is detected by pid).
    package static func lockTTL(url: String?) -> TokenDuration {
        if url != nil, let text = ProcessInfo.processInfo.environment["TOKENCTL_LEASE"], let lease = try? TokenDuration(parsing: text) {
            return lease
        }
        return TokenDuration(seconds: url == nil ? 900 : 30)
    }

    package static func open(directory: String, url: String?, mode: SQLiteStateStore.Mode) throws(StateError) -> Store {
        if let url { return try PostgresStateStore(url: url) }
        return try SQLiteStateStore(directory: directory, mode: mode)
    }
}
