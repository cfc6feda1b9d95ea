import Dispatch
import TokenctlModel

/// Decides what must change: a pure function of desired, recorded and observed state and the clock.
///
/// ```swift
/// let plan = Planner.plan(desired: manifests, recorded: state, observed: nil, now: now)
/// print(PlanRenderer.human(plan))
/// ```
///
/// No I/O and no clock reads; the result is independent of the order of its inputs.
/// Policy is checked before planning; tokens that violate it are passed as `held` and get no new credential, while
/// every other token is planned as usual.
package enum Planner {
    /// Plans every change as of `now`. `observed` is nil unless issuers were asked (`--refresh`); `held` maps the tokens
    /// that violate a policy to the violations (`ManifestLoadResult.policyHolds`).
    package static func plan(desired: ManifestSet, recorded: RecordedState, observed: Observation?, now: Timestamp,
                            held: [TokenID: [String]] = [:], enforceRateLimits: Bool = true) -> Plan {
        // Tokens are planned independently, so chunks of them are planned on every core; the changes
        // are sorted at the end, which makes the result independent of input order and of the chunking.
        let tokens = desired.tokens
        let chunkCount = tokens.count < 4_096 ? 1 : 16
        let chunkSize = (tokens.count + chunkCount - 1) / max(1, chunkCount)
        // Inventories indexed by credential id, so that checking each recorded credential is a lookup, not a scan.
        let inventories = observed.map { observed in
            observed.inventories.mapValues { credentials in
                Dictionary(credentials.map { ($0.credentialID, $0) }, uniquingKeysWith: { first, _ in first })
            }
        }
        let writeOnlyStores = Set(desired.stores.values.filter { !$0.capabilities.contains(.readable) }.map(\.metadata.name))
        let results = ConcurrentSlots<(changes: [PlannedChange], due: Timestamp?)>(count: chunkCount, initial: ([], nil))
        DispatchQueue.concurrentPerform(iterations: chunkCount) { chunk in
            var changes: [PlannedChange] = []
            var nextDue: Timestamp?
            let due = { (moment: Timestamp?) in
                guard let moment, moment > now else { return }
                nextDue = min(nextDue ?? moment, moment)
            }
            for token in tokens[min(tokens.count, chunk * chunkSize)..<min(tokens.count, (chunk + 1) * chunkSize)] {
                planToken(token, issuer: desired.issuers[token.issuer], recorded: recorded.tokens[token.id], observed: observed,
                          inventories: inventories, writeOnlyStores: writeOnlyStores, now: now, into: &changes, due: due)
            }
            results.set(chunk, (changes, nextDue))
        }
        let chunks = results.take()
        var changes = chunks.flatMap(\.changes)
        var nextDue = chunks.compactMap(\.due).min()
        if recorded.tokens.count > 0 {
            let desiredIDs = Set(tokens.map(\.id))
            for recordedToken in recorded.tokens.values where !desiredIDs.contains(recordedToken.id) {
                for version in recordedToken.versions where version.status != .revoked {
                    changes.append(PlannedChange(
                        action: .retire, token: recordedToken.id, issuer: recordedToken.issuer, version: version.version,
                        reason: .removedFromManifests, detail: "no longer in the manifests; revoke and remove from every store"))
                }
            }
        }
        if let observed { planGhosts(desired: desired, recorded: recorded, observed: observed, into: &changes) }
        changes.sort(by: Self.displayOrder)
        nextDue = nextDue.flatMap { $0 > now ? $0 : nil }
        var plan = Plan(createdAt: now, stateSerial: recorded.serial, refreshed: observed != nil, changes: changes, nextDueAt: nextDue)
        if !held.isEmpty { withhold(held, from: &plan) }
        if enforceRateLimits { RateLimits.hold(excessIn: &plan, policies: desired.policies, desired: desired, recorded: recorded, now: now) }
        return plan
    }

    /// The actions that give a token a new or changed credential, which a policy violation withholds.
    static let withheldByPolicy: Set<PlanAction> = [.issue, .rotate, .update]

    /// Removes the new credentials of the held tokens from the plan and lists the tokens, with what was withheld; also
    /// applied to a saved plan at apply time, since policy is judged at that moment.
    package static func withhold(_ held: [TokenID: [String]], from plan: inout Plan) {
        var withheld: [TokenID: [PlanAction]] = [:]
        plan.changes.removeAll { change in
            guard let token = change.token, held[token] != nil else { return false }
            // The retirement that would follow a withheld rotation goes with it: the current version stays.
            if change.followsRotation == true { return true }
            guard withheldByPolicy.contains(change.action) else { return false }
            withheld[token, default: []].append(change.action)
            return true
        }
        plan.held = held.keys.sorted().map { HeldToken(token: $0, violations: held[$0] ?? [], withheld: withheld[$0] ?? []) }
    }

    private static func planToken(_ token: Token, issuer: Issuer?, recorded: RecordedToken?, observed: Observation?,
                                  inventories: [String: [String: ObservedCredential]]?, writeOnlyStores: Set<String>, now: Timestamp,
                                  into changes: inout [PlannedChange], due: (Timestamp?) -> Void) {
        let settings = Schedule.Settings(token)
        let nextVersion = (recorded?.latestVersion ?? 0) + 1
        // Built only for the tokens that change: most tokens of a large set have nothing to do.
        // Data, not prose: the lifespan and the moment the new credential would expire (absent when it never does).
        var expiry: [String: String] {
            guard let lifespan = token.lifespan.duration else { return ["lifespan": "never"] }
            return ["lifespan": lifespan.description,
                    "newVersionExpiresAt": Timestamp(secondsSinceEpoch: now.secondsSinceEpoch + lifespan.seconds).description]
        }

        // Retiring versions whose overlap has ended.
        for version in recorded?.versions ?? [] where version.status == .retiring {
            // A retiring version without an end of overlap (an overlap of 0) may go at once.
            let retireAfter = version.retireAfter ?? now
            if retireAfter <= now {
                let successor = recorded?.active
                changes.append(PlannedChange(
                    action: .retire, token: token.id, issuer: recorded?.issuer ?? token.issuer, version: version.version,
                    reason: .overlapEnded,
                    detail: successor.map { "successor v\($0.version) active since \($0.issuedAt.minuteText)" } ?? "overlap ended at \(retireAfter.minuteText)",
                    facts: ["retireAfter": retireAfter.description]))
            } else {
                due(retireAfter)
            }
        }

        if let current = recorded?.active, let inventory = inventories?[recorded?.issuer ?? token.issuer] {
            let found = inventory[current.credentialID]
            if found == nil || found?.revoked == true {
                changes.append(PlannedChange(
                    action: .issue, token: token.id, issuer: token.issuer, version: current.version, newVersion: nextVersion,
                    reason: .missingAtIssuer,
                    detail: "v\(current.version) (id \(current.credentialID)) is \(found == nil ? "gone from" : "revoked at") the issuer",
                    facts: expiry.merging(["credentialID": current.credentialID]) { $1 }))
                return
            }
        }
        guard let recorded, let current = recorded.active else {
            changes.append(PlannedChange(action: .issue, token: token.id, issuer: token.issuer, newVersion: nextVersion,
                                         reason: .notIssued, detail: "no credential yet", facts: expiry))
            return
        }
        let age = now.secondsSinceEpoch - current.issuedAt.secondsSinceEpoch
        func rotate(_ reason: PlanReason, _ detail: String, facts: [String: String] = [:]) {
            changes.append(PlannedChange(action: .rotate, token: token.id, issuer: token.issuer, version: current.version,
                                         newVersion: nextVersion, reason: reason, detail: detail,
                                         facts: facts.merging(expiry) { current, _ in current }))
            if let retirement = supersededRetirement(token, recorded: recorded, replacing: current, by: nextVersion) {
                changes.append(retirement)
            }
        }

        if recorded.issuer != token.issuer {
            rotate(.specChanged, "issuer \(recorded.issuer) → \(token.issuer)")
            return
        }
        if let expiresAt = current.expiresAt, expiresAt <= now {
            rotate(.expired, "v\(current.version) expired \(Age.text(now.secondsSinceEpoch - expiresAt.secondsSinceEpoch)) ago at \(expiresAt.minuteText)",
                   facts: ["expiresAt": expiresAt.description])
            return
        }
        if let lifespan = token.lifespan.duration, let expiresAt = current.expiresAt,
           expiresAt.secondsSinceEpoch > current.issuedAt.secondsSinceEpoch + lifespan.seconds {
            rotate(.specChanged, "lifespan shortened to \(lifespan): v\(current.version) would outlive it",
                   facts: ["lifespan": lifespan.description, "expiresAt": expiresAt.description])
            return
        }
        if token.lifespan.duration != nil, current.expiresAt == nil {
            rotate(.specChanged, "lifespan \(token.lifespan) replaces never: v\(current.version) does not expire")
            return
        }
        // A scope change is made in place when the issuer can, unless a rotation below issues a new
        // version anyway (which gets the new scopes).
        var scopeUpdate: PlannedChange?
        if current.scopes != token.scopes, current.scopes.sorted() != token.scopes.sorted() {
            let desiredScopes = token.scopes.sorted()
            let detail = "scopes [\(current.scopes.sorted().joined(separator: ", "))] → [\(desiredScopes.joined(separator: ", "))]"
            if issuer.map(supportsUpdate) ?? false {
                scopeUpdate = PlannedChange(action: .update, token: token.id, issuer: token.issuer, version: current.version,
                                            reason: .specChanged, detail: detail)
            } else {
                rotate(.specChanged, detail + " (the issuer cannot change scopes in place)")
                return
            }
        }
        // Every store it was delivered to was observed, and none holds it any more (a store deleted, or restored from an
        // old backup): the secret exists nowhere to redeliver from, so a new version replaces it.
        if let observed, !current.deliveries.isEmpty, current.deliveries.allSatisfy({ delivery in
            guard let held = observed.storeContents[StoreKey(store: delivery.store, key: delivery.key)] else { return false }
            return held != delivery.contentFingerprint
        }) {
            rotate(.deliveryLost, "no store still holds v\(current.version)'s secret ("
                   + current.deliveries.map { "\($0.store):\($0.key)" }.joined(separator: ", ") + " hold something else or nothing)")
            return
        }
        if let unreachable = secretUnreachable(token, current: current, issuer: issuer, writeOnlyStores: writeOnlyStores) {
            rotate(.deliveryLost, unreachable)
            return
        }
        let dueAt = Schedule.rotationDue(id: token.id, issuedAt: current.issuedAt, settings: settings, now: now)
        let latestSafe = Schedule.latestSafeRotation(expiresAt: current.expiresAt, settings: settings)
        if let latestSafe, latestSafe <= now, dueAt.map({ $0 > now }) ?? true {
            rotate(.expiresSoon, "v\(current.version) expires \(current.expiresAt?.minuteText ?? "?"), within its overlap \(settings.overlap)"
                   + (settings.window != nil ? "; rotating outside the window" : ""),
                   facts: ["expiresAt": current.expiresAt?.description ?? "", "overlap": settings.overlap.description])
            return
        }
        if let dueAt, let every = settings.every {
            if dueAt <= now {
                rotate(.rotationDue, "age \(Age.text(age)) ≥ every \(every)" + (settings.window.map { " (window \($0))" } ?? ""),
                       facts: ["age": Age.text(age), "every": every.description, "dueAt": dueAt.description])
                return
            }
            due(dueAt)
        }
        due(latestSafe)
        due(current.expiresAt)
        if let scopeUpdate { changes.append(scopeUpdate) }
        planDeliveries(token, current: current, observed: observed, into: &changes)
    }

    /// The retirement that follows a rotation without overlap: the replaced version goes in the same run, once its
    /// successor is active (listed in the plan, so that the plan shows everything apply does).
    package static func supersededRetirement(_ token: Token, recorded: RecordedToken, replacing current: CredentialVersion,
                                            by newVersion: Int) -> PlannedChange? {
        guard token.rotation.overlap.seconds == 0 else { return nil }
        return PlannedChange(action: .retire, token: token.id, issuer: recorded.issuer, version: current.version, reason: .overlapEnded,
                             detail: "replaced by v\(newVersion) without overlap: retired once v\(newVersion) is active",
                             facts: ["overlap": token.rotation.overlap.description], followsRotation: true)
    }

    /// Why a delivery still to make cannot get the secret, or nil: it was delivered only to write-only stores (or
    /// nowhere, for a token of write-only stores), and its issuer cannot replay it. Only a new version can be
    /// delivered then.
    private static func secretUnreachable(_ token: Token, current: CredentialVersion, issuer: Issuer?,
                                          writeOnlyStores: Set<String>) -> String? {
        guard !writeOnlyStores.isEmpty, !(issuer?.capabilities.contains(.replaysSecrets) ?? false),
              current.deliveries.count != token.deliverTo.count
                || !zip(current.deliveries, token.deliverTo).allSatisfy({ $0.store == $1.store && $0.key == $1.key }) else { return nil }
        let recorded = Set(current.deliveries.map { StoreKey(store: $0.store, key: $0.key) })
        let missing = token.deliverTo.filter { !recorded.contains(StoreKey(store: $0.store, key: $0.key)) }
        guard !missing.isEmpty, current.deliveries.allSatisfy({ writeOnlyStores.contains($0.store) }),
              current.deliveries.contains(where: { writeOnlyStores.contains($0.store) }) || missing.contains(where: { writeOnlyStores.contains($0.store) })
        else { return nil }
        return "v\(current.version)'s secret cannot be read back (" + (current.deliveries.isEmpty ? "it is recorded in no store"
            : "its stores are write-only: " + current.deliveries.map { "\($0.store):\($0.key)" }.joined(separator: ", "))
            + ") to deliver it to " + missing.map { "\($0.store):\($0.key)" }.joined(separator: ", ") + "; a new version goes everywhere"
    }

    private static func planDeliveries(_ token: Token, current: CredentialVersion, observed: Observation?,
                                       into changes: inout [PlannedChange]) {
        // The common case: the recorded deliveries are exactly the desired ones, and no store was observed.
        if observed == nil, current.deliveries.count == token.deliverTo.count,
           zip(current.deliveries, token.deliverTo).allSatisfy({ $0.store == $1.store && $0.key == $1.key }) {
            return
        }
        let recordedKeys = Dictionary(current.deliveries.map { (StoreKey(store: $0.store, key: $0.key), $0.contentFingerprint) },
                                      uniquingKeysWith: { first, _ in first })
        let desiredKeys = token.deliverTo.map { StoreKey(store: $0.store, key: $0.key) }
        var missing: [StoreKey] = []
        var drifted: [StoreKey] = []
        for key in desiredKeys {
            guard let fingerprint = recordedKeys[key] else {
                missing.append(key)
                continue
            }
            if let observedContent = observed?.storeContents[key] {
                if observedContent == nil { missing.append(key) } else if observedContent != fingerprint { drifted.append(key) }
            }
        }
        let removed = recordedKeys.keys.filter { !desiredKeys.contains($0) }.sorted { $0.description < $1.description }
        if !missing.isEmpty {
            changes.append(PlannedChange(action: .redeliver, token: token.id, issuer: token.issuer, version: current.version,
                                         reason: .deliveryMissing, detail: "not in \(missing.map(\.description).joined(separator: ", "))",
                                         stores: missing))
        }
        if !drifted.isEmpty {
            changes.append(PlannedChange(action: .redeliver, token: token.id, issuer: token.issuer, version: current.version,
                                         reason: .deliveryDrifted,
                                         detail: "\(drifted.map(\.description).joined(separator: ", ")) holds something else",
                                         stores: drifted))
        }
        if !removed.isEmpty {
            changes.append(PlannedChange(action: .undeliver, token: token.id, issuer: token.issuer, version: current.version,
                                         reason: .deliveryRemoved,
                                         detail: "remove from \(removed.map(\.description).joined(separator: ", ")) (no longer in deliverTo)",
                                         stores: removed))
        }
    }

    private static func planGhosts(desired: ManifestSet, recorded: RecordedState, observed: Observation, into changes: inout [PlannedChange]) {
        var known = Set<String>()
        var revokedInState: [String: (RecordedToken, CredentialVersion)] = [:]
        for token in recorded.tokens.values {
            for version in token.versions {
                known.insert("\(token.issuer)\u{0}\(version.credentialID)")
                if version.status == .revoked { revokedInState["\(token.issuer)\u{0}\(version.credentialID)"] = (token, version) }
            }
        }
        // Revoked in state but still valid at the issuer: an earlier revoke did not take; revoke again.
        for issuerName in observed.inventories.keys.sorted() {
            for credential in observed.inventories[issuerName] ?? [] where !credential.revoked {
                guard let (token, version) = revokedInState["\(issuerName)\u{0}\(credential.credentialID)"] else { continue }
                changes.append(PlannedChange(
                    action: .retire, token: token.id, issuer: issuerName, version: version.version, reason: .revokeIncomplete,
                    detail: "v\(version.version) is recorded as revoked but still valid at the issuer; revoke it again",
                    facts: ["credentialID": credential.credentialID]))
            }
        }
        for issuerName in observed.inventories.keys.sorted() where desired.issuers[issuerName]?.ghosts != .ignore {
            let retire = desired.issuers[issuerName]?.ghosts == .retire
            let inventory = observed.inventories[issuerName] ?? []
            for credential in inventory.sorted(by: { $0.credentialID < $1.credentialID })
            where !credential.revoked && !known.contains("\(issuerName)\u{0}\(credential.credentialID)") {
                let unmarked = credential.unmarked == true
                let detail = unmarked
                    ? "named like tokenctl's credentials but without its ownership marker; reported only, never touched"
                    : "valid at the issuer but not recorded in this state (made by hand or by another state, or recorded in a "
                        + "state since lost or restored from an older backup: tokenctl state rebuild); "
                        + (retire ? "will be revoked (issuer ghosts: retire)" : "reported only (issuer ghosts: report)")
                changes.append(PlannedChange(
                    action: .ghost, token: nil, issuer: issuerName, reason: .unmanaged, detail: detail,
                    facts: ["credentialID": credential.credentialID], ghost: credential, retireGhost: retire && !unmarked))
            }
        }
    }

    /// By token (ghosts last), then action, version and reason, so equal inputs always give the same order.
    static func displayOrder(_ lhs: PlannedChange, _ rhs: PlannedChange) -> Bool {
        func rank(_ action: PlanAction) -> Int { PlanAction.allCases.firstIndex(of: action) ?? 0 }
        switch (lhs.token, rhs.token) {
        case (nil, .some): return false
        case (.some, nil): return true
        case let (left?, right?) where left != right: return left < right
        case (nil, nil) where lhs.issuer != rhs.issuer: return lhs.issuer < rhs.issuer
        default: break
        }
        if lhs.action != rhs.action { return rank(lhs.action) < rank(rhs.action) }
        if lhs.version != rhs.version { return (lhs.version ?? 0) < (rhs.version ?? 0) }
        if lhs.reason != rhs.reason { return lhs.reason.rawValue < rhs.reason.rawValue }
        return (lhs.ghost?.credentialID ?? lhs.detail) < (rhs.ghost?.credentialID ?? rhs.detail)
    }

    /// Issuers that can change a credential's scopes without reissuing it.
    static func supportsUpdate(_ issuer: Issuer) -> Bool {
        issuer.capabilities.contains(.updateInPlace)
    }
}
