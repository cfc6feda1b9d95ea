import Foundation
import TokenctlDrivers
import TokenctlModel
import TokenctlPlanner
import TokenctlState

/// The changes that act on a recorded version: update in place, redeliver, undeliver and retire.
extension Engine {
    // MARK: Update and redeliver

    func update(_ change: PlannedChange, tokens: TokensByID, state: inout RecordedState) async throws(StateError) -> ChangeOutcome {
        guard let id = change.token, let token = tokens[id], var record = state.tokens[id],
              let index = record.versions.lastIndex(where: { $0.status == .active }) else {
            return try await alone(ChangeOutcome(change: change, failure: .nothingToChange(.update)), state: state)
        }
        guard let issuer = drivers.issuers[token.issuer] else {
            return try await alone(ChangeOutcome(change: change, failure: .issuerUnavailable(issuer: token.issuer, detail: nil)), state: state)
        }
        do {
            try await issuer.update(credentialID: record.versions[index].credentialID, scopes: token.scopes)
        } catch {
            return try await alone(ChangeOutcome(change: change, failure: .issuerFailed(issuer: token.issuer, detail: SafeError.describe(error))),
                                   state: state)
        }
        record.versions[index].scopes = token.scopes
        state.tokens[id] = record
        let outcome = ChangeOutcome(change: change, failure: nil)
        try await commit([.upsert(record)], completing: [outcome], state: &state)
        return outcome
    }

    func redeliver(_ change: PlannedChange, state: inout RecordedState, now: Timestamp) async throws(StateError) -> ChangeOutcome {
        guard let id = change.token, var record = state.tokens[id],
              let index = record.versions.lastIndex(where: { $0.status == .active }) else {
            return try await alone(ChangeOutcome(change: change, failure: .nothingToChange(.redeliver)), state: state)
        }
        let current = record.versions[index]
        // The secret is only in stores (or with an issuer that replays it); a replay that fails counts as lost here.
        guard let secret = try? await recoverSecret(current, issuer: drivers.issuers[record.issuer]) else {
            return try await alone(ChangeOutcome(change: change, failure: .secretLost(version: current.version)), state: state)
        }
        for key in change.stores {
            guard let store = drivers.stores[key.store] else {
                return try await alone(ChangeOutcome(change: change, failure: .storeUnavailable(store: key.store)), state: state)
            }
            do {
                let fingerprints = try await store.write(puts: [key.key: secret], removes: [])
                record.versions[index].deliveries.removeAll { $0.store == key.store && $0.key == key.key }
                record.versions[index].deliveries.append(DeliveryRecord(store: key.store, key: key.key,
                                                                        contentFingerprint: fingerprints[key.key] ?? "", deliveredAt: now))
            } catch {
                return try await alone(ChangeOutcome(change: change, failure: .storeFailed(store: key.store, detail: "\(error)")), state: state)
            }
        }
        state.tokens[id] = record
        let outcome = ChangeOutcome(change: change, failure: nil)
        try await commit([.upsert(record)], completing: [outcome], state: &state)
        return outcome
    }

    /// Removes the current credential from stores no longer in `deliverTo`, where a key still holds it (not what
    /// something else wrote there since). A store that fails keeps its delivery recorded, so the next run tries again.
    func undeliver(_ change: PlannedChange, state: inout RecordedState) async throws(StateError) -> ChangeOutcome {
        guard let id = change.token, var record = state.tokens[id],
              let index = record.versions.lastIndex(where: { $0.status == .active }) else {
            return try await alone(ChangeOutcome(change: change, failure: .nothingToChange(.undeliver)), state: state)
        }
        for key in change.stores {
            let recorded = record.versions[index].deliveries.first { $0.store == key.store && $0.key == key.key }?.contentFingerprint
            // A store no longer in the manifests cannot be opened, so what it holds stays there (as for a retirement);
            // the delivery is forgotten either way.
            if let recorded, let store = drivers.stores[key.store] {
                do {
                    // A write-only store cannot be asked what the key holds: the records say whether another token delivers there.
                    let stillOurs: Bool
                    if let readable = store as? any ReadableSecretStore {
                        stillOurs = try await readable.fingerprint(key: key.key) == recorded
                    } else {
                        stillOurs = !Self.anotherTokenDelivers(to: key, besides: id, state: state)
                    }
                    if stillOurs { _ = try await store.write(puts: [:], removes: [key.key]) }
                } catch {
                    return try await alone(ChangeOutcome(change: change, failure: .undeliveryFailed(store: key.store, detail: "\(error)")),
                                           state: state)
                }
            }
            record.versions[index].deliveries.removeAll { $0.store == key.store && $0.key == key.key }
        }
        state.tokens[id] = record
        let outcome = ChangeOutcome(change: change, failure: nil)
        try await commit([.upsert(record)], completing: [outcome], state: &state)
        return outcome
    }

    // MARK: Retire

