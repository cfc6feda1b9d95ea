import TokenctlModel

/// A rotation an operator asks for now, whatever the schedule says (`tokenctl rotate`): incident response.
///
/// ```swift
/// let request = RequestedRotation(tokens: [TokenID(namespace: "payments", name: "api")], reason: "INC-42: leaked in a log",
///                                 compromised: true)
/// let plan = request.plan(desired: manifests, recorded: state, now: now)
/// ```
package struct RequestedRotation: Hashable, Sendable {
    /// The tokens to rotate.
    package var tokens: [TokenID]
    /// Why, recorded in the audit log and shown in the plan.
    package var reason: String
    /// Revoke the current credential at once instead of letting it overlap its successor.
    package var compromised: Bool

    /// Creates a request.
    package init(tokens: [TokenID], reason: String, compromised: Bool) {
        self.tokens = tokens
        self.reason = reason
        self.compromised = compromised
    }

    /// The tokens of `desired` chosen by names, a label selector and an issuer (each given filter must match).
    package static func select(_ desired: ManifestSet, names: [TokenID], labels: [String: String], issuer: String?) -> [TokenID] {
        let wanted = Set(names)
        return desired.tokens.filter { token in
            (wanted.isEmpty || wanted.contains(token.id))
                && labels.allSatisfy { token.metadata.labels[$0.key] == $0.value }
                && (issuer == nil || token.issuer == issuer)
        }.map(\.id).sorted()
    }

    /// The tokens an operator's request names: the named ones as named, else those the filters select. Filters given
    /// beside names must match them (never widen or silently narrow the request); a refusal says why.
    package static func resolve(_ desired: ManifestSet, names: [TokenID], labels: [String: String],
                                issuer: String?) -> Result<[TokenID], RequestRefusal> {
        let selected = select(desired, names: [], labels: labels, issuer: issuer)
        // A name unknown to the manifests is refused later, with the state at hand.
        if !names.isEmpty, !labels.isEmpty || issuer != nil, let stray = names.first(where: { !selected.contains($0) }),
           desired.tokens.contains(where: { $0.id == stray }) {
            return .failure(RequestRefusal(description: "token \(stray) does not match --selector/--issuer"))
        }
        let tokens = names.isEmpty ? selected : names
        guard !tokens.isEmpty else { return .failure(RequestRefusal(description: "no token in the manifests matches the selection")) }
        return .success(tokens)
    }

    /// Why a request names no token to rotate.
    package struct RequestRefusal: Error, CustomStringConvertible {
        package var description: String
    }

    /// What the audit log's request entry says besides the reason.
    package var auditDetail: String {
        (compromised ? "compromised: revoke at once; " : "") + "rotate " + tokens.map(\.description).joined(separator: ", ")
    }

    /// Why some of the requested tokens cannot be rotated (not in the manifests, no active credential), as sentences.
    package func problems(desired: ManifestSet, recorded: RecordedState) -> [String] {
        let managed = Set(desired.tokens.map(\.id))
        return Set(tokens).sorted().compactMap { id in
            if !managed.contains(id) { return "token \(id) is not in the manifests; only managed tokens can be rotated" }
            if recorded.tokens[id]?.active == nil { return "token \(id) has no active credential yet; tokenctl apply issues it" }
            return nil
        }
    }

    /// The rotations (and, when compromised, the immediate retirements of the current versions), and nothing else.
    /// Tokens held by policy get no successor (they are listed in `held`); a compromised one is still revoked. Tokens
    /// with a problem (see `problems`) are left out.
    package func plan(desired: ManifestSet, recorded: RecordedState, now: Timestamp, held: [TokenID: [String]] = [:]) -> Plan {
        // Positions, not copies of every token; and one detail text and one facts table per distinct lifespan and overlap,
        // shared by every change that has them: rotating a whole fleet at once plans one change per token.
        let desiredTokens = TokensByID(desired.tokens)
        var details: [TokenDuration: String] = [:]
        var factTables: [TokenDuration?: [String: String]] = [:]
        var changes: [PlannedChange] = []
        changes.reserveCapacity(tokens.count)
        var notRotated: [HeldToken] = []
        for id in Set(tokens).sorted() {
            guard let token = desiredTokens[id], let record = recorded.tokens[id], let active = record.active else { continue }
            if let violations = held[id] {
                notRotated.append(HeldToken(token: id, violations: violations, withheld: [.rotate]))
                // A compromised credential is revoked even when policy withholds its successor.
                if compromised { changes += retirements(of: record) }
                continue
            }
            let facts = factTables[token.lifespan.duration] ?? {
                var facts = ["lifespan": token.lifespan.duration?.description ?? "never"]
                if let lifespan = token.lifespan.duration {
                    facts["newVersionExpiresAt"] = Timestamp(secondsSinceEpoch: now.secondsSinceEpoch + lifespan.seconds).description
                }
                factTables[token.lifespan.duration] = facts
                return facts
            }()
            let detail = details[token.rotation.overlap] ?? {
                let overlap = compromised ? "every version still valid is revoked at once (compromised)"
                    : "the current version overlaps its successor for \(token.rotation.overlap)"
                let detail = "requested: \(reason); \(overlap)"
                details[token.rotation.overlap] = detail
                return detail
            }()
            changes.append(PlannedChange(action: .rotate, token: id, issuer: token.issuer, version: active.version,
                                         newVersion: record.latestVersion + 1, reason: .requested, detail: detail, facts: facts))
            if compromised {
                changes += retirements(of: record)
            } else if let retirement = Planner.supersededRetirement(token, recorded: record, replacing: active, by: record.latestVersion + 1) {
                changes.append(retirement)
            }
        }
        var plan = Plan(createdAt: now, stateSerial: recorded.serial, refreshed: false, changes: changes, nextDueAt: nil)
        plan.held = notRotated
        return plan
    }

    /// Every version still valid (the active one and those still overlapping their successors): a leak may be older
    /// than the last rotation. At the issuer that made them, which the manifests may have changed since.
    private func retirements(of record: RecordedToken) -> [PlannedChange] {
        record.versions.filter { $0.status == .active || $0.status == .retiring }.map { version in
            PlannedChange(action: .retire, token: record.id, issuer: record.issuer, version: version.version, reason: .compromised,
                          detail: "compromised: revoked now, without overlap (\(reason))")
        }
    }
}
