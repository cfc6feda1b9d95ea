/// The life stage of one issued credential.
public enum CredentialStatus: String, Hashable, Sendable, Codable, CaseIterable {
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
public struct DeliveryRecord: Hashable, Sendable, Codable {
    /// The Store's name.
    public var store: String
    /// The key under which the secret was stored.
    public var key: String
    /// A hash of the stored content (never the secret).
    public var contentFingerprint: String
    /// When it was delivered.
    public var deliveredAt: Timestamp

    /// Creates a delivery record.
    public init(store: String, key: String, contentFingerprint: String, deliveredAt: Timestamp) {
        self.store = store
        self.key = key
        self.contentFingerprint = contentFingerprint
        self.deliveredAt = deliveredAt
    }
}

/// One version of a token's credential as recorded in state.
public struct CredentialVersion: Hashable, Sendable, Codable {
    /// 1 for the first credential, then one more per rotation.
    public var version: Int
    /// The issuer's id for the credential.
    public var credentialID: String
    /// A hash of the secret (never the secret).
    public var fingerprint: String
    /// The scopes it was issued with.
    public var scopes: [String]
    /// When it was issued.
    public var issuedAt: Timestamp
    /// When it expires; nil for a permanent credential.
    public var expiresAt: Timestamp?
    /// Where it is in its life.
    public var status: CredentialStatus
    /// For a retiring credential: when its overlap ends and it may be revoked.
    public var retireAfter: Timestamp?
    /// Where its secret was delivered.
    public var deliveries: [DeliveryRecord]
    /// When it was last presented to the issuer, when known.
    public var lastUsedAt: Timestamp?
    /// The idempotency key of the issue that created it: written before the issuer is called, so that a
    /// crash between the two can be repaired without issuing twice.
    public var intentKey: String?

    /// Creates a credential version.
    public init(version: Int, credentialID: String, fingerprint: String, scopes: [String], issuedAt: Timestamp, expiresAt: Timestamp?,
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
public struct RecordedToken: Hashable, Sendable, Codable {
    /// Namespace and name.
    public var id: TokenID
    /// The Issuer that minted its credentials.
    public var issuer: String
    /// The accountable owner.
    public var owner: String
    /// The lifespan it was last applied with.
    public var lifespan: Lifespan
    /// The rotation interval in force when last applied; nil when it never rotates.
    public var rotationEvery: TokenDuration?
    /// The overlap in force when last applied.
    public var overlap: TokenDuration
    /// The rotation window in force when last applied, as written.
    public var window: String?
    /// Every credential version, oldest first.
    public var versions: [CredentialVersion]

    /// Creates a recorded token.
    public init(id: TokenID, issuer: String, owner: String, lifespan: Lifespan, rotationEvery: TokenDuration?,
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
    public var active: CredentialVersion? { versions.last { $0.status == .active } }

    /// The highest version number ever used.
    public var latestVersion: Int { versions.map(\.version).max() ?? 0 }
}

/// Everything the state records: managed tokens and the serial of the last write.
public struct RecordedState: Sendable {
    /// Incremented by every write; a saved plan made at another serial is stale.
    public var serial: Int64
    /// Managed tokens by id.
    public var tokens: [TokenID: RecordedToken]

    /// Creates a state snapshot.
    public init(serial: Int64 = 0, tokens: [TokenID: RecordedToken] = [:]) {
        self.serial = serial
        self.tokens = tokens
    }
}

/// Who holds the state lock, and until when.
public struct StateLock: Hashable, Sendable, Codable {
    /// Who took it (actor, e.g. `alice` or `ci`).
    public var holder: String
    /// The host it was taken on.
    public var host: String
    /// The process that holds it.
    public var processID: Int32
    /// When it was taken.
    public var acquiredAt: Timestamp
    /// When it lapses unless renewed, so a crashed holder never blocks forever.
    public var expiresAt: Timestamp

    /// Creates a lock record.
    public init(holder: String, host: String, processID: Int32, acquiredAt: Timestamp, expiresAt: Timestamp) {
        self.holder = holder
        self.host = host
        self.processID = processID
        self.acquiredAt = acquiredAt
        self.expiresAt = expiresAt
    }
}

/// A credential as an issuer reports it in its inventory.
public struct ObservedCredential: Hashable, Sendable, Codable {
    /// The Issuer's name.
    public var issuer: String
    /// The issuer's id for the credential.
    public var credentialID: String
    /// A safe hint to recognise it, e.g. `tkc_…a91f` (never the secret).
    public var hint: String
    /// When it expires, if it does.
    public var expiresAt: Timestamp?
    /// Whether the issuer already revoked it.
    public var revoked: Bool
    /// True for a credential that looks like tokenctl's (its name fits the issuer's template) but lacks its
    /// ownership marker: reported as a ghost, never retired, whatever the issuer's ghost policy.
    public var unmarked: Bool?

    /// Creates an observed credential.
    public init(issuer: String, credentialID: String, hint: String, expiresAt: Timestamp? = nil, revoked: Bool = false, unmarked: Bool? = nil) {
        self.unmarked = unmarked
        self.issuer = issuer
        self.credentialID = credentialID
        self.hint = hint
        self.expiresAt = expiresAt
        self.revoked = revoked
    }
}

/// What `--refresh` observed: every issuer's inventory, and the fingerprint of what each store holds.
public struct Observation: Sendable {
    /// Inventories by issuer name; an issuer missing here was not asked.
    public var inventories: [String: [ObservedCredential]]
    /// Content fingerprints by store and key; nil where the store holds nothing under the key.
    public var storeContents: [StoreKey: String?]

    /// Creates an observation.
    public init(inventories: [String: [ObservedCredential]] = [:], storeContents: [StoreKey: String?] = [:]) {
        self.inventories = inventories
        self.storeContents = storeContents
    }
}

/// A key in a store.
public struct StoreKey: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The Store's name.
    public var store: String
    /// The key.
    public var key: String

    /// Creates a store key.
    public init(store: String, key: String) {
        self.store = store
        self.key = key
    }

    public var description: String { "\(store):\(key)" }
}
