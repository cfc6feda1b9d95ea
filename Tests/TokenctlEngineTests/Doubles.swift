import Foundation
import Synchronization
import TestSupport
import TokenctlDrivers
import TokenctlEngine
import TokenctlModel
import TokenctlPlanner
import TokenctlSQLite
import TokenctlStores

// In-process doubles for the engine's drivers, with a failure switch at each step, and small builders of desired state.

/// An issuer held in memory: credentials by id, with idempotency keys; each operation can be made to fail.
final class MemoryIssuer: CredentialIssuer, Sendable {
    struct Credential: Sendable {
        var idempotencyKey: String?
        var revoked = false
    }

    struct Failures: Sendable {
        var issue = false
        var revoke = false
    }

    let credentials = Mutex<[String: Credential]>([:])
    /// Secrets by idempotency key, for `ReplayingIssuer`.
    let secrets = Mutex<[String: Secret]>([:])
    let failures = Mutex(Failures())
    private let counter = Mutex(0)

    struct Refused: Error, SafeToPrint {
        var description: String
    }

    func issue(_ requests: [IssueRequest], now: Timestamp) async throws -> [IssuedCredential] {
        if failures.withLock({ $0.issue }) { throw Refused(description: "the issuer refused (injected)") }
        return requests.map { request in
            // As real issuers do: a used idempotency key gives the earlier credential back, without its secret.
            if let key = request.idempotencyKey, let earlier = credentials.withLock({ $0.first { $0.value.idempotencyKey == key }?.key }) {
                return IssuedCredential(credentialID: earlier, secret: nil, fingerprint: "", hint: "")
            }
            let number = counter.withLock { $0 += 1; return $0 }
            let id = "cred-\(number)"
            let secret = Secret("secret-\(number)-\(UUID().uuidString)")
            credentials.withLock { $0[id] = Credential(idempotencyKey: request.idempotencyKey) }
            if let key = request.idempotencyKey { secrets.withLock { $0[key] = secret } }
            return IssuedCredential(credentialID: id, secret: secret, fingerprint: "fp-\(number)", hint: "…\(number)")
        }
    }

    func revoke(_ credentialIDs: [String], now: Timestamp) async throws {
        if failures.withLock({ $0.revoke }) { throw Refused(description: "revocation refused (injected)") }
        credentials.withLock { credentials in
            for id in credentialIDs { credentials[id]?.revoked = true }
        }
    }

    func update(credentialID: String, scopes: [String]) async throws {}

    func list() async throws -> [ObservedCredential] {
        credentials.withLock { $0.map { ObservedCredential(issuer: "mem", credentialID: $0.key, hint: "", revoked: $0.value.revoked) } }
    }

    func credential(forIdempotencyKey key: String) async throws -> String? {
        credentials.withLock { $0.first { $0.value.idempotencyKey == key }?.key }
    }

    var valid: Set<String> { credentials.withLock { Set($0.filter { !$0.value.revoked }.keys) } }
}

/// A store held in memory; writes can be made to fail.
final class MemoryStore: ReadableSecretStore, Sendable {
    let entries = Mutex<[String: String]>([:])
    let failing = Mutex(false)

    struct Broken: Error, CustomStringConvertible {
        var description: String { "the store is unavailable (injected)" }
    }

    func write(puts: [String: Secret], removes: [String]) async throws(StoreError) -> [String: String] {
        if failing.withLock({ $0 }) { throw .io(path: "memory", detail: "injected failure") }
        return entries.withLock { entries in
            for key in removes { entries[key] = nil }
            var fingerprints: [String: String] = [:]
            for (key, secret) in puts {
                entries[key] = secret.withRevealed { $0 }
                fingerprints[key] = contentFingerprint(key: key, secret: secret)
            }
            return fingerprints
        }
    }

    func fingerprint(key: String) async throws(StoreError) -> String? {
        if failing.withLock({ $0 }) { throw .io(path: "memory", detail: "injected failure") }
        return entries.withLock { $0[key] }.map { contentFingerprint(key: key, secret: Secret($0)) }
    }

