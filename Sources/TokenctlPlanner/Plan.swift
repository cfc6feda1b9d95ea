import TokenctlModel

/// What a change does: a closed set.
package enum PlanAction: String, Hashable, Sendable, Codable, CaseIterable {
    /// Issue a first credential (or a replacement for one that is gone).
    case issue
    /// Issue the next version, deliver it, and let the current one retire after its overlap.
    case rotate
    /// Change the credential in place at the issuer (e.g. its scopes), without reissuing.
    case update
    /// Revoke a credential at the issuer and remove it from every store.
    case retire
    /// Write the current credential to stores that lack it or hold something else.
    case redeliver
    /// Remove the current credential from stores no longer in `deliverTo` (where they still hold it).
    case undeliver
    /// A credential at an issuer that tokenctl did not issue: reported, or retired.
    case ghost
}

/// Why a change is planned: a closed set of named reasons.
package enum PlanReason: String, Hashable, Sendable, Codable, CaseIterable {
    case notIssued = "NotIssued"
    case rotationDue = "RotationDue"
    case expiresSoon = "ExpiresSoon"
    case expired = "Expired"
    case specChanged = "SpecChanged"
    case overlapEnded = "OverlapEnded"
    case removedFromManifests = "RemovedFromManifests"
    case deliveryMissing = "DeliveryMissing"
    case deliveryDrifted = "DeliveryDrifted"
    case deliveryRemoved = "DeliveryRemoved"
    case unmanaged = "Unmanaged"
    case missingAtIssuer = "MissingAtIssuer"
    case revokeIncomplete = "RevokeIncomplete"
    case deliveryLost = "DeliveryLost"
    /// An operator asked for the rotation (`tokenctl rotate`).
    case requested = "Requested"
    /// An operator declared the credential compromised (`tokenctl rotate --compromised`): revoked at once.
    case compromised = "Compromised"
}

/// One planned change, with its reason and the figures behind it.
package struct PlannedChange: Hashable, Sendable, Codable {
    /// What the change does.
    package var action: PlanAction
    /// The token it concerns; nil for a ghost.
    package var token: TokenID?
    /// The Issuer involved.
    package var issuer: String
    /// The version acted on (rotated from, retired, updated, redelivered).
    package var version: Int?
    /// The version a change creates (issue, rotate).
    package var newVersion: Int?
    /// The reason.
    package var reason: PlanReason
    /// The reason in words, e.g. `age 31d ≥ every 30d`.
    package var detail: String
    /// The figures behind the reason (ages, intervals, dates), for machines.
    package var facts: [String: String]
    /// Stores and keys a delivery change concerns.
    package var stores: [StoreKey]
    /// For a ghost: the issuer's credential id and a safe hint.
    package var ghost: ObservedCredential? {
        get { ghostStorage?.credential }
        set { ghostStorage = newValue.map(GhostStorage.init) }
    }
    // Out of line: few changes are ghosts, and inline the credential made each change of a 100,000-token plan, and each
    // outcome that repeats it, 48 bytes larger.
    private var ghostStorage: GhostStorage?
    /// For a ghost: whether it will be retired (true) or only reported.
    package var retireGhost: Bool
    /// For a retirement: the version this plan's rotation of the same token replaces without overlap. It is retired only
    /// once that rotation succeeded (it is then no longer active); nil for any other change.
    package var followsRotation: Bool?

    /// Creates a change.
    package init(action: PlanAction, token: TokenID?, issuer: String, version: Int? = nil, newVersion: Int? = nil, reason: PlanReason,
                detail: String, facts: [String: String] = [:], stores: [StoreKey] = [], ghost: ObservedCredential? = nil,
                retireGhost: Bool = false, followsRotation: Bool? = nil) {
        self.action = action
        self.token = token
        self.issuer = issuer
        self.version = version
        self.newVersion = newVersion
        self.reason = reason
        self.detail = detail
        self.facts = facts
        self.stores = stores
        self.ghostStorage = ghost.map(GhostStorage.init)
        self.retireGhost = retireGhost
        self.followsRotation = followsRotation
    }

    private enum CodingKeys: String, CodingKey {
        case action, token, issuer, version, newVersion, reason, detail, facts, stores, ghostStorage = "ghost", retireGhost, followsRotation
    }
}

