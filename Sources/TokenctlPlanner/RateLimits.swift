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
/// Credentials issued within the period (the recorded versions' issue times) and the plan's rotations count against the
/// limit first, since rotations always proceed (holding one would break its clients); then the plan's first issues take
/// what is left, in the plan's order, and the rest are held.
package enum RateLimits {
    /// Holds the first issues that would pass a limit of `policies`.
    package static func hold(excessIn plan: inout Plan, policies: [Policy], desired: ManifestSet, recorded: RecordedState, now: Timestamp) {
        let limited = policies.compactMap { policy in policy.maxIssued.map { (policy.metadata.name, $0) } }
        guard !limited.isEmpty, plan.changes.contains(where: { $0.action == .issue }) else { return }
        let owners = Dictionary(desired.tokens.map { ($0.id, $0.owner) }, uniquingKeysWith: { first, _ in first })
        var heldBy: [TokenID: RateLimitHit] = [:]
        var messages: [TokenID: String] = [:]
        for (policy, limit) in limited {
            let windowStart = Timestamp(secondsSinceEpoch: now.secondsSinceEpoch - limit.per.seconds)
            func subject(owner: String?, issuer: String) -> String { limit.by == .owner ? owner ?? "-" : issuer }
            var counts: [String: Int] = [:]
            for token in recorded.tokens.values {
                let issued = token.versions.filter { $0.issuedAt > windowStart }.count
                if issued > 0 { counts[subject(owner: token.owner, issuer: token.issuer), default: 0] += issued }
            }
            // Rotations first: they proceed whatever the count, so new tokens get what they leave of the limit.
            for change in plan.changes where change.action == .rotate {
                counts[subject(owner: change.token.flatMap { owners[$0] }, issuer: change.issuer), default: 0] += 1
            }
            for change in plan.changes where change.action == .issue {
                guard let token = change.token, heldBy[token] == nil else { continue }
                let key = subject(owner: owners[token], issuer: change.issuer)
                if counts[key, default: 0] >= limit.count {
                    heldBy[token] = RateLimitHit(policy: policy, by: limit.by.rawValue, subject: key, limit: limit.description,
                                                 windowStart: windowStart, periodSeconds: limit.per.seconds)
                    messages[token] = "creation-rate limit of policy '\(policy)' reached: \(limit.by.rawValue) \(key) may get \(limit.count) "
                        + "new credentials per \(limit.per) and has had \(counts[key, default: 0]) since \(windowStart.minuteText); "
                        + "the token is issued once the window allows, or lift the limit for one apply with --lift-rate-limits --reason"
                } else {
                    counts[key, default: 0] += 1
                }
            }
        }
        guard !heldBy.isEmpty else { return }
        plan.changes.removeAll { change in change.action == .issue && change.token.map { heldBy[$0] != nil } == true }
        plan.held += heldBy.keys.sorted().map { token in
            HeldToken(token: token, violations: [messages[token] ?? ""], withheld: [.issue], rateLimit: heldBy[token])
        }
        plan.held.sort { $0.token < $1.token }
    }
}
