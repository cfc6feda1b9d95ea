import TokenctlModel

/// A creation-rate limit that held tokens back in a plan: which policy, which owner or issuer, which window.
package struct RateLimitHit: Hashable, Sendable, Codable {
    /// The Policy that sets the limit.
    package var policy: String
    /// `owner` or `issuer`.
    package var by: String
    /// The owner or issuer whose count reached the limit.
    package var subject: String
    /// The limit, e.g. `100 per 1h by owner`.
    package var limit: String
    /// When the counting window began (the plan's moment minus the period).
    package var windowStart: Timestamp
    /// The limit's period in seconds.
    package var periodSeconds: Int64

    /// Creates a hit.
    package init(policy: String, by: String, subject: String, limit: String, windowStart: Timestamp, periodSeconds: Int64) {
        self.policy = policy
        self.by = by
        self.subject = subject
        self.limit = limit
        self.windowStart = windowStart
        self.periodSeconds = periodSeconds
    }
}

/// Creation-rate limits (`Policy.spec.maxIssued`): new tokens beyond a limit are held in the plan, the rest proceed.
///
/// ```swift
/// var plan = Planner.plan(desired: manifests, recorded: state, observed: nil, now: now)   // applies them already
/// plan.held.filter { $0.rateLimit != nil }    // the tokens a limit held back, and why
/// ```
///
/// Only tokens the state has never held are limited. Credentials issued within the period (the recorded versions' issue
/// times) and the plan's other new credentials (rotations, repairs) count first, since they always proceed (holding one
/// would break its clients); then the new tokens take what is left, in the plan's order, and the rest are held. A token
/// is admitted only when every limit has room, and then counts against every limit.
package enum RateLimits {
    /// Holds the new tokens that would pass a limit of `policies`; wakes the plan when a window reopens.
    package static func hold(excessIn plan: inout Plan, policies: [Policy], desired: ManifestSet, recorded: RecordedState, now: Timestamp) {
        let limits = policies.compactMap { policy in policy.maxIssued.map { (policy: policy.metadata.name, limit: $0) } }
        // Only first issues of tokens the state has never held are limited: a token whose credential went missing at
        // its issuer, or that has none active, is being repaired, and holding it would leave its clients broken.
        func isNew(_ change: PlannedChange) -> Bool {
            change.action == .issue && change.reason == .notIssued && change.token.map { recorded.tokens[$0] == nil } == true
        }
        guard !limits.isEmpty, plan.changes.contains(where: isNew) else { return }
        let tokens = TokensByID(desired.tokens)
        func subject(_ limit: IssueRateLimit, owner: String?, issuer: String) -> String { limit.by == .owner ? owner ?? "-" : issuer }
        var counts = Array(repeating: [String: Int](), count: limits.count)
        var oldestCounted = Array(repeating: [String: Timestamp](), count: limits.count)
        for (index, entry) in limits.enumerated() {
            let windowStart = Timestamp(secondsSinceEpoch: now.secondsSinceEpoch - entry.limit.per.seconds)
            for token in recorded.tokens.values {
                let key = subject(entry.limit, owner: token.owner, issuer: token.issuer)
                for version in token.versions where version.issuedAt > windowStart {
                    counts[index][key, default: 0] += 1
                    oldestCounted[index][key] = min(oldestCounted[index][key] ?? version.issuedAt, version.issuedAt)
                }
            }
            // Every other new credential of the plan proceeds whatever the count, so it counts first.
            for change in plan.changes where (change.action == .issue || change.action == .rotate) && !isNew(change) {
                counts[index][subject(entry.limit, owner: change.token.flatMap { tokens[$0]?.owner }, issuer: change.issuer), default: 0] += 1
            }
        }
        var held: [TokenID: (hit: RateLimitHit, message: String)] = [:]
        var reopens: Timestamp?
        for change in plan.changes where isNew(change) {
            guard let token = change.token else { continue }
            // A token any limit holds uses up no other limit's room.
            let full = limits.indices.first { index in
                counts[index][subject(limits[index].limit, owner: tokens[token]?.owner, issuer: change.issuer), default: 0] >= limits[index].limit.count
            }
            guard let index = full else {
                for index in limits.indices { counts[index][subject(limits[index].limit, owner: tokens[token]?.owner, issuer: change.issuer), default: 0] += 1 }
                continue
            }
            let (policy, limit) = limits[index]
            let key = subject(limit, owner: tokens[token]?.owner, issuer: change.issuer)
            let windowStart = Timestamp(secondsSinceEpoch: now.secondsSinceEpoch - limit.per.seconds)
            if let oldest = oldestCounted[index][key] {
                let reopen = oldest + limit.per
                reopens = min(reopens ?? reopen, reopen)
            }
            held[token] = (RateLimitHit(policy: policy, by: limit.by.rawValue, subject: key, limit: limit.description, windowStart: windowStart,
                                        periodSeconds: limit.per.seconds),
                           "creation-rate limit of policy '\(policy)' reached: \(limit.by.rawValue) \(key) may get \(limit.count) new credentials "
                               + "per \(limit.per) and has had \(counts[index][key, default: 0]) since \(windowStart.minuteText); the token is "
                               + "issued once the window allows, or lift the limit for one apply with --lift-rate-limits --reason")
        }
        guard !held.isEmpty else { return }
        plan.changes.removeAll { change in isNew(change) && change.token.map { held[$0] != nil } == true }
        plan.held += held.keys.sorted().map { token in
            HeldToken(token: token, violations: [held[token]?.message ?? ""], withheld: [.issue], rateLimit: held[token]?.hit)
        }
        plan.held.sort { $0.token < $1.token }
        // The controller wakes when room opens again, instead of at its next interval.
        if let reopens, reopens > now { plan.nextDueAt = min(plan.nextDueAt ?? reopens, reopens) }
    }
}
