import Synchronization

/// A place in a manifest file: the file, a 1-based line and a 1-based column.
///
/// Locations are 12 bytes with no reference counting: the file is an index into an
/// append-only table of paths, so that 100k decoded tokens carry their positions cheaply.
package struct SourceLocation: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The index of the file in `SourceFileTable`.
    package let fileID: UInt32
    /// The 1-based line.
    package let lineNumber: UInt32
    /// The 1-based column, counted in Unicode scalars.
    package let columnNumber: UInt32

    /// Creates a location, registering `file` if it is new.
    package init(file: String, line: Int, column: Int) {
        self.init(fileID: SourceFileTable.id(for: file), line: line, column: column)
    }

    /// Creates a location in an already registered file.
    package init(fileID: UInt32, line: Int, column: Int) {
        self.fileID = fileID
        self.lineNumber = UInt32(clamping: line)
        self.columnNumber = UInt32(clamping: column)
    }

    /// The path of the file as the user named it (relative paths stay relative).
    package var file: String { SourceFileTable.path(for: fileID) }
    /// The 1-based line.
    package var line: Int { Int(lineNumber) }
    /// The 1-based column.
    package var column: Int { Int(columnNumber) }

    package var description: String { "\(file):\(line):\(column)" }

    package static func < (lhs: SourceLocation, rhs: SourceLocation) -> Bool {
        if lhs.fileID != rhs.fileID { return lhs.file < rhs.file }
        if lhs.lineNumber != rhs.lineNumber { return lhs.lineNumber < rhs.lineNumber }
        return lhs.columnNumber < rhs.columnNumber
    }
}

/// The paths of every manifest file seen by this process, each registered once.
package enum SourceFileTable {
    private struct Table {
        var paths: [String] = []
        var ids: [String: UInt32] = [:]
    }

    private static let table = Mutex(Table())

    /// The id of `path`, registering it on first use.
    package static func id(for path: String) -> UInt32 {
        table.withLock { table in
            if let id = table.ids[path] { return id }
            let id = UInt32(table.paths.count)
            table.paths.append(path)
            table.ids[path] = id
            return id
        }
    }

    /// The path registered under `id`.
    package static func path(for id: UInt32) -> String {
        table.withLock { table in Int(id) < table.paths.count ? table.paths[Int(id)] : "<unknown>" }
    }
}

/// A value together with the place in a manifest it was read from.
package struct Located<Value: Sendable>: Sendable {
    /// The decoded value.
    package var value: Value
    /// Where the value was written.
    package var location: SourceLocation

    /// Pairs a value with its location.
    package init(_ value: Value, at location: SourceLocation) {
        self.value = value
        self.location = location
    }
}

extension Located: Equatable where Value: Equatable {}
extension Located: Hashable where Value: Hashable {}
