import Logging
import TokenctlDrivers
import TokenctlModel
import TokenctlPlanner
import TokenctlState

/// What one change came to.
package struct ChangeOutcome: Sendable, Hashable {
    /// The change.
    package var change: PlannedChange
    /// Nil when it succeeded; else what failed.
    package var failure: ChangeFailure?
}

/// The result of an apply.
package struct ApplyReport: Sendable {
    /// Every change tried, in plan order.
    package var outcomes: [ChangeOutcome] = []
    /// The state serial after the apply.
    package var serial: Int64 = 0

    /// The changes that failed.
    package var failures: [ChangeOutcome] { outcomes.filter { $0.failure != nil } }
}

/// The drivers an apply works through: issuers and stores by manifest name, and the state.
package struct Drivers: Sendable {
    /// Issuers by name.
    package var issuers: [String: any CredentialIssuer]
    /// Stores by name.
    package var stores: [String: any SecretStore]
    /// The state.
    package var state: any StateStore
    /// Why an issuer named in the manifests has no driver (its changes fail with this message).
    package var unavailableIssuers: [String: String] = [:]

    /// Creates a driver set.
    package init(issuers: [String: any CredentialIssuer], stores: [String: any SecretStore], state: any StateStore) {
        self.issuers = issuers
        self.stores = stores
        self.state = state
    }
}