/// A ghost's credential, stored out of line in its change; encoded and printed exactly as the credential itself.
private final class GhostStorage: Hashable, Sendable, Codable, CustomDebugStringConvertible {
    let credential: ObservedCredential

    init(_ credential: ObservedCredential) { self.credential = credential }

    init(from decoder: any Decoder) throws { credential = try ObservedCredential(from: decoder) }

    func encode(to encoder: any Encoder) throws { try credential.encode(to: encoder) }

    static func == (left: GhostStorage, right: GhostStorage) -> Bool { left.credential == right.credential }

    func hash(into hasher: inout Hasher) { credential.hash(into: &hasher) }

    var debugDescription: String { String(reflecting: credential) }
}

/// The changes that would bring issued credentials to the desired state: data, rendered by `PlanRenderer`.
package struct Plan: Hashable, Sendable, Codable {
    /// The version of this format; see docs/json-output.md.
    package var formatVersion = 1
    /// The moment the plan was made for.
    package var createdAt: Timestamp
    /// The state serial the plan was made against.
    package var stateSerial: Int64
    /// The digest of the manifests the plan was made from (filled in by the caller; empty when not known).
    package var manifestsDigest: String
    /// Whether issuer inventories were consulted (`--refresh`).
    package var refreshed: Bool
    /// The changes, ordered by token and action.
    package var changes: [PlannedChange]
    /// The earliest future moment something falls due (rotation, retirement, expiry); nil when nothing will.
    package var nextDueAt: Timestamp?
    /// Tokens that violate a policy: they get no new credential (no issue, rotate or update) until they comply, while
    /// every other change proceeds. Not changes: apply does nothing for them, and exits 3.
    package var held: [HeldToken] = []

    /// Creates a plan.
    package init(createdAt: Timestamp, stateSerial: Int64, manifestsDigest: String = "", refreshed: Bool, changes: [PlannedChange],
                nextDueAt: Timestamp?) {
        self.createdAt = createdAt
        self.stateSerial = stateSerial
        self.manifestsDigest = manifestsDigest
        self.refreshed = refreshed
        self.changes = changes
        self.nextDueAt = nextDueAt
    }

    /// Reads a plan, also one saved before plans listed held tokens.
    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        formatVersion = try container.decode(Int.self, forKey: .formatVersion)
        createdAt = try container.decode(Timestamp.self, forKey: .createdAt)
        stateSerial = try container.decode(Int64.self, forKey: .stateSerial)
        manifestsDigest = try container.decode(String.self, forKey: .manifestsDigest)
        refreshed = try container.decode(Bool.self, forKey: .refreshed)
        changes = try container.decode([PlannedChange].self, forKey: .changes)
        nextDueAt = try container.decodeIfPresent(Timestamp.self, forKey: .nextDueAt)
        held = try container.decodeIfPresent([HeldToken].self, forKey: .held) ?? []
    }

    /// Whether the plan changes anything (reported-only ghosts count as no change).
    package var hasChanges: Bool { changes.contains { $0.action != .ghost || $0.retireGhost } }

    /// Whether the plan shows any drift at all, reported ghosts included: what `--detailed-exitcode` answers, so that a
    /// CI drift check sees ghosts (an issuer with `ghosts: ignore` lists none).
    package var hasDrift: Bool { !changes.isEmpty }

    /// How many changes of each action, with ghosts split into reported and retired.
    package var counts: [String: Int] {
        var counts: [String: Int] = [:]
        for change in changes {
            let key = change.action == .ghost ? (change.retireGhost ? "ghostRetired" : "ghostReported") : change.action.rawValue
            counts[key, default: 0] += 1
        }
        return counts
    }
}

/// A token that violates a policy, and so is given no new credential until it complies.
package struct HeldToken: Hashable, Sendable, Codable {
    /// The token held.
    package var token: TokenID
    /// The policy violations, as full sentences.
    package var violations: [String]
    /// The changes withheld from it (issue, rotate, update), empty when none was due.
    package var withheld: [PlanAction]
    /// Set when a creation-rate limit holds it rather than a violation of the token's own: which one.
    package var rateLimit: RateLimitHit?

    /// Creates a held token.
    package init(token: TokenID, violations: [String], withheld: [PlanAction], rateLimit: RateLimitHit? = nil) {
        self.token = token
        self.violations = violations
        self.withheld = withheld
        self.rateLimit = rateLimit
    }
}
