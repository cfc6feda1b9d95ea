/// The namespace and name that identify a token, written `namespace/name`.
package struct TokenID: Hashable, Sendable, Comparable, TextCodable {
    /// The namespace (default `default`).
    package var namespace: String
    /// The name, unique within its namespace.
    package var name: String

    /// Creates an identifier.
    package init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }

    package var description: String { "\(namespace)/\(name)" }

    /// Reads `namespace/name` (for `TextCodable`).
    package init?(text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        self.init(namespace: String(parts[0]), name: String(parts[1]))
    }


    package static func < (lhs: TokenID, rhs: TokenID) -> Bool {
        lhs.namespace != rhs.namespace ? lhs.namespace < rhs.namespace : lhs.name < rhs.name
    }
}

/// Metadata common to every kind of manifest document.
package struct ResourceMetadata: Hashable, Sendable {
    /// The resource's name (DNS-label style).
    package var name: String
    /// Free-form labels for selection.
    package var labels: [String: String]
    /// Free-form annotations; on tokens they carry intent (ticket, requested-by) into the audit log.
    package var annotations: [String: String]
    /// Where the document starts.
    package var location: SourceLocation

    /// Creates metadata.
    package init(name: String, labels: [String: String] = [:], annotations: [String: String] = [:], location: SourceLocation) {
        self.name = name
        self.labels = labels
        self.annotations = annotations
        self.location = location
    }
}

/// A desired API token: who owns it, what it may do, how long it lives and where it goes.
package struct Token: Hashable, Sendable {
    /// How and when the token is rotated.
    package struct Rotation: Hashable, Sendable {
        /// Interval between rotations (default: two thirds of the lifespan).
        package var every: TokenDuration?
        /// How long the old credential stays valid after its successor is active.
        package var overlap: TokenDuration
        /// When rotations may start; `nil` for any time. Out of line: few tokens have one.
        @OutOfLine package var window: RotationWindow?

        /// Creates rotation settings.
        package init(every: TokenDuration? = nil, overlap: TokenDuration = TokenDuration(seconds: 0), window: RotationWindow? = nil) {
            self.every = every
            self.overlap = overlap
            self.window = window
        }
    }

    /// One place the secret is delivered to.
    package struct Delivery: Hashable, Sendable {
        /// The name of a Store.
        package var store: String
        /// The key under which the secret is stored.
        package var key: String
        /// Where the `store` reference was written.
        package var location: SourceLocation

        /// Creates a delivery target.
        package init(store: String, key: String, location: SourceLocation) {
            self.store = store
            self.key = key
            self.location = location
        }
    }

    /// A reviewed exception that allows a permanent token until it expires.
    package struct Exception: Hashable, Sendable {
        /// Why the exception is needed.
        package var reason: String
        /// Who approved it.
        package var approvedBy: String
        /// The review ticket.
        package var ticket: String
        /// From this moment on the exception no longer holds (a bare date holds through that day, UTC).
        package var expires: Timestamp
        /// `expires` as written.
        package var expiresText: String
        /// Where `expires` was written.
        package var location: SourceLocation

        /// Creates an exception.
        package init(reason: String, approvedBy: String, ticket: String, expires: Timestamp, expiresText: String, location: SourceLocation) {
            self.reason = reason
            self.approvedBy = approvedBy
            self.ticket = ticket
            self.expires = expires
            self.expiresText = expiresText
            self.location = location
        }
    }

    /// Where the fields that later checks point at were written.
    package struct Locations: Hashable, Sendable {
        /// The `issuer` value.
        package var issuer: SourceLocation
        /// The `lifespan` value.
        package var lifespan: SourceLocation
        /// The `rotation.every` value, when written.
        package var rotationEvery: SourceLocation?
        /// Each scope, in order.
        package var scopes: [SourceLocation]
        /// The `owner` value.
        package var owner: SourceLocation

        /// Creates a set of locations.
        package init(issuer: SourceLocation, lifespan: SourceLocation, rotationEvery: SourceLocation?, scopes: [SourceLocation], owner: SourceLocation) {
            self.issuer = issuer
            self.lifespan = lifespan
            self.rotationEvery = rotationEvery
            self.scopes = scopes
            self.owner = owner
        }
    }

    /// Namespace and name.
    package var id: TokenID
    /// Who is accountable for the token.
    package var owner: String
    /// Labels, annotations and the document's location.
    package var metadata: ResourceMetadata
    /// The name of the Issuer that mints it.
    package var issuer: String
    /// What the token may do.
    package var scopes: [String]
    /// How long each credential lives.
    package var lifespan: Lifespan
    /// Rotation settings.
    package var rotation: Rotation
    /// Where the secret is delivered.
    package var deliverTo: [Delivery]
    /// The exception that allows `lifespan: never`. Out of line: few tokens have one.
    @OutOfLine package var exception: Exception?
    /// What is delivered: for database issuers, a connection string (default) or the bare password.
    package var secretFormat: SecretFormat?
    /// Where checked fields were written.
    package var locations: Locations

    /// Creates a token.
    package init(id: TokenID, owner: String, metadata: ResourceMetadata, issuer: String, scopes: [String], lifespan: Lifespan,
                rotation: Rotation, deliverTo: [Delivery], exception: Exception?, locations: Locations) {
        self.id = id
        self.owner = owner
        self.metadata = metadata
        self.issuer = issuer
        self.scopes = scopes
        self.lifespan = lifespan
        self.rotation = rotation
        self.deliverTo = deliverTo
        self.exception = exception
        self.locations = locations
    }

    /// What a token's delivered secret is, for issuers whose credentials have parts (a database login).
    package enum SecretFormat: String, Hashable, Sendable, Codable, CaseIterable {
        /// A connection URL with user and password, e.g. `postgresql://tk_app_v3:…@db:5432/app?sslmode=require`.
        case connectionString = "connection-string"
        /// The password alone.
        case password
    }

    /// The rotation interval in force: `rotation.every`, else two thirds of a finite lifespan, else none.
    package var effectiveRotationEvery: TokenDuration? {
        if let every = rotation.every { return every }
        guard let lifespan = lifespan.duration else { return nil }
        return TokenDuration(seconds: lifespan.seconds * 2 / 3)
    }
}

