import TokenctlDrivers
import TokenctlModel
import TokenctlState

/// Lost state, detected and rebuilt: an empty state is never a fresh start while issuers and stores show earlier work.
///
/// ```swift
/// if recorded.tokens.isEmpty, let signs = await StateRecovery.signsOfEarlierWork(desired: manifests, drivers: drivers, now: now) {
///     print(signs)  // refuse; `tokenctl state rebuild` reconstructs the state
/// }
/// let rebuilt = await StateRecovery.rebuild(desired: manifests, drivers: drivers, now: now)
/// ```
package enum StateRecovery {
    /// How many delivery keys per store are probed for leftover secrets.
    static let probedKeysPerStore = 64

    /// What shows that tokens of `desired` were issued before, or nil when nothing does: live credentials that an
    /// issuer recorded for these tokens, or secrets that stores hold under their keys.
    package static func signsOfEarlierWork(desired: ManifestSet, drivers: Drivers, now: Timestamp) async -> String? {
        let wanted = Set(desired.tokens.map(\.id))
        var signs: [String] = []
        for name in Set(desired.tokens.map(\.issuer)).sorted() {
            guard let issuer = drivers.issuers[name] as? any RebuildableIssuer,
                  let records = try? await issuer.issuedRecords() else { continue }
            let live = records.filter { record in
                guard !record.revoked, record.expiresAt.map({ $0 > now }) ?? true, let issued = record.issuedFor else { return false }
                return wanted.contains(issued.token)
            }
            if !live.isEmpty { signs.append("issuer '\(name)' holds \(counted(live.count, "live credential")) issued for these tokens") }
        }
        var keysByStore: [String: [String]] = [:]
        for token in desired.tokens {
            for delivery in token.deliverTo where (keysByStore[delivery.store]?.count ?? 0) < probedKeysPerStore {
                keysByStore[delivery.store, default: []].append(delivery.key)
            }
        }
        for (name, keys) in keysByStore.sorted(by: { $0.key < $1.key }) {
            guard let store = drivers.stores[name] as? any ReadableSecretStore, let held = try? await store.read(keys: keys),
                  !held.isEmpty else { continue }
            signs.append("store '\(name)' holds secrets under \(held.count) of the \(keys.count) keys checked")
        }
        return signs.isEmpty ? nil : signs.joined(separator: "; ")
    }

    /// State reconstructed from what issuers recorded and what stores hold.
    package struct Rebuilt: Sendable {
        /// The tokens, each with its live credential versions and the deliveries that hold them.
        package var tokens: [RecordedToken] = []
        /// What could not be rebuilt, and what the operator should know about it.
        package var notes: [String] = []
    }

    /// Rebuilds the records of the tokens in `desired` from their issuers' records (the idempotency key names each
    /// credential's token and version) and from the stores (a secret whose fingerprint matches a credential
    /// counts as delivered). Revoked and expired credentials are left out; the newest live version a store holds is
    /// active, older live ones retire when the token's overlap after it ends, newer ones (never delivered) at once.
    package static func rebuild(desired: ManifestSet, drivers: Drivers, now: Timestamp) async -> Rebuilt {
        var rebuilt = Rebuilt()
        // Each store is read once for every key the manifests deliver to (an encrypted file is decrypted once, not per key).
        var keysByStore: [String: [String]] = [:]
        for token in desired.tokens { for delivery in token.deliverTo { keysByStore[delivery.store, default: []].append(delivery.key) } }
        var held: [String: [String: Secret]] = [:]
        for (name, keys) in keysByStore {
            guard let store = drivers.stores[name] else { continue }
            guard let readable = store as? any ReadableSecretStore else {
                rebuilt.notes.append("store '\(name)' is write-only, so what it holds cannot be matched to credentials; its deliveries are "
                                     + "not rebuilt, the next apply makes them again")
                continue
            }
            do {
                held[name] = try await readable.read(keys: keys)
            } catch {
                rebuilt.notes.append("store '\(name)' could not be read (\(error)); its deliveries are not rebuilt, the next apply makes them again")
            }
        }
        let tokensByIssuer = Dictionary(grouping: desired.tokens, by: \.issuer)
        for (name, tokens) in tokensByIssuer.sorted(by: { $0.key < $1.key }) {
            guard let issuer = drivers.issuers[name] as? any RebuildableIssuer else {
                rebuilt.notes.append("issuer '\(name)' cannot tell which token a credential was issued for, so its \(tokens.count) "
                    + "token\(tokens.count == 1 ? " is" : "s are") not rebuilt: apply --start-from-empty-state issues them again, and "
                    + "plan --refresh lists the old credentials as ghosts")
                continue
            }
            let records: [IssuedRecord]
            do {
                records = try await issuer.issuedRecords()
            } catch {
                rebuilt.notes.append("issuer '\(name)' could not be read (\(SafeError.describe(error))); its tokens are not rebuilt")
                continue
            }
            var byToken: [TokenID: [(version: Int, record: IssuedRecord)]] = [:]
            var unclaimed = 0
            let wanted = Set(tokens.map(\.id))
            for record in records where !record.revoked && (record.expiresAt.map { $0 > now } ?? true) {
                guard let issued = record.issuedFor, wanted.contains(issued.token) else {
                    unclaimed += 1
                    continue
                }
                byToken[issued.token, default: []].append((issued.version, record))
            }
            if unclaimed > 0 {
                rebuilt.notes.append("\(counted(unclaimed, "live credential")) at issuer '\(name)' belong\(unclaimed == 1 ? "s" : "") "
                    + "to no token of these manifests; plan --refresh lists them as ghosts")
            }
            for token in tokens {
                guard let found = byToken[token.id], !found.isEmpty else { continue }
                rebuilt.tokens.append(record(token, found, issuer: issuer, held: held, now: now))
            }
        }
        rebuilt.tokens.sort { $0.id < $1.id }
        return rebuilt
    }

    private static func record(_ token: Token, _ found: [(version: Int, record: IssuedRecord)], issuer: any RebuildableIssuer,
                               held: [String: [String: Secret]], now: Timestamp) -> RecordedToken {
        // One credential per version: a repaired crash may have issued a version twice; the later one is what stores got.
        var byVersion: [Int: IssuedRecord] = [:]
        for (version, record) in found where byVersion[version].map({ record.issuedAt >= $0.issuedAt }) ?? true {
            byVersion[version] = record
        }
        let ordered = byVersion.keys.sorted()
        var versions: [CredentialVersion] = []
        for version in ordered {
            guard let record = byVersion[version] else { continue }
            versions.append(CredentialVersion(
                version: version, credentialID: record.credentialID, fingerprint: record.fingerprint, scopes: record.scopes,
                issuedAt: record.issuedAt, expiresAt: record.expiresAt, status: .active, intentKey: record.idempotencyKey))
        }
        let fingerprints = Dictionary(versions.enumerated().map { ($1.fingerprint, $0) }, uniquingKeysWith: { first, _ in first })
        for delivery in token.deliverTo {
            guard let secret = held[delivery.store]?[delivery.key],
                  let index = fingerprints[issuer.fingerprint(of: secret)] else { continue }
            versions[index].deliveries.append(DeliveryRecord(store: delivery.store, key: delivery.key,
                                                             contentFingerprint: contentFingerprint(key: delivery.key, secret: secret),
                                                             deliveredAt: versions[index].issuedAt))
        }
        // The newest version a store holds is the one in use; newer ones never reached a store (an interrupted issue)
        // and retire at once, older ones when the overlap after the active one ends.
        let active = versions.lastIndex { !$0.deliveries.isEmpty } ?? versions.count - 1
        for index in versions.indices where index != active {
            versions[index].status = .retiring
            versions[index].retireAfter = index > active ? now : versions[active].issuedAt + token.rotation.overlap
        }
        return RecordedToken(id: token.id, issuer: token.issuer, owner: token.owner, lifespan: token.lifespan,
                             rotationEvery: token.effectiveRotationEvery, overlap: token.rotation.overlap, window: token.rotation.window?.text,
                             versions: versions)
    }
}
