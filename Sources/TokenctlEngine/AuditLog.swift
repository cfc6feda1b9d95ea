import Crypto
import Foundation
import TokenctlModel
import TokenctlState

/// One entry of the audit log: a request (who, from where, which manifests, why) or one change it made.
package struct AuditEntry: Codable, Hashable, Sendable {
    /// When.
    package var at: Timestamp
    /// `request`, `change` or `repair`.
    package var kind: String
    /// Ties a request's changes to it.
    package var requestID: String
    /// Who: TOKENCTL_ACTOR, the CI's actor, or the OS user.
    package var actor: String
    /// The host.
    package var host: String
    /// The command, e.g. `apply` or `plan --out`.
    package var command: String
    /// The git commit of the manifests, when they are in a git repository.
    package var gitCommit: String?
    /// Whether the manifests had uncommitted changes.
    package var gitDirty: Bool?
    /// The operator's `--reason`.
    package var reason: String?
    /// The token a change concerns.
    package var token: TokenID?
    /// The change's action.
    package var action: String?
    /// The change's reason (e.g. RotationDue).
    package var changeReason: String?
    /// The change's detail, or a request's summary.
    package var detail: String?
    /// The token's annotations (its intent: ticket, requested-by…).
    package var annotations: [String: String]?
    /// Fingerprints (hashes) of the credentials involved; never secrets.
    package var fingerprints: [String]?
    /// `ok`, or what failed.
    package var result: String?

    /// Creates an entry.
    package init(at: Timestamp, kind: String, requestID: String, actor: String, host: String, command: String, gitCommit: String? = nil,
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

/// The audit log: each record carries an authentication code over the previous record's and its own canonical JSON,
/// keyed from the master key, and an anchor kept apart from the records notes the newest one. An edited, removed,
/// inserted or reordered record breaks the chain; dropping the newest records or emptying the log contradicts the
/// anchor; and without the key, a rewritten chain cannot be made to verify.
///
/// ```swift
/// let log = AuditLog(store: state, key: AuditLog.key(fromMasterKey: masterKey))
/// try await log.append([entry])
/// let result = AuditLog.verify(try await state.auditRecords(), anchor: try await state.auditAnchor(), key: log.key, stateSerial: 7)
/// ```
package struct AuditLog: Sendable {
    /// Where records are kept.
    package let store: any AuditLogStore
    /// The key that authenticates the chain (derived from the master key); nil before any master key exists, when
    /// records are only hash-chained.
    package let key: Data?

    /// Creates an audit log over a store.
    package init(store: any AuditLogStore, key: Data?) {
        self.store = store
        self.key = key
    }

    /// The audit key for a master key: a separate key (HKDF), so that the audit log never uses the stores' key as is.
    package static func key(fromMasterKey master: SymmetricKey) -> Data {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: master, info: Data("tokenctl-audit-v1".utf8), outputByteCount: 32)
            .withUnsafeBytes { Data($0) }
    }

    /// Seals and appends entries after the last record, and moves the anchor to the newest one.
    package func append(_ entries: [AuditEntry]) async throws(StateError) {
        guard !entries.isEmpty else { return }
        let sealed = try await seal(entries)
        try await store.appendAudit(sealed.records, anchor: sealed.anchor)
    }

    /// Whether a record was sealed with a key (rather than only hash-chained).
    package static func isAuthenticated(_ record: AuditRecord) -> Bool { record.hash.hasPrefix(keyedPrefix) }

    /// Records sealed to follow the newest one, with the anchor that names the last of them (nil without a key).
    package struct Sealed: Sendable {
        /// The records, in order after the newest one.
        package var records: [AuditRecord]
        /// The anchor naming the last of them.
        package var anchor: String?
    }

    /// Entries sealed to follow the last record, for a caller that writes them in its own transaction
    /// (`StateStore.write(_:expectedSerial:audit:anchor:)`) while holding the state lock.
    package func seal(_ entries: [AuditEntry]) async throws(StateError) -> Sealed {
        let last = try await store.lastAuditRecord()
        try Self.checkHead(last, key: key)
        return try Self.seal(entries, after: last.map { ($0.sequence, $0.hash) }, key: key)
    }

    /// Seals entries to follow the record `head` names (nil for an empty log): the one sealing routine of the log.
    static func seal(_ entries: [AuditEntry], after head: (sequence: Int64, hash: String)?, key: Data?) throws(StateError) -> Sealed {
        guard !entries.isEmpty else { return Sealed(records: [], anchor: nil) }
        if key == nil, head?.hash.hasPrefix(keyedPrefix) == true {
            // An unauthenticated record after authenticated ones would read as tampering.
            throw .masterKey(detail: "the audit log is authenticated with a key derived from the master key, which is not "
                               + "available here; set TOKENCTL_MASTER_KEY, or use the state directory that holds master.key")
        }
        var (sequence, previous) = head ?? (0, "")
        var records: [AuditRecord] = []
        for entry in entries {
            let json = AuditJSON.encode(entry)
            sequence += 1
            let hash = seal(previous: previous, json: json, key: key)
            records.append(AuditRecord(sequence: sequence, json: json, previousHash: previous, hash: hash))
            previous = hash
        }
        return Sealed(records: records, anchor: key.map { anchor(sequence: sequence, hash: previous, key: $0) })
    }

    /// Fails when the newest record was authenticated with a key other than `key`: this process holds an out-of-date
    /// master key (it was rotated by `tokenctl rekey`), and entries appended with it would read as tampering.
    static func checkHead(_ last: AuditRecord?, key: Data?) throws(StateError) {
        guard let key, let last, last.hash.hasPrefix(keyedPrefix), seal(previous: last.previousHash, json: last.json, key: key) != last.hash else {
            return
        }
        throw .masterKey(detail: "the audit log's newest entry (#\(last.sequence)) was sealed with another master key, so the key "
                         + "this process holds is not the one in use (a wrong TOKENCTL_MASTER_KEY, or one from before tokenctl rekey "
                         + "rotated it), or the entry was altered; run with the current master key (tokenctl audit --verify shows "
                         + "whether the log is intact)")
    }

    /// The log sealed again under `newKey`, followed by `entries` (for `tokenctl rekey`). Entries written before the
    /// log was authenticated keep their plain hash chain; every authenticated one gets a new code, its content
    /// unchanged. The log must verify under `oldKey`: re-sealing a log that does not would vouch for whatever changed it.
    package static func resealed(_ records: [AuditRecord], anchor: String?, from oldKey: Data, to newKey: Data, stateSerial: Int64,
                                appending entries: [AuditEntry]) throws(StateError) -> Sealed {
        if let problem = verify(records, anchor: anchor, key: oldKey, stateSerial: stateSerial).problem {
            throw .masterKey(detail: "the audit log fails verification (\(problem)); re-sealing it under a new key would hide that, so nothing was "
                           + "re-sealed (tokenctl audit --verify shows the problem)")
        }
        var resealed: [AuditRecord] = []
        resealed.reserveCapacity(records.count + entries.count)
        var previous = ""
        for record in records {
            let hash = record.hash.hasPrefix(keyedPrefix) ? seal(previous: previous, json: record.json, key: newKey) : record.hash
            resealed.append(AuditRecord(sequence: record.sequence, json: record.json, previousHash: previous, hash: hash))
            previous = hash
        }
        let appended = try seal(entries, after: resealed.last.map { ($0.sequence, $0.hash) }, key: newKey)
        let last = appended.records.last ?? resealed.last
        return Sealed(records: resealed + appended.records,
                      anchor: last.map { Self.anchor(sequence: $0.sequence, hash: $0.hash, key: newKey) })
    }

    static let keyedPrefix = "hmac-sha256:"
    static let unkeyedPrefix = "sha256:"

    static func seal(previous: String, json: String, key: Data?) -> String {
        let data = Data((previous + "\n" + json).utf8)
        guard let key else { return unkeyedPrefix + Hex.string(SHA256.hash(data: data)) }
        return keyedPrefix + Hex.string(HMAC<SHA256>.authenticationCode(for: data, using: SymmetricKey(data: key)))
    }

    static func anchor(sequence: Int64, hash: String, key: Data) -> String {
        "v1 \(sequence) \(hash) " + Hex.string(HMAC<SHA256>.authenticationCode(for: Data("tokenctl-audit-anchor\n\(sequence)\n\(hash)".utf8),
                                                                             using: SymmetricKey(data: key)))
    }

    /// What a check of the log found.
    package struct Verification: Sendable, Equatable {
        /// The first problem, naming the first bad or missing entry; nil when the log is intact.
        package var problem: String?
        /// Records whose authentication code was checked with the key.
        package var authenticated = 0
        /// Records written before the log was authenticated (hash-chained only).
        package var unauthenticated = 0
    }

    /// Checks the chain, its authentication codes and its anchor. `stateSerial` tells whether the state has a history
    /// that an empty log would contradict.
    package static func verify(_ records: [AuditRecord], anchor: String?, key: Data?, stateSerial: Int64) -> Verification {
        var result = Verification()
        func fail(_ problem: String) -> Verification {
            result.problem = problem
            return result
        }
        var previous = ""
        var expected: Int64 = 1
        for record in records {
            if record.sequence > expected {
                return fail("entr\(record.sequence - expected == 1 ? "y #\(expected) is" : "ies #\(expected)–#\(record.sequence - 1) are") "
                            + "missing: the log jumps from #\(expected - 1) to #\(record.sequence)")
            }
            if record.sequence != expected { return fail("entry #\(record.sequence) is out of order where #\(expected) was next") }
            if record.previousHash != previous {
                return fail("entry #\(record.sequence) does not chain to the entry before it: an entry was removed, inserted or replaced")
            }
            if record.hash.hasPrefix(keyedPrefix) {
                guard let key else {
                    return fail("the log is authenticated with a key derived from the master key, which is not available here; "
                                + "set TOKENCTL_MASTER_KEY or pass the --state-dir that holds master.key")
                }
                guard seal(previous: record.previousHash, json: record.json, key: key) == record.hash else {
                    return fail("entry #\(record.sequence) was edited or forged: its authentication code does not match its content")
                }
                result.authenticated += 1
            } else {
                guard result.authenticated == 0 else {
                    return fail("entry #\(record.sequence) is not authenticated although the entries before it are: it was rewritten")
                }
                guard seal(previous: record.previousHash, json: record.json, key: nil) == record.hash else {
                    return fail("entry #\(record.sequence) was edited: its content does not match its hash")
                }
                result.unauthenticated += 1
            }
            previous = record.hash
            expected = record.sequence + 1
        }
        let last = records.last
        if result.authenticated == 0 && result.unauthenticated > 0 {
            return fail("none of the log's \(result.unauthenticated) entries is authenticated: it was written by an older tokenctl, or "
                        + "rewritten by someone without the master key (an apply with this version authenticates it from then on)")
        }
        guard let anchor else {
            if result.authenticated > 0 { return fail("the log's anchor is missing: it was removed, so the newest entries cannot be vouched for") }
            if records.isEmpty && stateSerial > 0 {
                return fail("the log is empty although the state has a history (serial \(stateSerial)): its entries were removed")
            }
            return result
        }
        let parts = anchor.split(separator: " ").map(String.init)
        guard parts.count == 4, parts[0] == "v1", let sequence = Int64(parts[1]) else { return fail("the log's anchor is unreadable: it was altered") }
        if let key, Self.anchor(sequence: sequence, hash: parts[2], key: key) != anchor {
            return fail("the log's anchor was altered: its authentication code does not match")
        }
        let lastSequence = last?.sequence ?? 0
        if sequence > lastSequence {
            return fail("entr\(sequence - lastSequence == 1 ? "y #\(sequence) is" : "ies #\(lastSequence + 1)–#\(sequence) are") missing: "
                        + "the log ends at #\(lastSequence) but its anchor records #\(sequence)")
        }
        // Read before the records, the anchor may be older than entries appended meanwhile (authenticated, as checked
        // above): it must then match the entry it names.
        let anchored = sequence >= 1 && Int(sequence) <= records.count ? records[Int(sequence) - 1].hash : nil
        if sequence > 0 && anchored != parts[2] { return fail("entry #\(sequence) is not the one the anchor records: it was replaced") }
        return result
    }

    /// The entry a record holds.
    package static func entry(_ record: AuditRecord) -> AuditEntry? {
        try? JSONDecoder().decode(AuditEntry.self, from: Data(record.json.utf8))
    }
}