    /// Retires versions and ghosts. `managed` are the tokens of the manifests: a token outside them is forgotten once
    /// every version is revoked.
    func retire(_ changes: [PlannedChange], managed: TokensByID, state: inout RecordedState,
                        now: Timestamp) async throws(StateError) -> [ChangeOutcome] {
        guard !changes.isEmpty else { return [] }
        var failures: [Int: ChangeFailure] = [:]
        // Revoke at the issuers, in one call per issuer.
        var byIssuer: [String: [(Int, String)]] = [:]
        for (offset, change) in changes.enumerated() {
            if change.followsRotation == true, let id = change.token,
               state.tokens[id]?.versions.first(where: { $0.version == change.version })?.status == .active {
                failures[offset] = .rotationIncomplete(version: change.version ?? 0)
                continue
            }
            if let ghost = change.ghost {
                byIssuer[change.issuer, default: []].append((offset, ghost.credentialID))
            } else if let id = change.token, let version = state.tokens[id]?.versions.first(where: { $0.version == change.version }),
                      !version.credentialID.isEmpty {
                byIssuer[change.issuer, default: []].append((offset, version.credentialID))
            }
        }
        for (issuerName, items) in byIssuer {
            guard let issuer = drivers.issuers[issuerName] else {
                for (offset, _) in items { failures[offset] = .issuerUnavailable(issuer: issuerName, detail: nil) }
                continue
            }
            do {
                try await issuer.revoke(items.map(\.1), now: now)
            } catch {
                for (offset, _) in items { failures[offset] = .issuerFailed(issuer: issuerName, detail: SafeError.describe(error)) }
            }
        }
        logger.debug("revoked", metadata: ["count": "\(byIssuer.values.map(\.count).reduce(0, +))"])
        await checkpoint("after-revoke")
        // Remove from stores what still holds a retired version: only keys whose content is still that version's (not a
        // key its successor, or another token, has written since).
        var candidates: [String: [String: String]] = [:]  // store → key → the retired version's content fingerprint
        var retiredAt: [String: [Int]] = [:]  // store → the changes whose version it holds
        for (offset, change) in changes.enumerated() where failures[offset] == nil && change.ghost == nil {
            guard let id = change.token, let record = state.tokens[id],
                  let version = record.versions.first(where: { $0.version == change.version }) else { continue }
            for delivery in version.deliveries {
                candidates[delivery.store, default: [:]][delivery.key] = delivery.contentFingerprint
                retiredAt[delivery.store, default: []].append(offset)
            }
        }
        for (storeName, recorded) in candidates {
            // A store that cannot be cleaned leaves its changes unfinished: the version stays recorded (revoked at the
            // issuer already), and the next run revokes again, which changes nothing, and cleans the store.
            func fail(_ detail: String) {
                for offset in retiredAt[storeName] ?? [] {
                    failures[offset] = .storeNotCleaned(store: storeName, detail: detail)
                }
            }
            // A store no longer in the manifests cannot be opened; what it holds is revoked, so it is left as it is.
            guard let store = drivers.stores[storeName] else { continue }
            do {
                let removes: [String]
                if let readable = store as? any ReadableSecretStore {
                    let held = try await readable.fingerprints(keys: Array(recorded.keys))
                    removes = recorded.filter { key, fingerprint in held[key] == fingerprint }.map(\.key)
                } else {
                    // A write-only store cannot be read: a key is removed unless a version that stays is recorded there.
                    let kept = Self.liveDeliveries(in: storeName, state: state, except: changes, failures: failures)
                    removes = recorded.keys.filter { !kept.contains($0) }
                }
                if !removes.isEmpty { _ = try await store.write(puts: [:], removes: removes) }
            } catch {
                fail("\(error)")
            }
        }
        // The retired tokens' records as they were, for the audit entries: a copy of the whole state here would make the
        // first write below copy every record of the table (a compromised mass rotation retires every token).
        var beforeWrites = RecordedState(serial: state.serial)
        for change in changes {
            if let id = change.token, let record = state.tokens[id] { beforeWrites.tokens[id] = record }
        }
        var writes: [StateWrite] = []
        var touched = Set<TokenID>()
        for (offset, change) in changes.enumerated() where failures[offset] == nil {
            guard let id = change.token, var record = state.tokens[id],
                  let index = record.versions.firstIndex(where: { $0.version == change.version }) else { continue }
            record.versions[index].status = .revoked
            record.versions[index].retireAfter = nil
            state.tokens[id] = record
            touched.insert(id)
        }
        for id in touched.sorted() {
            guard let record = state.tokens[id] else { continue }
            if !managed.contains(id) && record.versions.allSatisfy({ $0.status == .revoked }) {
                state.tokens[id] = nil
                writes.append(.delete(id))
            } else {
                writes.append(.upsert(record))
            }
        }
        let outcomes = changes.enumerated().map { ChangeOutcome(change: $1, failure: failures[$0]) }
        if writes.isEmpty {
            try await auditor?.append(auditor?.entries(outcomes, state: beforeWrites) ?? [])
        } else {
            try await commit(writes, completing: outcomes, auditedAgainst: beforeWrites, state: &state)
        }
        return outcomes
    }

    /// The keys of a store that versions other than those being retired are recorded as delivered to.
    static func liveDeliveries(in store: String, state: RecordedState, except changes: [PlannedChange],
                               failures: [Int: ChangeFailure]) -> Set<String> {
        var retiring: Set<String> = []
        for (offset, change) in changes.enumerated() where failures[offset] == nil {
            if let id = change.token, let version = change.version { retiring.insert("\(id)#\(version)") }
        }
        var keys: Set<String> = []
        for (id, record) in state.tokens {
            for version in record.versions where version.status != .revoked && !retiring.contains("\(id)#\(version.version)") {
                for delivery in version.deliveries where delivery.store == store { keys.insert(delivery.key) }
            }
        }
        return keys
    }

    /// Whether a live version of a token other than `token` is recorded as delivered to `key`.
    static func anotherTokenDelivers(to key: StoreKey, besides token: TokenID, state: RecordedState) -> Bool {
        state.tokens.contains { id, record in
            id != token && record.versions.contains { version in
                version.status != .revoked && version.deliveries.contains { $0.store == key.store && $0.key == key.key }
            }
        }
    }
}
