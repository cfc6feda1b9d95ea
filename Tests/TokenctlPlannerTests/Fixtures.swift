import TokenctlModel
import TokenctlPlanner

// Shared fixtures for the planner tests: a fixed clock and small builders of desired and recorded state.

/// The fixed clock every planner test plans at: a Monday, inside `Mon-Fri 09:00-17:00 UTC`.
let now = try! Timestamp(parsing: "2026-11-30T12:00:00Z")

/// A dummy location for fixture manifests.
let loc = SourceLocation(file: "t.yaml", line: 1, column: 1)

func duration(_ text: String) -> TokenDuration { try! TokenDuration(parsing: text) }
func timestamp(_ text: String) -> Timestamp { try! Timestamp(parsing: text) }
func window(_ text: String) -> RotationWindow { try! RotationWindow(parsing: text) }

/// `now` minus a duration such as `31d`.
func ago(_ text: String) -> Timestamp { Timestamp(secondsSinceEpoch: now.secondsSinceEpoch - duration(text).seconds) }
/// `now` plus a duration such as `12h`.
func fromNow(_ text: String) -> Timestamp { now + duration(text) }

/// `payments/x` → TokenID; a bare name goes to the `default` namespace.
func tid(_ text: String) -> TokenID {
    let parts = text.split(separator: "/", maxSplits: 1)
    return parts.count == 2 ? TokenID(namespace: String(parts[0]), name: String(parts[1])) : TokenID(namespace: "default", name: text)
}

/// A desired token, written the way a manifest would declare it.
func token(_ id: String, lifespan: String = "90d", every: String? = "30d", overlap: String = "24h", window text: String? = nil,
           scopes: [String] = ["read"], issuer: String = "local",
           deliverTo: [(String, String)] = [("vault", "payments/x")]) -> Token {
    Token(
        id: tid(id), owner: "team-payments",
        metadata: ResourceMetadata(name: tid(id).name, location: loc),
        issuer: issuer, scopes: scopes, lifespan: try! Lifespan(parsing: lifespan),
        rotation: Token.Rotation(every: every.map(duration), overlap: duration(overlap), window: text.map(window)),
        deliverTo: deliverTo.map { Token.Delivery(store: $0.0, key: $0.1, location: loc) },
        exception: nil,
        locations: Token.Locations(issuer: loc, lifespan: loc, rotationEvery: every == nil ? nil : loc,
                                   scopes: scopes.map { _ in loc }, owner: loc))
}

/// One recorded credential version; by default active, issued 10 days ago for 90 days, delivered to `vault:payments/x`.
/// It expires at `expiresAt` when given, else `lifespan` after `issuedAt` (never for a nil lifespan).
func version(_ number: Int, issuedAt: Timestamp = ago("10d"), lifespan: String? = "90d", expiresAt: Timestamp? = nil,
             scopes: [String] = ["read"], status: CredentialStatus = .active, retireAfter: Timestamp? = nil,
             deliveries: [(String, String, String)] = [("vault", "payments/x", "fp-1")]) -> CredentialVersion {
    let expiry = expiresAt ?? lifespan.map { issuedAt + duration($0) }
    return CredentialVersion(
        version: number, credentialID: "cred-\(number)", fingerprint: "sha256:v\(number)", scopes: scopes,
        issuedAt: issuedAt, expiresAt: expiry, status: status, retireAfter: retireAfter,
        deliveries: deliveries.map { DeliveryRecord(store: $0.0, key: $0.1, contentFingerprint: $0.2, deliveredAt: issuedAt) })
}

/// A recorded token; credential ids are made unique per token (`<namespace>.<name>-cred-<n>`).
func recorded(_ id: String, issuer: String = "local", lifespan: String = "90d", every: String? = "30d", overlap: String = "24h",
              window: String? = nil, versions: [CredentialVersion] = [version(1)]) -> RecordedToken {
    RecordedToken(
        id: tid(id), issuer: issuer, owner: "team-payments", lifespan: try! Lifespan(parsing: lifespan),
        rotationEvery: every.map(duration), overlap: duration(overlap), window: window,
        versions: versions.map { version in
            var version = version
            version.credentialID = "\(tid(id).namespace).\(tid(id).name)-\(version.credentialID)"
            return version
        })
}

/// The credential id `recorded(...)` gives version `number` of token `id`.
func credentialID(_ id: String, _ number: Int) -> String { "\(tid(id).namespace).\(tid(id).name)-cred-\(number)" }

/// Settings of the fixture issuers: the planner never looks inside, only at capabilities.
struct FixtureSettings: DriverSettings {
    var label: String
}

/// The fixture issuers: `local` (builtin-like, ghosts reported), `strict` (ghosts retired), `ext` (an issuer that
/// cannot update in place, like exec), `pg` (postgres-like).
let fixtureIssuers: [String: Issuer] = {
    func issuer(_ name: String, _ type: String, _ capabilities: IssuerCapabilities, ghosts: GhostPolicy = .report) -> Issuer {
        Issuer(metadata: ResourceMetadata(name: name, location: loc), driver: DriverConfiguration(type: type, settings: FixtureSettings(label: name)),
               capabilities: capabilities, ghosts: ghosts)
    }
    let full: IssuerCapabilities = [.updateInPlace, .inventory, .idempotencyLookup, .overlap]
    return [
        "local": issuer("local", "builtin", full),
        "strict": issuer("strict", "builtin", full, ghosts: .retire),
        "ext": issuer("ext", "exec", []),
        "pg": issuer("pg", "postgres", full.union(.secretFormats)),
    ]
}()

func manifests(_ tokens: [Token]) -> ManifestSet { ManifestSet(tokens: tokens, issuers: fixtureIssuers) }

func state(_ tokens: [RecordedToken], serial: Int64 = 7) -> RecordedState {
    RecordedState(serial: serial, tokens: Dictionary(tokens.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first }))
}

/// An observed credential at an issuer.
func observed(_ issuer: String, _ id: String, hint: String = "tkc_…0000", revoked: Bool = false) -> ObservedCredential {
    ObservedCredential(issuer: issuer, credentialID: id, hint: hint, revoked: revoked)
}

/// Plans `desired` against `recorded` at the fixed clock.
func plan(_ desired: [Token], _ recorded: [RecordedToken] = [], observed: Observation? = nil, at moment: Timestamp = now) -> Plan {
    Planner.plan(desired: manifests(desired), recorded: state(recorded), observed: observed, now: moment)
}

/// A change reduced to what the tables compare: action, token id and reason.
struct Row: Hashable, Sendable, CustomStringConvertible {
    var action: PlanAction
    var token: String?
    var reason: PlanReason

    init(_ action: PlanAction, _ token: String?, _ reason: PlanReason) {
        self.action = action
        self.token = token
        self.reason = reason
    }

    var description: String { "\(action.rawValue) \(token ?? "-") \(reason.rawValue)" }
}

func rows(_ plan: Plan) -> [Row] { plan.changes.map { Row($0.action, $0.token?.description, $0.reason) } }

/// How much earlier than issuedAt+every the schedule puts a token's rotation (the hash spread, no window).
func spreadEarlier(_ id: String, every: String) -> Int64 {
    Int64(Schedule.spreadHash(tid(id)) % UInt64(max(1, duration(every).seconds / 20)))
}

/// The issue moment that makes token `id` (interval `every`, no window) fall due exactly `past` before `now`.
func issuedDue(_ id: String, every: String, since past: String) -> Timestamp {
    Timestamp(secondsSinceEpoch: now.secondsSinceEpoch - duration(every).seconds + spreadEarlier(id, every: every) - duration(past).seconds)
}
