/// The life stage of one issued credential.
package enum CredentialStatus: String, Hashable, Sendable, Codable, CaseIterable {
    /// An issue was started (intent recorded) but not finished.
    case pending
    /// The current credential.
    case active
    /// Superseded, still valid until its overlap ends.
    case retiring
    /// Revoked at the issuer and removed from every store.
    case revoked
}

/// One place a credential's secret was delivered, with the fingerprint of what was written.
package struct DeliveryRecord: Hashable, Sendable, Codable {
    /// The Store's name.
    package var store: String
    /// The key under which the secret was stored.
    package var key: String
    /// A hash of the stored content (never the secret).
    package var contentFingerprint: String
    /// When it was delivered.
    package var deliveredAt: Timestamp

    /// Creates a delivery record.
    package init(store: String, key: String, contentFingerprint: String, deliveredAt: Timestamp) {
        self.store = store
        self.key = key
        self.contentFingerprint = contentFingerprint
        self.deliveredAt = deliveredAt
    }
}

/// One version of a token's credential as recorded in state.
package struct CredentialVersion: Hashable, Sendable, Codable {
    /// 1 for the first credential, then one more per rotation.
    package var version: Int
    /// The issuer's id for the credential.
    package var credentialID: String
    /// A hash of the secret (never the secret).
    package var fingerprint: String
    /// The scopes it was issued with.
    package var scopes: [String]
    /// When it was issued.
    package var issuedAt: Timestamp
    /// When it expires; nil for a permanent credential.
    package var expiresAt: Timestamp?
    /// Where it is in its life.
    package var status: CredentialStatus
    /// For a retiring credential: when its overlap ends and it may be revoked.
    package var retireAfter: Timestamp?
    /// Where its secret was delivered.
    package var deliveries: [DeliveryRecord]
    /// When it was last presented to the issuer, when known.
    package var lastUsedAt: Timestamp?
    /// The idempotency key of the issue that created it: written before the issuer is called, so that a
    /// crash between the two can be repaired without issuing twice.
    package var intentKey: String?

    /// Creates a credential version.
    package init(version: Int, credentialID: String, fingerprint: String, scopes: [String], issuedAt: Timestamp, expiresAt: Timestamp?,
                status: CredentialStatus, retireAfter: Timestamp? = nil, deliveries: [DeliveryRecord] = [], lastUsedAt: Timestamp? = nil,
                intentKey: String? = nil) {
        self.intentKey = intentKey
        self.version = version
        self.credentialID = credentialID
        self.fingerprint = fingerprint
        self.scopes = scopes
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.status = status
        self.retireAfter = retireAfter
        self.deliveries = deliveries
        self.lastUsedAt = lastUsedAt
    }
}

/// A managed token as recorded in state: the settings it was last applied with and every credential version.
package struct RecordedToken: Hashable, Sendable, Codable {
    /// Namespace and name.
    package var id: TokenID
    /// The Issuer that minted its credentials.
    package var issuer: String
    /// The accountable owner.
    package var owner: String
    /// The lifespan it was last applied with.
    package var lifespan: Lifespan
    /// The rotation interval in force when last applied; nil when it never rotates.
    package var rotationEvery: TokenDuration?
    /// The overlap in force when last applied.
    package var overlap: TokenDuration
    /// The rotation window in force when last applied, as written.
    package var window: String?
    /// Every credential version, oldest first.
    package var versions: [CredentialVersion]

    /// Creates a recorded token.
    package init(id: TokenID, issuer: String, owner: String, lifespan: Lifespan, rotationEvery: TokenDuration?,
                overlap: TokenDuration = TokenDuration(seconds: 0), window: String? = nil, versions: [CredentialVersion]) {
        self.id = id
        self.issuer = issuer
        self.owner = owner
        self.lifespan = lifespan
        self.rotationEvery = rotationEvery
        self.overlap = overlap
        self.window = window
        self.versions = versions
    }

    /// The newest active version.
    package var active: CredentialVersion? { versions.last { $0.status == .active } }

    /// The highest version number ever used.
    package var latestVersion: Int { versions.map(\.version).max() ?? 0 }
}

/// Everything the state records: managed tokens and the serial of the last write.
package struct RecordedState: Sendable {
    /// Incremented by every write; a saved plan made at another serial is stale.
    package var serial: Int64
    /// Managed tokens by id.
    package var tokens: [TokenID: RecordedToken]

    /// Creates a state snapshot.
    package init(serial: Int64 = 0, tokens: [TokenID: RecordedToken] = [:]) {
        self.serial = serial
        self.tokens = tokens
    }
}

/// Who holds the state lock, and until when.
package struct StateLock: Hashable, Sendable, Codable {
    /// Who took it (actor, e.g. `alice` or `ci`).
    package var holder: String
    /// The host it was taken on.
    package var host: String
    /// The process that holds it.
    package var processID: Int32
    /// When it was taken.
    package var acquiredAt: Timestamp
    /// When it lapses unless renewed, so a crashed holder never blocks forever.
    package var expiresAt: Timestamp

    /// Creates a lock record.
    package init(holder: String, host: String, processID: Int32, acquiredAt: Timestamp, expiresAt: Timestamp) {
        self.holder = holder
        self.host = host
        self.processID = processID
        self.acquiredAt = acquiredAt
        self.expiresAt = expiresAt
    }
}

/// A credential as an issuer reports it in its inventory.
package struct ObservedCredential: Hashable, Sendable, Codable {
    /// The Issuer's name.
    package var issuer: String
    /// The issuer's id for the credential.
    package var credentialID: String
    /// A safe hint to recognise it, e.g. `tkc_…a91f` (never the secret).
    package var hint: String
    /// When it expires, if it does.
    package var expiresAt: Timestamp?
    /// Whether the issuer already revoked it.
    package var revoked: Bool
    /// True for a credential that looks like tokenctl's (its name fits the issuer's template) but lacks its
    /// ownership marker: reported as a ghost, never retired, whatever the issuer's ghost policy.
    package var unmarked: Bool?

    /// Creates an observed credential.
    package init(issuer: String, credentialID: String, hint: String, expiresAt: Timestamp? = nil, revoked: Bool = false, unmarked: Bool? = nil) {
        self.unmarked = unmarked
        self.issuer = issuer
        self.credentialID = credentialID
        self.hint = hint
        self.expiresAt = expiresAt
        self.revoked = revoked
    }
}

/// What `--refresh` observed: every issuer's inventory, and the fingerprint of what each store holds.
package struct Observation: Sendable {
    /// Inventories by issuer name; an issuer missing here was not asked.
    package var inventories: [String: [ObservedCredential]]
    /// Content fingerprints by store and key; nil where the store holds nothing under the key.
    package var storeContents: [StoreKey: String?]

    /// Creates an observation.
    package init(inventories: [String: [ObservedCredential]] = [:], storeContents: [StoreKey: String?] = [:]) {
        self.inventories = inventories
        self.storeContents = storeContents
    }
}

/// A key in a store.
package struct StoreKey: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The Store's name.
    package var store: String
    /// The key.
    package var key: String

    /// Creates a store key.
    package init(store: String, key: String) {
        self.store = store
        self.key = key
    }

    package var description: String { "\(store):\(key)" }
}
