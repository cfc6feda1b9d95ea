import Foundation
import Synchronization
import TokenctlController
import TokenctlModel
import TokenctlPlanner
import TokenctlStores

/// `controller.json` in the state directory: the tokens a running controller keeps failing on, so that
/// `tokenctl status` (another process) shows them as needing attention.
package struct ControllerStatusFile: Codable {
    package static let fileName = "controller.json"

    package var formatVersion = 1
    /// When the controller wrote it.
    package var updatedAt: Timestamp
    /// The controller's process id.
    package var processID: Int32
    /// The failing tokens, with their last error (free of secrets) and next attempt.
    package var needsAttention: [RetryBook.Entry]

    package static func path(_ directory: String) -> String {
        (directory as NSString).appendingPathComponent(fileName)
    }

    /// Writes the file (atomically, 0600) when the set of failing tokens changed.
    package static func write(_ retries: RetryBook, directory: String, previous: inout [RetryBook.Entry]?) {
        let entries = retries.entries.values.sorted { $0.key < $1.key }
        guard entries != previous else { return }
        previous = entries
        let file = ControllerStatusFile(updatedAt: Timestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970)),
                                        processID: getpid(), needsAttention: entries)
        guard FileManager.default.fileExists(atPath: directory), let text = try? PlanJSON.encode(file) else { return }
        try? atomicWrite(Data(text.utf8), to: path(directory))
    }

    package static func read(_ directory: String) -> ControllerStatusFile? {
        guard let data = FileManager.default.contents(atPath: path(directory)) else { return nil }
        return try? JSONDecoder().decode(ControllerStatusFile.self, from: data)
    }

    /// Marks the rows of tokens the controller keeps failing on.
    package static func annotate(_ rows: [TokenStatus.Row], directory: String) -> [TokenStatus.Row] {
        guard let file = read(directory), !file.needsAttention.isEmpty else { return rows }
        let failing = Dictionary(file.needsAttention.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        return rows.map { row in
            guard let entry = failing[row.token.description] else { return row }
            var row = row
            row.health = .needsAttention
            row.note = "the controller's \(entry.action) failed \(entry.failures) time(s) since \(entry.firstFailedAt): \(entry.lastError); "
                + "next attempt \(entry.nextAttemptAt)"
            return row
        }
    }
}

/// Persists the controller's failing tokens for `tokenctl status`, only when they change.
package final class StatusFileWriter: Sendable {
    private let directory: String
    private let previous = Mutex<[RetryBook.Entry]?>(nil)

    package init(directory: String) {
        self.directory = directory
    }

    package func write(_ retries: RetryBook) {
        previous.withLock { ControllerStatusFile.write(retries, directory: directory, previous: &$0) }
    }
}