/// Carries a plan out, crash-safely: every issuer call is preceded by a durable intent, secrets are
/// delivered before the new version is recorded active, and unfinished intents are repaired first.
///
/// ```swift
/// let engine = Engine(drivers: drivers, checkpoint: { _ in })
/// let notes = try await engine.repair(state: state, now: now)    // after a crash, before planning
/// let report = try await engine.apply(plan, desired: manifests, state: state, now: now)
/// ```
package struct Engine: Sendable {
    /// The drivers.
    package let drivers: Drivers
    /// Called at named points of an apply; the fault-injection switch of the crash tests hooks in here (a process is
    /// killed there, or an in-process test's apply suspends there for good).
    package let checkpoint: @Sendable (String) async -> Void
    /// Where the engine says what it does (never secrets: they print as `(sensitive)`).
    package let logger: Logger
    /// How many tokens are issued, delivered and recorded per batch (one state write and one store write per step).
    package var batchSize = 4_000
    /// Records each change's audit entry with the state write that completes it; nil records none.
    package let auditor: ChangeAuditor?
    /// Told the outcomes of each step as it completes (a batch of issues, an update, the retirements), for progress.
    package var onOutcomes: (@Sendable ([ChangeOutcome]) -> Void)?

    /// Creates an engine.
    package init(drivers: Drivers, logger: Logger = Logger(label: "tokenctl.engine"), auditor: ChangeAuditor? = nil,
                checkpoint: @escaping @Sendable (String) async -> Void = { _ in }) {
        self.drivers = drivers
        self.logger = logger
        self.auditor = auditor
        self.checkpoint = checkpoint
    }

    /// One state write that also records the audit entries of the changes it completes (in the same transaction).
    func commit(_ writes: [StateWrite], completing outcomes: [ChangeOutcome], auditedAgainst audited: RecordedState? = nil,
                        state: inout RecordedState) async throws(StateError) {
        guard let auditor, !outcomes.isEmpty else {
            state.serial = try await drivers.state.write(writes, expectedSerial: state.serial)
            return
        }
        state.serial = try await auditor.write(writes, to: drivers.state, expectedSerial: state.serial,
                                               audit: auditor.entries(outcomes, state: audited ?? state))
    }

    /// The outcome of a change that ends without a state write, recorded in the audit log on its own.
    func alone(_ outcome: ChangeOutcome, state: RecordedState) async throws(StateError) -> ChangeOutcome {
        try await auditor?.append(auditor?.entries([outcome], state: state) ?? [])
        return outcome
    }

    private func announced(_ outcomes: [ChangeOutcome]) -> [ChangeOutcome] {
        if !outcomes.isEmpty { onOutcomes?(outcomes) }
        return outcomes
    }

    /// The points at which `checkpoint` is called.
    package static let checkpoints = ["after-intent", "after-issue", "after-record-issue", "after-deliver", "after-record", "after-revoke"]

    /// Applies `plan`, made from `desired` against `state` (the current, repaired state), and returns what happened.
    ///
    /// The engine works on `state` itself: a caller that passes its only copy (`consume`) lets each changed record replace
    /// the old one in place, where a caller that keeps its own copy holds every old record alive for the whole apply.
    package func apply(_ plan: Plan, desired: ManifestSet, state: consuming RecordedState, now: Timestamp) async throws(StateError) -> ApplyReport {
        try await apply(plan, desired: TokensByID(desired.tokens), state: consume state, now: now)
    }

    /// Applies `plan` with the desired tokens already indexed (the caller's auditor shares the index).
    package func apply(_ plan: Plan, desired tokensByID: TokensByID, state: consuming RecordedState,
                       now: Timestamp) async throws(StateError) -> ApplyReport {
        var report = ApplyReport()
        report.outcomes.reserveCapacity(plan.changes.count)

        // A token whose earlier issue is still unresolved (repair could not ask its issuer) gets no new version:
        // versions would pile up while the issuer is unreachable. The next run's repair settles it first.
        let unresolved = plan.changes.filter { change in
            (change.action == .issue || change.action == .rotate)
                && change.token.flatMap { state.tokens[$0] }?.versions.contains { $0.status == .pending } == true
        }
        let held = unresolved.map { change in
            ChangeOutcome(change: change, failure: .earlierIssueUnresolved)
        }
        try await auditor?.append(auditor?.entries(held, state: state) ?? [])
        report.outcomes += announced(held)
        let unresolvedKeys = Set(unresolved)
        let issues = plan.changes.indices.filter { index in
            let change = plan.changes[index]
            return (change.action == .issue || change.action == .rotate) && !unresolvedKeys.contains(change)
        }
        // Room for every new token at once: growing a table of 100,000 records step by step holds two copies at each step.
        // Rotations add no record, so only issues of tokens the state does not hold yet count.
        let newTokens = issues.count(where: { index in plan.changes[index].token.map { state.tokens[$0] == nil } ?? false })
        state.tokens.reserveCapacity(state.tokens.count + newTokens)
        for start in stride(from: 0, to: issues.count, by: batchSize) {
            let batch = issues[start..<min(issues.count, start + batchSize)].map { plan.changes[$0] }
            report.outcomes += announced(try await issueBatch(batch, tokens: tokensByID, state: &state, now: now))
        }
        for change in plan.changes where change.action == .update {
            report.outcomes += announced([try await update(change, tokens: tokensByID, state: &state)])
        }
        var redeliveryFailed: Set<TokenID> = []
        for change in plan.changes where change.action == .redeliver {
            let outcome = try await redeliver(change, state: &state, now: now)
            if outcome.failure != nil, let id = change.token { redeliveryFailed.insert(id) }
            report.outcomes += announced([outcome])
        }
        for change in plan.changes where change.action == .undeliver {
            // A token moving to a new store or key keeps the old one until the new one holds its secret.
            if let id = change.token, redeliveryFailed.contains(id) {
                let skipped = ChangeOutcome(change: change, failure: .redeliveryIncomplete(version: change.version ?? 0))
                try await auditor?.append(auditor?.entries([skipped], state: state) ?? [])
                report.outcomes += announced([skipped])
                continue
            }
            report.outcomes += announced([try await undeliver(change, state: &state)])
        }
        // Retirements last: a version replaced without overlap goes only once its successor is active.
        let retires = plan.changes.filter { $0.action == .retire || ($0.action == .ghost && $0.retireGhost) }
        report.outcomes += announced(try await retire(retires, managed: tokensByID, state: &state, now: now))
        report.serial = state.serial
        return report
    }

    // MARK: Issue and rotate

    private func issueBatch(_ changes: [PlannedChange], tokens: TokensByID, state: inout RecordedState,
                            now: Timestamp) async throws(StateError) -> [ChangeOutcome] {
        var outcomes: [TokenID: ChangeFailure] = [:]  // failures by token
        var pending: [PendingIssue] = []
        var requests: [IssueRequest] = []  // the issuer call of each pending issue, with its intent's idempotency key
        pending.reserveCapacity(changes.count)
        requests.reserveCapacity(changes.count)
        var writes: [StateWrite] = []
        for change in changes {
            guard let id = change.token, let token = tokens[id], let version = change.newVersion else { continue }
            var record = state.tokens[id] ?? RecordedToken(id: id, issuer: token.issuer, owner: token.owner, lifespan: token.lifespan,
                                                          rotationEvery: token.effectiveRotationEvery, versions: [])
            record.issuer = token.issuer
            record.owner = token.owner
            record.lifespan = token.lifespan
            record.rotationEvery = token.effectiveRotationEvery
            record.overlap = token.rotation.overlap
            record.window = token.rotation.window?.text
            // Where the secret will go is part of the intent (content fingerprints unknown yet): repair can then finish the
            // delivery of a secret an issuer replays, without the manifests.
            let destinations = token.deliverTo.map { DeliveryRecord(store: $0.store, key: $0.key, contentFingerprint: "", deliveredAt: now) }
            let intentKey = Self.intentKey(id, version)
            let expiresAt = token.lifespan.duration.map { now + $0 }
            record.versions.append(CredentialVersion(
                version: version, credentialID: "", fingerprint: "", scopes: token.scopes, issuedAt: now,
                expiresAt: expiresAt, status: .pending, deliveries: destinations, intentKey: intentKey))
            state.tokens[id] = record
            writes.append(.upsert(record))
            pending.append(PendingIssue(id: id, version: version, issuer: token.issuer, deliverTo: token.deliverTo, overlap: token.rotation.overlap))
            requests.append(IssueRequest(issuer: token.issuer, owner: token.owner, subject: id.description, scopes: token.scopes,
                                         expiresAt: expiresAt, idempotencyKey: intentKey, version: version, secretFormat: token.secretFormat))
        }
        guard !pending.isEmpty else { return [] }
        state.serial = try await drivers.state.write(writes, expectedSerial: state.serial)
        logger.debug("recorded issue intents", metadata: ["count": "\(pending.count)", "serial": "\(state.serial)"])
        await checkpoint("after-intent")

        // Issue, per issuer.
        var issued: [TokenID: IssuedCredential] = [:]
        // Tokens whose issuer call failed: the issuer may or may not have made the credential (a lost connection
        // hides which), so their intents stay pending and the next run's repair asks by idempotency key.
        var failedCalls: Set<TokenID> = []
        for (issuerName, group) in Dictionary(grouping: pending.indices, by: { pending[$0].issuer }) {
            guard let issuer = drivers.issuers[issuerName] else {
                let failure = ChangeFailure.issuerUnavailable(issuer: issuerName, detail: drivers.unavailableIssuers[issuerName])
                for position in group { outcomes[pending[position].id] = failure }
                continue
            }
            for (position, result) in zip(group, await issuer.issueEach(group.map { requests[$0] }, now: now)) {
                let item = pending[position]
                switch result {
                case .success(let credential):
                    issued[item.id] = credential
                    logger.debug("issued", metadata: ["token": "\(item.id)", "version": "\(item.version)",
                                                      "credential": "\(credential.credentialID)", "hint": "\(credential.hint)",
                                                      "secret": "\(credential.secret.map { "\($0)" } ?? "none")"])
                case .failure(let error):
                    outcomes[item.id] = .issuerFailed(issuer: issuerName, detail: SafeError.describe(error))
                    failedCalls.insert(item.id)
                }
            }
        }
        await checkpoint("after-issue")

        // Record what was issued, with the fingerprints each store will hold, before any store is written.
        writes = []
        for item in pending {
            let id = item.id
            guard var record = state.tokens[id], let index = record.versions.lastIndex(where: { $0.version == item.version }) else { continue }
            if failedCalls.contains(id) { continue }
            if let credential = issued[id], let secret = credential.secret {
                record.versions[index].credentialID = credential.credentialID
                record.versions[index].fingerprint = credential.fingerprint
                record.versions[index].deliveries = item.deliverTo.map { delivery in
                    DeliveryRecord(store: delivery.store, key: delivery.key, contentFingerprint: contentFingerprint(key: delivery.key, secret: secret),
                                   deliveredAt: now)
                }
            } else {
                // Not issued (or an idempotent replay without a secret): drop the intent; repair revokes anything left.
                if issued[id] != nil { outcomes[id] = .replayWithoutSecret(revokeFailed: false) }
                record.versions[index].credentialID = issued[id]?.credentialID ?? ""
                // Revoked before the state says so: if revoking fails, the version stays pending with its id, and the next
                // run's repair revokes it, rather than state calling revoked a credential still valid at the issuer.
                if let credentialID = issued[id]?.credentialID {
                    if await revoke([credentialID], at: item.issuer, now: now) {
                        record.versions[index].status = .revoked
                    } else {
                        outcomes[id] = .replayWithoutSecret(revokeFailed: true)
                    }
                } else {
                    record.versions[index].status = .revoked
                    record.versions[index].deliveries = []
                }
            }
            state.tokens[id] = record
            writes.append(.upsert(record))
        }
        state.serial = try await drivers.state.write(writes, expectedSerial: state.serial)
        await checkpoint("after-record-issue")

        // Deliver: one write per store for the whole batch.
        var puts: [String: [String: Secret]] = [:]
        for item in pending {
            guard let secret = issued[item.id]?.secret else { continue }
            for delivery in item.deliverTo { puts[delivery.store, default: [:]][delivery.key] = secret }
        }
        var failedStores: [String: ChangeFailure] = [:]
        for (storeName, entries) in puts {
            guard let store = drivers.stores[storeName] else {
                failedStores[storeName] = .storeUnavailable(store: storeName)
                continue
            }
            do {
                _ = try await store.write(puts: entries, removes: [])
                logger.debug("delivered", metadata: ["store": "\(storeName)", "keys": "\(entries.count)"])
            } catch {
                failedStores[storeName] = .storeFailed(store: storeName, detail: "\(error)")
                logger.warning("delivery failed", metadata: ["store": "\(storeName)", "error": "\(error)"])
            }
        }
        await checkpoint("after-deliver")

        // A secret no store holds is lost: revoke it before the state says so. A revoke that fails leaves the version
        // pending, and the next run's repair revokes it, rather than state calling revoked a credential still valid.
        var undeliverable: [String: [(id: TokenID, credentialID: String)]] = [:]
        for item in pending {
            guard issued[item.id]?.secret != nil, let record = state.tokens[item.id],
                  let version = record.versions.last(where: { $0.version == item.version }),
                  !version.deliveries.isEmpty, version.deliveries.allSatisfy({ failedStores[$0.store] != nil }) else { continue }
            undeliverable[item.issuer, default: []].append((item.id, version.credentialID))
        }
        var revokeFailed = Set<TokenID>()
        for (issuerName, group) in undeliverable where !(await revoke(group.map(\.credentialID), at: issuerName, now: now)) {
            revokeFailed.formUnion(group.map(\.id))
        }

        // Activate: the new version becomes active, the old one retires after its overlap.
        writes = []
        for item in pending {
            let id = item.id
            guard issued[id]?.secret != nil, var record = state.tokens[id],
                  let index = record.versions.lastIndex(where: { $0.version == item.version }) else { continue }
            let delivered = record.versions[index].deliveries.filter { failedStores[$0.store] == nil }
            if !record.versions[index].deliveries.isEmpty && delivered.isEmpty {
                // No store holds the secret: it was revoked above; the old version stays active.
                let cause = record.versions[index].deliveries.compactMap { failedStores[$0.store] }.first
                    ?? .storeFailed(store: record.versions[index].deliveries[0].store, detail: "delivery failed")
                if !revokeFailed.contains(id) { record.versions[index].status = .revoked }
                outcomes[id] = .undelivered(cause, revokeFailed: revokeFailed.contains(id))
            } else {
                for other in record.versions.indices where record.versions[other].status == .active {
                    record.versions[other].status = .retiring
                    record.versions[other].retireAfter = now + item.overlap
                }
                record.versions[index].status = .active
                record.versions[index].deliveries = delivered
                if delivered.count < item.deliverTo.count {
                    outcomes[id] = .partlyDelivered(item.deliverTo.compactMap { failedStores[$0.store] })
                }
            }
            state.tokens[id] = record
            writes.append(.upsert(record))
        }
        let batchOutcomes = changes.map { change in ChangeOutcome(change: change, failure: change.token.flatMap { outcomes[$0] }) }
        try await commit(writes, completing: batchOutcomes, state: &state)
        logger.debug("activated new versions", metadata: ["count": "\(writes.count)", "serial": "\(state.serial)"])
        await checkpoint("after-record")
        return batchOutcomes
    }

    /// Revokes credentials at an issuer; false when that failed or the issuer is not available.
    private func revoke(_ credentialIDs: [String], at issuerName: String, now: Timestamp) async -> Bool {
        guard let issuer = drivers.issuers[issuerName] else { return false }
        do {
            try await issuer.revoke(credentialIDs, now: now)
            return true
        } catch {
            logger.warning("revoke failed", metadata: ["issuer": "\(issuerName)", "error": "\(SafeError.describe(error))"])
            return false
        }
    }

    // MARK: Helpers

    static func intentKey(_ id: TokenID, _ version: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        let nonce = (generator.next() as UInt64) & 0xFFFF_FFFF_FFFF
        return "\(id)#v\(version)#\(String(nonce, radix: 16))"
    }
}

/// What an issue batch keeps of a token once its intent is recorded: the few fields the later steps read, rather than
/// a copy of the whole token carried through every step (those copies were a noticeable share of a large apply).
private struct PendingIssue {
    let id: TokenID
    let version: Int
    let issuer: String
    let deliverTo: [Token.Delivery]
    let overlap: TokenDuration
}

/// Turns driver errors into messages safe to print (drivers may put secrets in theirs).
package enum SafeError {
    /// A safe description: the error's own text only for tokenctl's error types, else its type name.
    package static func describe(_ error: any Error) -> String {
        switch error {
        case let error as StoreError: error.description
        case let error as StateError: error.description
        case let error as any SafeToPrint: error.description
        default: "an error of type \(type(of: error)) (details withheld, they may contain a secret)"
        }
    }
}
