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
        _ = try step(bind) { _ in () }
    }

    /// Binds the values, steps once and reads the first row's integer columns `0..<count` (nil when there is no row).
    func integers(_ count: Int32, _ bind: (inout Binder) -> Void) throws -> [Int64]? {
        try step(bind) { statement in (0..<count).map { sqlite3_column_int64(statement, $0) } }
    }

    private func step<T>(_ bind: (inout Binder) -> Void, read: (OpaquePointer) -> T) throws -> T? {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        var binder = Binder(statement: statement)
        bind(&binder)
        let code = sqlite3_step(statement)
        let row = code == SQLITE_ROW ? read(statement) : nil
        sqlite3_reset(statement)
        guard code == SQLITE_DONE || code == SQLITE_ROW else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: connection.map { String(cString: sqlite3_errmsg($0)) })
        }
        return row
    }
}