    func read(key: String) async throws(StoreError) -> Secret? {
        if failing.withLock({ $0 }) { throw .io(path: "memory", detail: "injected failure") }
        return entries.withLock { $0[key] }.map(Secret.init)
    }

    var keys: Set<String> { entries.withLock { Set($0.keys) } }
}

/// One test's world: the `mem` issuer, stores `a` and `b`, SQLite state in a scratch directory, and a clock.
struct World {
    let issuer: MemoryIssuer
    let a: MemoryStore
    let b: MemoryStore
    let state: SQLiteStateStore
    static let t0 = Timestamp(secondsSinceEpoch: 1_796_040_000)  // 2026-11-30T12:00:00Z

    init() throws {
        self.init(issuer: MemoryIssuer(), a: MemoryStore(), b: MemoryStore(),
                  state: try SQLiteStateStore(directory: Scratch.directory("engine"), mode: .readWrite))
    }

    init(issuer: MemoryIssuer, a: MemoryStore, b: MemoryStore, state: SQLiteStateStore) {
        self.issuer = issuer
        self.a = a
        self.b = b
        self.state = state
    }

    var engine: Engine {
        Engine(drivers: Drivers(issuers: ["mem": issuer], stores: ["a": a, "b": b], state: state))
    }

    static let location = SourceLocation(file: "t.yaml", line: 1, column: 1)

    /// A token of the `mem` issuer delivered to `stores`, living 90 days, rotated every 30.
    static func token(_ name: String, overlap: Int64 = 86_400, stores: [String] = ["a", "b"]) -> Token {
        let id = TokenID(namespace: "apps", name: name)
        return Token(id: id, owner: "team", metadata: ResourceMetadata(name: name, location: location), issuer: "mem", scopes: ["read"],
                     lifespan: .finite(TokenDuration(seconds: 90 * 86_400)),
                     rotation: Token.Rotation(every: TokenDuration(seconds: 30 * 86_400), overlap: TokenDuration(seconds: overlap)),
                     deliverTo: stores.map { Token.Delivery(store: $0, key: "apps/\(name)", location: location) }, exception: nil,
                     locations: Token.Locations(issuer: location, lifespan: location, rotationEvery: location, scopes: [location], owner: location))
    }

    static func manifests(_ tokens: [Token]) -> ManifestSet {
        ManifestSet(tokens: tokens, issuers: ["mem": MemoryIssuerKind.issuer("mem", location: location)])
    }

    /// Plans `tokens` at `t0 + seconds` and applies exactly that plan; returns the plan and the report.
    func reconcile(_ tokens: [Token], at seconds: Int64) async throws -> (Plan, ApplyReport) {
        let now = Timestamp(secondsSinceEpoch: Self.t0.secondsSinceEpoch + seconds)
        var recorded = try await state.load()
        // As every apply does: settle what an earlier run left pending before planning.
        if recorded.tokens.values.contains(where: { $0.versions.contains { $0.status == .pending } }) {
            _ = try await engine.repair(state: recorded, now: now)
            recorded = try await state.load()
        }
        let plan = Planner.plan(desired: Self.manifests(tokens), recorded: recorded, observed: nil, now: now)
        return (plan, try await engine.apply(plan, desired: Self.manifests(tokens), state: recorded, now: now))
    }

    func apply(_ plan: Plan, _ tokens: [Token], at seconds: Int64) async throws -> ApplyReport {
        let now = Timestamp(secondsSinceEpoch: Self.t0.secondsSinceEpoch + seconds)
        return try await engine.apply(plan, desired: Self.manifests(tokens), state: try await state.load(), now: now)
    }

    func versions(_ name: String) async throws -> [CredentialVersion] {
        try await state.load().tokens[TokenID(namespace: "apps", name: name)]?.versions ?? []
    }
}

extension Timestamp {
    static func at(_ seconds: Int64) -> Timestamp { Timestamp(secondsSinceEpoch: World.t0.secondsSinceEpoch + seconds) }
}
