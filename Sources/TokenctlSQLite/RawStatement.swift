import GRDB
import GRDBSQLite

/// A cached statement run with values bound straight to SQLite, for the writes an apply makes per token: GRDB's
/// `StatementArguments` box every value, which costs more than the insert itself.
struct RawStatement {
    private let statement: OpaquePointer
    private let connection: OpaquePointer?

    init(_ db: Database, _ sql: String) throws {
        statement = try db.cachedStatement(sql: sql).sqliteStatement
        connection = db.sqliteConnection
    }

    /// Binds parameters in order, 1 first.
    struct Binder {
        fileprivate let statement: OpaquePointer
        fileprivate var index: Int32 = 1

        mutating func text(_ value: String?) {
            defer { index += 1 }
            guard var text = value else {
                sqlite3_bind_null(statement, index)
                return
            }
            text.withUTF8 { bytes in
                guard let base = bytes.baseAddress else {
                    _ = sqlite3_bind_text(statement, index, "", 0, nil)
                    return
                }
                // SQLITE_TRANSIENT: SQLite copies the bytes before this returns.
                _ = sqlite3_bind_text(statement, index, UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self), Int32(bytes.count),
                                      unsafeBitCast(-1, to: sqlite3_destructor_type.self))
            }
        }

        mutating func int(_ value: Int64?) {
            defer { index += 1 }
            if let value { sqlite3_bind_int64(statement, index, value) } else { sqlite3_bind_null(statement, index) }
        }
    }

    /// Binds the values and steps the statement once.
    func run(_ bind: (inout Binder) -> Void) throws {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        var binder = Binder(statement: statement)
        bind(&binder)
        let code = sqlite3_step(statement)
        sqlite3_reset(statement)
        guard code == SQLITE_DONE || code == SQLITE_ROW else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: connection.map { String(cString: sqlite3_errmsg($0)) })
        }
    }
}
