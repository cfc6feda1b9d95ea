import Foundation
import Synchronization
import TokenctlModel
import TokenctlPlanner
import TokenctlState

/// Writes each change's audit entry in the same transaction as the state write that completes it, so that a crash
/// can never leave an issued, rotated or retired credential without its entry (or an entry without its change).
///
/// ```swift
/// let auditor = ChangeAuditor(store: state, key: auditKey, entry: { change, failure, versions in
///     AuditEntry(at: now, kind: "change", requestID: id, actor: "alice", host: "ci", command: "apply", token: change.token)
/// }, repairEntry: { note in AuditEntry(at: now, kind: "repair", requestID: id, actor: "alice", host: "ci", command: "apply", detail: note) })
/// let engine = Engine(drivers: drivers, auditor: auditor)
/// ```
package final class ChangeAuditor: Sendable {
    /// Builds the entry of a change from its outcome (nil when it succeeded) and the token's versions after it.
    package typealias EntryBuilder = @Sendable (PlannedChange, _ failure: String?, _ versions: [CredentialVersion]) -> AuditEntry

    private let store: any AuditLogStore
    private let key: Data?
    private let build: EntryBuilder
    /// Builds the entry of one crash repair from its note.
    let repairEntry: @Sendable (String) -> AuditEntry
    /// The newest record's sequence and code, read once, then moved forward by each write that commits.
    private let head = Mutex<(sequence: Int64, hash: String)?>(nil)

    /// Creates an auditor that appends to `store`, authenticated with `key` (see `AuditLog`).
    package init(store: any AuditLogStore, key: Data?, entry build: @escaping EntryBuilder,
                repairEntry: @escaping @Sendable (String) -> AuditEntry) {
        self.store = store
        self.key = key
        self.build = build
        self.repairEntry = repairEntry
    }

    /// The entries of `outcomes`, with each token's versions as `state` records them.
    func entries(_ outcomes: [ChangeOutcome], state: RecordedState) -> [AuditEntry] {
        outcomes.map { outcome in
            build(outcome.change, outcome.failure?.description, outcome.change.token.flatMap { state.tokens[$0]?.versions } ?? [])
        }
    }

    /// Applies `writes` and appends `entries` in one transaction; returns the new serial.
    func write(_ writes: [StateWrite], to state: any StateStore, expectedSerial: Int64, audit entries: [AuditEntry]) async throws(StateError) -> Int64 {
        let sealed = try await seal(entries)
        let serial = try await state.write(writes, expectedSerial: expectedSerial, audit: sealed.records, anchor: sealed.anchor)
        committed(sealed)
        return serial
    }

    /// Appends entries that go with no state write (a change that failed before anything was recorded).
    func append(_ entries: [AuditEntry]) async throws(StateError) {
        let sealed = try await seal(entries)
        guard !sealed.records.isEmpty else { return }
        try await store.appendAudit(sealed.records, anchor: sealed.anchor)
        committed(sealed)
    }

    private func seal(_ entries: [AuditEntry]) async throws(StateError) -> AuditLog.Sealed {
        guard !entries.isEmpty else { return AuditLog.Sealed(records: [], anchor: nil) }
        var current = head.withLock { $0 }
        if current == nil {
            let last = try await store.lastAuditRecord()
            try AuditLog.checkHead(last, key: key)
            current = (last?.sequence ?? 0, last?.hash ?? "")
        }
        return try AuditLog.seal(entries, after: current, key: key)
    }

    /// Moves the head past records that a write committed.
    private func committed(_ sealed: AuditLog.Sealed) {
        guard let last = sealed.records.last else { return }
        head.withLock { $0 = (last.sequence, last.hash) }
    }
}
