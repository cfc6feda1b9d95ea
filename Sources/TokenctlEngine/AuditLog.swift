import Crypto
import Foundation
import TokenctlModel
import TokenctlState

/// One entry of the audit log: a request (who, from where, which manifests, why) or one change it made.
public struct AuditEntry: Codable, Hashable, Sendable {
    /// When.
    public var at: Timestamp
    /// `request`, `change` or `repair`.
    public var kind: String
    /// Ties a request's changes to it.
    public var requestID: String
    /// Who: TOKENCTL_ACTOR, the CI's actor, or the OS user.
    public var actor: String
    /// The host.
    public var host: String
    /// The command, e.g. `apply` or `plan --out`.
    public var command: String
    /// The git commit of the manifests, when they are in a git repository.
    public var gitCommit: String?
    /// Whether the manifests had uncommitted changes.
    public var gitDirty: Bool?
    /// The operator's `--reason`.
    public var reason: String?
    /// The token a change concerns.
    public var token: TokenID?
    /// The change's action.
    public var action: String?
    /// The change's reason (e.g. RotationDue).
    public var changeReason: String?
    /// The change's detail, or a request's summary.
    public var detail: String?
    /// The token's annotations (its intent: ticket, requested-by…).
    public var annotations: [String: String]?
    /// Fingerprints (hashes) of the credentials involved; never secrets.
    public var fingerprints: [String]?
    /// `ok`, or what failed.
    public var result: String?

    /// Creates an entry.
    public init(at: Timestamp, kind: String, requestID: String, actor: String, host: String, command: String, gitCommit: String? = nil,
                gitDirty: Bool? = nil, reason: String? = nil, token: TokenID? = nil, action: String? = nil, changeReason: String? = nil,
                detail: String? = nil, annotations: [String: String]? = nil, fingerprints: [String]? = nil, result: String? = nil) {
        self.at = at
        self.kind = kind
        self.requestID = requestID
        self.actor = actor
        self.host = host
        self.command = command
        self.gitCommit = gitCommit
        self.gitDirty = gitDirty
        self.reason = reason
        self.token = token
        self.action = action
        self.changeReason = changeReason
        self.detail = detail
        self.annotations = annotations
        self.fingerprints = fingerprints
        self.result = result
    }
}

/// The hash-chained audit log: each record's hash covers the previous record's hash and its own canonical JSON,
/// so an edited, removed or reordered record breaks the chain.
///
/// ```swift
/// try await AuditLog(store: state).append([entry])
/// let problems = AuditLog.verify(try await state.auditRecords())
/// ```
public struct AuditLog: Sendable {
    /// Where records are kept.
    public let store: any AuditLogStore

    /// Creates an audit log over a store.
    public init(store: any AuditLogStore) { self.store = store }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// Seals and appends entries after the last record.
    public func append(_ entries: [AuditEntry]) async throws(StateError) {
        guard !entries.isEmpty else { return }
        let last = try await store.lastAuditRecord()
        var previous = last?.hash ?? ""
        var sequence = (last?.sequence ?? 0) + 1
        var records: [AuditRecord] = []
        for entry in entries {
            let json = (try? Self.encoder.encode(entry)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            let hash = Self.hash(previous: previous, json: json)
            records.append(AuditRecord(sequence: sequence, json: json, previousHash: previous, hash: hash))
            previous = hash
            sequence += 1
        }
        try await store.appendAudit(records)
    }

    static func hash(previous: String, json: String) -> String {
        "sha256:" + Hex.string(SHA256.hash(data: Data((previous + "\n" + json).utf8)))
    }

    /// The problems in a chain of records (empty when intact): edits, removals and reorderings.
    public static func verify(_ records: [AuditRecord]) -> [String] {
        var problems: [String] = []
        var previous = ""
        var expected: Int64 = 1
        for record in records {
            if record.sequence != expected {
                problems.append("entry \(record.sequence) follows entry \(expected - 1): entries are missing or reordered")
            }
            if record.previousHash != previous {
                problems.append("entry \(record.sequence) does not chain to the entry before it: an entry was removed, inserted or reordered")
            }
            if hash(previous: record.previousHash, json: record.json) != record.hash {
                problems.append("entry \(record.sequence) was edited: its content does not match its hash")
            }
            previous = record.hash
            expected = record.sequence + 1
        }
        return problems
    }

    /// The entry a record holds.
    public static func entry(_ record: AuditRecord) -> AuditEntry? {
        try? JSONDecoder().decode(AuditEntry.self, from: Data(record.json.utf8))
    }
}
