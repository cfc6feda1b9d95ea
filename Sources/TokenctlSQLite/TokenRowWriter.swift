import GRDB
import TokenctlModel

/// Writes tokens' rows within one state transaction, with its statements prepared once for the whole write: an apply
/// writes each token of a batch three times, so per-statement and per-value overhead adds up.
///
/// ```swift
/// let tokens = try TokenRowWriter(db)
/// try tokens.upsert(record)
/// ```
struct TokenRowWriter {
    private let db: Database
    private let token: RawStatement
    private let credential: RawStatement
    private let delivery: RawStatement
    private let counts: RawStatement

    init(_ db: Database) throws {
        self.db = db
        token = try RawStatement(db, """
            INSERT INTO token (namespace, name, issuer, owner, lifespan, rotation_every, overlap, window) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (namespace, name) DO UPDATE SET issuer = excluded.issuer, owner = excluded.owner, lifespan = excluded.lifespan,
                rotation_every = excluded.rotation_every, overlap = excluded.overlap, window = excluded.window
            """)
        credential = try RawStatement(db, """
            INSERT INTO credential (namespace, name, version, credential_id, fingerprint, scopes, issued_at, expires_at, status, retire_after,
                                    last_used_at, intent_key)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (namespace, name, version) DO UPDATE SET credential_id = excluded.credential_id, fingerprint = excluded.fingerprint,
                scopes = excluded.scopes, issued_at = excluded.issued_at, expires_at = excluded.expires_at, status = excluded.status,
                retire_after = excluded.retire_after, last_used_at = excluded.last_used_at, intent_key = excluded.intent_key
            """)
        delivery = try RawStatement(db, """
            INSERT INTO delivery (namespace, name, version, store, key, content_fingerprint, delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (namespace, name, version, store, key) DO UPDATE SET content_fingerprint = excluded.content_fingerprint,
                delivered_at = excluded.delivered_at
            """)
        counts = try RawStatement(db, """
            SELECT (SELECT count(*) FROM credential WHERE namespace = ?1 AND name = ?2), (SELECT count(*) FROM delivery WHERE namespace = ?1 AND name = ?2)
            """)
    }

    /// Writes a token and its versions and deliveries as the record has them: rows are updated in place (no delete and
    /// re-insert cascading through three tables), and rows the record no longer holds are deleted.
    func upsert(_ record: RecordedToken) throws {
        let (namespace, name) = (record.id.namespace, record.id.name)
        try token.run { bind in
            bind.text(namespace); bind.text(name); bind.text(record.issuer); bind.text(record.owner); bind.text(record.lifespan.description)
            bind.text(record.rotationEvery?.description); bind.text(record.overlap.description); bind.text(record.window)
        }
        var deliveries = 0
        for version in record.versions {
            try credential.run { bind in
                bind.text(namespace); bind.text(name); bind.int(Int64(version.version)); bind.text(version.credentialID)
                bind.text(version.fingerprint); bind.text(version.scopes.joined(separator: "\n")); bind.int(version.issuedAt.secondsSinceEpoch)
                bind.int(version.expiresAt?.secondsSinceEpoch); bind.text(version.status.rawValue); bind.int(version.retireAfter?.secondsSinceEpoch)
                bind.int(version.lastUsedAt?.secondsSinceEpoch); bind.text(version.intentKey)
            }
            for entry in version.deliveries {
                try delivery.run { bind in
                    bind.text(namespace); bind.text(name); bind.int(Int64(version.version)); bind.text(entry.store); bind.text(entry.key)
                    bind.text(entry.contentFingerprint); bind.int(entry.deliveredAt.secondsSinceEpoch)
                }
            }
            deliveries += version.deliveries.count
        }
        // Every row the record holds now exists; more rows than that are versions or deliveries it dropped.
        let stored = try counts.integers(2) { bind in bind.text(namespace); bind.text(name) } ?? [0, 0]
        if stored[0] > record.versions.count { try deleteVersions(of: record) }
        if stored[1] > deliveries { try deleteDeliveries(of: record) }
    }

    /// Deletes a token with its versions and deliveries.
    func delete(_ id: TokenID) throws {
        try db.cachedStatement(sql: "DELETE FROM token WHERE namespace = ? AND name = ?").execute(arguments: [id.namespace, id.name])
    }

    private func deleteVersions(of record: RecordedToken) throws {
        let (namespace, name) = (record.id.namespace, record.id.name)
        let kept = Set(record.versions.map(\.version))
        for stored in try Int.fetchAll(db.cachedStatement(sql: "SELECT version FROM credential WHERE namespace = ? AND name = ?"),
                                       arguments: [namespace, name]) where !kept.contains(stored) {
            try db.cachedStatement(sql: "DELETE FROM credential WHERE namespace = ? AND name = ? AND version = ?").execute(arguments: [namespace, name, stored])
        }
    }

    private func deleteDeliveries(of record: RecordedToken) throws {
        let (namespace, name) = (record.id.namespace, record.id.name)
        var kept: Set<String> = []
        for version in record.versions { for entry in version.deliveries { kept.insert("\(version.version)\u{0}\(entry.store)\u{0}\(entry.key)") } }
        for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT version, store, key FROM delivery WHERE namespace = ? AND name = ?"),
                                    arguments: [namespace, name]) {
            let (version, store, deliveryKey): (Int, String, String) = (row[0], row[1], row[2])
            guard !kept.contains("\(version)\u{0}\(store)\u{0}\(deliveryKey)") else { continue }
            try db.cachedStatement(sql: "DELETE FROM delivery WHERE namespace = ? AND name = ? AND version = ? AND store = ? AND key = ?")
                .execute(arguments: [namespace, name, version, store, deliveryKey])
        }
    }
}
