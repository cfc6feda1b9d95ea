import Foundation
import Synchronization
import TokenctlModel
import TokenctlPlanner
import TokenctlState

/// Writes each change's audit entry in the same transaction as the state write that completes it, so that a crash
/// can never leave an issued, rotated or retired credential without its entry (or an entry without its change).
///
/// ```swift
/// let auditor = ChangeAuditor(store: state, key: auditKey) { change, failure, versions in
///     AuditEntry(at: now, kind: "change", requestID: id, actor: "alice", host: "ci", command: "apply", token: change.token)
/// }
/// let engine = Engine(drivers: drivers, auditor: auditor)
/// ```
public final class ChangeAuditor: Sendable {
    /// Builds the entry of a change from its outcome (nil when it succeeded) and the token's versions after it.
    public typealias EntryBuilder = @Sendable (PlannedChange, _ failure: String?, _ versions: [CredentialVersion]) -> AuditEntry

    private let store: any AuditLogStore
    private let key: Data?
    private let build: EntryBuilder
    /// Builds the entry of one crash repair from its note.
    let repairEntry: @Sendable (String) -> AuditEntry
    /// The newest record's sequence and code, read once, then moved forward by each write that commits.
    private let head = Mutex<(sequence: Int64, hash: String)?>(nil)

    /// Creates an auditor that appends to `store`, authenticated with `key` (see `AuditLog`).
    public init(store: any AuditLogStore, key: Data?, entry build: @escaping EntryBuilder,
                repairEntry: @escaping @Sendable (String) -> AuditEntry) {
        self.store = store
        self.key = key
        self.build = build
        self.repairEntry = repairEntry
    }

    /// Records sealed for one state write; pass them to `StateStore.write(_:expectedSerial:audit:anchor:)`, then to `committed`.
    public struct Sealed: Sendable {
        /// The records, in order after the last one.
        public var records: [AuditRecord]
        /// The anchor naming the newest of them (nil without a key).
        public var anchor: String?
    }

    /// Seals the entries of `outcomes` to follow the newest record.
    func seal(_ outcomes: [ChangeOutcome], state: RecordedState) async throws(StateError) -> Sealed {
        try await seal(outcomes.map { outcome in
            build(outcome.change, outcome.failure, outcome.change.token.flatMap { state.tokens[$0]?.versions } ?? [])
        })
    }

    /// Seals entries to follow the newest record.
    func seal(_ entries: [AuditEntry]) async throws(StateError) -> Sealed {
        guard !entries.isEmpty else { return Sealed(records: [], anchor: nil) }
        var current = head.withLock { $0 }
        if current == nil {
            let last = try await store.lastAuditRecord()
            if key == nil, last?.hash.hasPrefix(AuditLog.keyedPrefix) == true {
                throw .unavailable(path: "the audit log", detail: "it is authenticated with a key derived from the master key, which is not "
                                   + "available here; set TOKENCTL_MASTER_KEY, or use the state directory that holds master.key")
            }
            current = (last?.sequence ?? 0, last?.hash ?? "")
        }
        var (sequence, previous) = current ?? (0, "")
        var records: [AuditRecord] = []
        for entry in entries {
            let json = (try? AuditLog.encoder.encode(entry)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            sequence += 1
            let hash = AuditLog.seal(previous: previous, json: json, key: key)
            records.append(AuditRecord(sequence: sequence, json: json, previousHash: previous, hash: hash))
            previous = hash
        }
        return Sealed(records: records, anchor: key.map { AuditLog.anchor(sequence: sequence, hash: previous, key: $0) })
    }

    /// Moves the head past records that a write committed.
    func committed(_ sealed: Sealed) {
        guard let last = sealed.records.last else { return }
        head.withLock { $0 = (last.sequence, last.hash) }
    }

    /// Appends the entries of changes that completed without a state write (a failure before anything was recorded).
    func appendAlone(_ outcomes: [ChangeOutcome], state: RecordedState) async throws(StateError) {
        try await appendAlone(try await seal(outcomes, state: state))
    }

    /// Appends sealed records that go with no state write.
    func appendAlone(_ sealed: Sealed) async throws(StateError) {
        guard !sealed.records.isEmpty else { return }
        try await store.appendAudit(sealed.records, anchor: sealed.anchor)
        committed(sealed)
    }
}
