import TokenctlModel

/// One change to the recorded state.
package enum StateWrite: Hashable, Sendable {
    /// Creates or replaces a token with all its versions.
    case upsert(RecordedToken)
    /// Forgets a token entirely (after it was retired everywhere).
    case delete(TokenID)
}

/// Who asks for the state lock.
package struct LockRequest: Hashable, Sendable {
    /// The actor, e.g. `alice` or `ci`.
    package var holder: String
    /// The host name.
    package var host: String
    /// The process id.
    package var processID: Int32
    /// How long the lock lasts unless renewed.
    package var ttl: TokenDuration

    /// Creates a lock request.
    package init(holder: String, host: String, processID: Int32, ttl: TokenDuration) {
        self.holder = holder
        self.host = host
        self.processID = processID
        self.ttl = ttl
    }
}

/// Where tokenctl records what it issued: the protocol every backend implements and the
/// conformance suite in `Tests/TokenctlStateTests` checks.
///
/// ```swift
/// let store = try SQLiteStateStore(directory: ".tokenctl", mode: .readWrite)
/// let state = try await store.load()
/// let serial = try await store.write([.upsert(token)], expectedSerial: state.serial)
/// ```
package protocol StateStore: Sendable {
    /// The whole recorded state with its serial.
    func load() async throws(StateError) -> RecordedState
    /// The serial of the last write (0 for a new state).
    func serial() async throws(StateError) -> Int64
    /// Applies `writes` atomically and returns the new serial (one more than before). With
    /// `expectedSerial`, fails with `.serialMismatch` and writes nothing when the serial differs. `audit` records (and
    /// the `anchor`, when given) are appended in the same transaction, so that the audit log and the state never
    /// disagree about a change; they must follow the last record, as in `AuditLogStore.appendAudit`.
    func write(_ writes: [StateWrite], expectedSerial: Int64?, audit: [AuditRecord], anchor: String?) async throws(StateError) -> Int64
    /// Takes the lock (or renews it for the same holder and process); a lapsed lock is taken over.
    /// Fails with `.locked` naming the holder when someone else holds it.
    func acquireLock(_ request: LockRequest, now: Timestamp) async throws(StateError) -> StateLock
    /// Releases the lock if this holder and process hold it.
    func releaseLock(holder: String, processID: Int32) async throws(StateError)
    /// The lock in force at `now`, or nil when it is free or lapsed.
    func currentLock(now: Timestamp) async throws(StateError) -> StateLock?
    /// A setting recorded with the state (such as the manifest roots it is managed from), or nil when never set.
    func setting(_ key: String) async throws(StateError) -> String?
    /// Records a setting; it does not change the serial (a saved plan stays valid).
    func setSetting(_ key: String, to value: String) async throws(StateError)
}

extension StateStore {
    /// Applies `writes` atomically, with no audit records.
    package func write(_ writes: [StateWrite], expectedSerial: Int64?) async throws(StateError) -> Int64 {
        try await write(writes, expectedSerial: expectedSerial, audit: [], anchor: nil)
    }
}

/// Why the state could not be read or written; every message says what to do.
package enum StateError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The state file is not a database tokenctl can read.
    case corrupt(path: String, detail: String)
    /// The state was written by a newer tokenctl.
    case newerVersion(path: String, unknownMigrations: [String])
    /// The state cannot be opened (permissions, missing directory…).
    case unavailable(path: String, detail: String)
    /// Another writer changed the state since it was read.
    case serialMismatch(expected: Int64, actual: Int64)
    /// Someone else holds the lock.
    case locked(StateLock)
    /// A write failed.
    case writeFailed(path: String, detail: String)
    /// This process lost the state lock (its lease lapsed and another run took it): the write was refused.
    case fenced(holder: String, detail: String)
    /// The master key this process has cannot authenticate the audit log (missing, out of date, mid-rotation).
    case masterKey(detail: String)

    package var description: String {
        switch self {
        case let .corrupt(path, detail):
            "the state database '\(path)' is damaged or not a tokenctl state (\(detail)); restore it from a backup, or move it away "
                + "to start from empty state (tokenctl will then report credentials it issued earlier as ghosts)"
        case let .newerVersion(path, unknown):
            "the state database '\(path)' was written by a newer tokenctl (unknown migrations: \(unknown.joined(separator: ", "))); "
                + "upgrade tokenctl to use it"
        case let .unavailable(path, detail):
            "cannot open the state database '\(path)' (\(detail)); check that the directory exists and that you may read and write it"
        case let .serialMismatch(expected, actual):
            "the state changed while this run was working (serial \(expected) expected, \(actual) found); plan again and re-apply"
        case let .locked(lock):
            "the state is locked by \(lock.holder) on \(lock.host) (pid \(lock.processID)) since \(lock.acquiredAt), until \(lock.expiresAt); "
                + "wait for that run to finish, or retry with a longer --lock-timeout"
        case let .fenced(holder, detail):
            "this process no longer holds the state lock (\(detail)); it is now held by \(holder), so nothing was written. "
                + "The lease lapsed (was this process paused or cut off?); the holder plans again from the state"
        case let .masterKey(detail):
            "the master key cannot be used here: \(detail); nothing was written"
        case let .writeFailed(path, detail):
            "cannot write the state database '\(path)' (\(detail)); check free disk space and permissions, then re-run. This write "
                + "was rolled back; what earlier steps recorded stays, and the next run repairs any unfinished issue"
        }
    }
}

/// One sealed entry of the audit log as stored: its canonical JSON and its place in the hash chain.
package struct AuditRecord: Hashable, Sendable {
    /// 1 for the first entry, then one more per entry.
    package var sequence: Int64
    /// The entry as canonical JSON (sorted keys); never contains a secret.
    package var json: String
    /// The hash of the previous record (empty for the first).
    package var previousHash: String
    /// SHA-256 over `previousHash`, a newline and `json`.
    package var hash: String

    /// Creates a record.
    package init(sequence: Int64, json: String, previousHash: String, hash: String) {
        self.sequence = sequence
        self.json = json
        self.previousHash = previousHash
        self.hash = hash
    }
}

/// The append-only audit log every state backend keeps beside the state. Appending does not change the
/// state serial, so recording a request never makes a saved plan stale.
package protocol AuditLogStore: Sendable {
    /// Appends sealed records and, in the same transaction, replaces the anchor (an authenticated note of the newest
    /// record, kept apart from the records so that dropping the newest records shows); fails if a record's sequence is
    /// not the next one.
    func appendAudit(_ records: [AuditRecord], anchor: String?) async throws(StateError)
    /// Replaces every record with `records` and the anchor with `anchor`, in one transaction: the same entries sealed
    /// again under a new key (`tokenctl rekey`), followed by any new ones. Fails, changing nothing, unless `records`
    /// holds every existing record with its entry unchanged, in sequence, before the new ones.
    func resealAudit(_ records: [AuditRecord], anchor: String?) async throws(StateError)
    /// The anchor written with the newest records, if any.
    func auditAnchor() async throws(StateError) -> String?
    /// Every record, in sequence order.
    func auditRecords() async throws(StateError) -> [AuditRecord]
    /// The last record, if any.
    func lastAuditRecord() async throws(StateError) -> AuditRecord?
}
