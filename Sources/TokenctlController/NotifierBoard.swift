import Synchronization
import TokenctlModel

/// What the notice dispatcher needs from the controller's passes: the notifiers the last pass read, and whether this
/// replica leads (only the leader delivers, so that replicas sharing one state do not each send).
///
/// ```swift
/// let board = NotifierBoard()
/// board.post(notifiers: manifests.notifiers, leading: true)   // after each pass
/// board.current.leading                                       // read by the dispatcher
/// ```
package final class NotifierBoard: Sendable {
    /// The board's contents at one moment.
    package struct Contents: Sendable {
        /// Notifiers by name.
        package var notifiers: [String: Notifier] = [:]
        /// Whether this replica acted in its last pass.
        package var leading = false
    }

    private let contents = Mutex(Contents())

    /// Creates an empty board: no notifier, not leading.
    package init() {}

    /// The contents now.
    package var current: Contents { contents.withLock { $0 } }

    /// Records what a pass saw.
    package func post(notifiers: [Notifier], leading: Bool) {
        let byName = Dictionary(notifiers.map { ($0.metadata.name, $0) }, uniquingKeysWith: { first, _ in first })
        contents.withLock { $0 = Contents(notifiers: byName, leading: leading) }
    }
}