/// What to do with credentials found at an issuer that tokenctl did not issue.
package enum GhostPolicy: String, Hashable, Sendable, CaseIterable {
    /// List them in plans and status only.
    case report
    /// Revoke them.
    case retire
    /// Neither list nor count them (an issuer shared with other tools that mint credentials too).
    case ignore
}

/// Who mints credentials.
package struct Issuer: Hashable, Sendable {
    /// Name and labels.
    package var metadata: ResourceMetadata
    /// Its type and settings, read only by the driver registered for the type.
    package var driver: DriverConfiguration
    /// What its driver can do, as the driver declared it.
    package var capabilities: IssuerCapabilities
    /// What to do with unmanaged credentials.
    package var ghosts: GhostPolicy

    /// Creates an issuer.
    package init(metadata: ResourceMetadata, driver: DriverConfiguration, capabilities: IssuerCapabilities, ghosts: GhostPolicy = .report) {
        self.metadata = metadata
        self.driver = driver
        self.capabilities = capabilities
        self.ghosts = ghosts
    }
}

/// Where secrets are delivered.
package struct Store: Hashable, Sendable {
    /// Name and labels.
    package var metadata: ResourceMetadata
    /// Its type and settings, read only by the driver registered for the type.
    package var driver: DriverConfiguration
    /// What its driver can do, as the driver declared it.
    package var capabilities: StoreCapabilities

    /// Creates a store.
    package init(metadata: ResourceMetadata, driver: DriverConfiguration, capabilities: StoreCapabilities) {
        self.metadata = metadata
        self.driver = driver
        self.capabilities = capabilities
    }
}

/// Whether tokens with `lifespan: never` are allowed.
package enum PermanentTokenRule: String, Hashable, Sendable, CaseIterable {
    /// Only with a complete, unexpired exception.
    case requireException
    /// Never.
    case deny
    /// Always (not recommended).
    case allow
}

/// A creation-rate limit: at most `count` new credentials (first issues and rotations) per `per`, counted per owner or
/// per issuer. New tokens beyond it are held; rotations always proceed (holding one would break its clients).
package struct IssueRateLimit: Hashable, Sendable {
    /// What the count is kept per.
    package enum Scope: String, Hashable, Sendable, CaseIterable {
        /// Per token owner.
        case owner
        /// Per issuer.
        case issuer
    }

    /// How many new credentials per period.
    package var count: Int
    /// The period.
    package var per: TokenDuration
    /// Counted per owner or per issuer.
    package var by: Scope

    /// Creates a limit.
    package init(count: Int, per: TokenDuration, by: Scope = .owner) {
        self.count = count
        self.per = per
        self.by = by
    }

    /// `100 per 1h by owner`.
    package var description: String { "\(count) per \(per) by \(by.rawValue)" }
}

/// Bounds on who may hold which scopes and for how long.
package struct Policy: Hashable, Sendable {
    /// Scopes that a set of owners may hold.
    package struct ScopeRule: Hashable, Sendable {
        /// Owners the rule applies to (patterns).
        package var owners: [GlobPattern]
        /// Scopes they may hold (patterns).
        package var allow: [GlobPattern]

        /// Creates a rule.
        package init(owners: [GlobPattern], allow: [GlobPattern]) {
            self.owners = owners
            self.allow = allow
        }
    }

    /// Name and labels.
    package var metadata: ResourceMetadata
    /// The longest lifespan allowed.
    package var maxLifespan: TokenDuration?
    /// The longest rotation interval allowed.
    package var maxRotationEvery: TokenDuration?
    /// Whether permanent tokens are allowed.
    package var permanentTokens: PermanentTokenRule
    /// Scope rules; `nil` leaves scopes unrestricted by this policy.
    package var scopes: [ScopeRule]?
    /// How many new credentials may be issued per period, by owner or by issuer; nil for no limit.
    package var maxIssued: IssueRateLimit?

    /// Creates a policy.
    package init(metadata: ResourceMetadata, maxLifespan: TokenDuration? = nil, maxRotationEvery: TokenDuration? = nil,
                permanentTokens: PermanentTokenRule = .requireException, scopes: [ScopeRule]? = nil, maxIssued: IssueRateLimit? = nil) {
        self.metadata = metadata
        self.maxIssued = maxIssued
        self.maxLifespan = maxLifespan
        self.maxRotationEvery = maxRotationEvery
        self.permanentTokens = permanentTokens
        self.scopes = scopes
    }
}

/// Everything the manifests declare: the desired state.
package struct ManifestSet: Sendable {
    /// Desired tokens, in the order of the files and documents they were read from.
    package var tokens: [Token]
    /// Issuers by name.
    package var issuers: [String: Issuer]
    /// Stores by name.
    package var stores: [String: Store]
    /// Policies, sorted by name.
    package var policies: [Policy]
    /// Notifiers, sorted by name.
    package var notifiers: [Notifier]

    /// Creates a manifest set.
    package init(tokens: [Token] = [], issuers: [String: Issuer] = [:], stores: [String: Store] = [:], policies: [Policy] = [],
                 notifiers: [Notifier] = []) {
        self.tokens = tokens
        self.issuers = issuers
        self.stores = stores
        self.policies = policies
        self.notifiers = notifiers
    }
}
