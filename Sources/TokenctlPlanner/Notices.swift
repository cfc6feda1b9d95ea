import TokenctlModel

/// A notice due to a notifier: one event about one token or credential, with identity, owner, times and the reason,
/// never a secret.
package struct Notice: Hashable, Sendable, Codable {
    /// What happened.
    package enum Event: String, Sendable, Codable, CaseIterable {
        /// A credential that nothing will rotate nears its expiry (or has expired).
        case expiring
        /// A rotation or retirement has been failing for longer than the notifier's threshold.
        case failing
        /// A credential at an issuer that the state does not know.
        case ghost
        /// A token has not been used for longer than the notifier's threshold.
        case unused
        /// A policy violation holds a token.
        case policyViolation
        /// A creation-rate limit held tokens back.
        case rateLimited
    }

    /// The Notifier it goes to.
    package var notifier: String
    /// The event.
    package var event: Event
    /// This occurrence of the event; a notifier is sent each key once.
    package var key: String
    /// The token, when the event is about one.
    package var token: TokenID?
    /// The token's owner.
    package var owner: String?
    /// The issuer.
    package var issuer: String?
    /// The credential's version, when the event is about one.
    package var version: Int?
    /// The issuer's credential id, for ghosts (an id, never the secret).
    package var credentialID: String?
    /// The moment the event is about: the expiry, the first failure, the last use.
    package var at: Timestamp?
    /// The lead time that made an expiry notice due.
    package var leadTime: TokenDuration?
    /// What happened, as a sentence for people.
    package var reason: String

    /// Creates a notice.
    package init(notifier: String, event: Event, key: String, token: TokenID?, owner: String?, issuer: String?, version: Int?,
                 credentialID: String?, at: Timestamp?, leadTime: TokenDuration?, reason: String) {
        self.notifier = notifier
        self.event = event
        self.key = key
        self.token = token
        self.owner = owner
        self.issuer = issuer
        self.version = version
        self.credentialID = credentialID
        self.at = at
        self.leadTime = leadTime
        self.reason = reason
    }
}

/// The facts notices are computed from, besides the manifests: what the state, the controller and the issuers say.
package struct NoticeFacts: Sendable {
    /// A change that keeps failing.
    package struct Failing: Sendable, Equatable {
        /// The token.
        package var token: TokenID
        /// The planned action (`rotate`, `retire`, …).
        package var action: String
        /// When it first failed.
        package var since: Timestamp
        /// The last error (free of secrets).
        package var error: String

        /// Creates a failing change.
        package init(token: TokenID, action: String, since: Timestamp, error: String) {
            self.token = token
            self.action = action
            self.since = since
            self.error = error
        }
    }

    /// The rows of `tokenctl status` (state and last use).
    package var rows: [TokenStatus.Row]
    /// Tokens held by policy violations, with the violations' messages.
    package var held: [TokenID: [String]]
    /// Changes that keep failing.
    package var failing: [Failing]
    /// Ghost credentials, when the issuers' inventories were read; nil when they were not.
    package var ghosts: [ObservedCredential]?
    /// Tokens a creation-rate limit held back in the plan.
    package var rateLimited: [HeldToken]

    /// Creates the facts.
    package init(rows: [TokenStatus.Row], held: [TokenID: [String]] = [:], failing: [Failing] = [], ghosts: [ObservedCredential]? = nil,
                 rateLimited: [HeldToken] = []) {
        self.rows = rows
        self.held = held
        self.failing = failing
        self.ghosts = ghosts
        self.rateLimited = rateLimited.filter { $0.rateLimit != nil }
    }
}

/// Which notices are due: a pure function of the manifests, the facts and the moment.
///
/// ```swift
/// let due = NoticePlanner.due(desired: manifests, facts: NoticeFacts(rows: rows), now: now)
/// due.map(\.key)   // ["expiring/apps/legacy/1796400000/3d", …]
/// ```
///
/// A key names one occurrence of an event (an expiry and a lead time, a failure that began at a moment, a ghost by
/// its id), so the sender can send each once; a renewed exception or a new failure makes new keys.
package enum NoticePlanner {
    /// Every notice due at `now`, sorted by notifier, event and token.
    package static func due(desired: ManifestSet, facts: NoticeFacts, now: Timestamp) -> [Notice] {
        evaluate(desired: desired, facts: facts, now: now).due
    }

    /// The next moment after `now` at which a notice not due now becomes due (a lead time reached, a failure or an idle
    /// spell passing its threshold), so that the controller wakes for it; nil when none will.
    package static func nextDue(desired: ManifestSet, facts: NoticeFacts, now: Timestamp) -> Timestamp? {
        evaluate(desired: desired, facts: facts, now: now).nextDue
    }

    /// The notices due at `now` and the next moment one becomes due, from one pass over the tokens (a controller pass
    /// needs both).
    package static func evaluate(desired: ManifestSet, facts: NoticeFacts, now: Timestamp) -> (due: [Notice], nextDue: Timestamp?) {
        let wanted = Set(desired.tokens.map(\.id))
        let rows = facts.rows.filter { wanted.contains($0.token) }
        let expiries = ExpiryOutlook.entries(rows: rows, desired: desired, held: Set(facts.held.keys)).filter { $0.rotation == .none }
        return (due(desired: desired, facts: facts, rows: rows, expiries: expiries, now: now),
                nextDue(desired: desired, facts: facts, rows: rows, expiries: expiries, now: now))
    }

    private static func due(desired: ManifestSet, facts: NoticeFacts, rows: [TokenStatus.Row], expiries: [ExpiryOutlook.Entry],
                            now: Timestamp) -> [Notice] {
        let tokens = TokensByID(desired.tokens)
        var notices: [Notice] = []
        for notifier in desired.notifiers {
            let selected = { (token: TokenID, owner: String?) in notifier.selector.selects(owner: owner, namespace: token.namespace) }
            let name = notifier.metadata.name
            if let leadTimes = notifier.events.expiring {
                for entry in expiries where selected(entry.token, entry.owner) {
                    if let notice = expiring(entry, leadTimes: leadTimes, notifier: name, now: now) { notices.append(notice) }
                }
            }
            if let after = notifier.events.failingAfter {
                for failure in facts.failing where now.secondsSinceEpoch - failure.since.secondsSinceEpoch >= after.seconds {
                    guard selected(failure.token, tokens[failure.token]?.owner) else { continue }
                    notices.append(Notice(notifier: name, event: .failing,
                                          key: "failing/\(failure.token)/\(failure.action)/\(failure.since.secondsSinceEpoch)",
                                          token: failure.token, owner: tokens[failure.token]?.owner, issuer: nil, version: nil, credentialID: nil,
                                          at: failure.since, leadTime: nil,
                                          reason: "\(failure.action) of \(failure.token) has been failing since \(failure.since.minuteText): \(failure.error)"))
                }
            }
            if notifier.events.ghost, let ghosts = facts.ghosts, notifier.selector.selects(owner: nil, namespace: nil) {
                for ghost in ghosts {
                    notices.append(Notice(notifier: name, event: .ghost, key: "ghost/\(ghost.issuer)/\(ghost.credentialID)", token: nil,
                                          owner: nil, issuer: ghost.issuer, version: nil, credentialID: ghost.credentialID, at: nil,
                                          leadTime: nil,
                                          reason: "credential \(ghost.credentialID) at issuer \(ghost.issuer) is not known to tokenctl's state"))
                }
            }
            if let after = notifier.events.unusedAfter {
                for row in rows where selected(row.token, row.owner) && UnusedTokens.isUnused(row, now: now, threshold: after) {
                    guard let since = UnusedTokens.unusedSince(row) else { continue }
                    // "No use recorded": issuers that do not report use, or a controller without inventories, see none.
                    let what = row.lastUsedAt == nil ? "has no recorded use since it was issued \(since.minuteText)"
                        : "has no recorded use since \(since.minuteText)"
                    notices.append(Notice(notifier: name, event: .unused, key: "unused/\(row.token)/\(since.secondsSinceEpoch)/\(after)",
                                          token: row.token, owner: row.owner, issuer: row.issuer, version: row.version, credentialID: nil,
                                          at: since, leadTime: nil, reason: "\(row.token) \(what) (threshold \(after))"))
                }
            }
            if notifier.events.policyViolation {
                for (token, messages) in facts.held where selected(token, tokens[token]?.owner) {
                    let text = messages.sorted().joined(separator: "; ")
                    notices.append(Notice(notifier: name, event: .policyViolation, key: "policy/\(token)/\(stableHash(text))", token: token,
                                          owner: tokens[token]?.owner, issuer: nil, version: nil, credentialID: nil, at: nil, leadTime: nil,
                                          reason: "\(token) is held by a policy violation: \(text)"))
                }
            }
            if notifier.events.rateLimited {
                notices += rateLimited(facts.rateLimited, notifier: notifier, now: now)
            }
        }
        return notices.sorted { ($0.notifier, $0.event.rawValue, $0.key) < ($1.notifier, $1.event.rawValue, $1.key) }
    }

    /// One notice per limit and owner or issuer that held tokens, once per period of the limit.
    private static func rateLimited(_ held: [HeldToken], notifier: Notifier, now: Timestamp) -> [Notice] {
        let byHit = Dictionary(grouping: held.filter { $0.rateLimit != nil }) { held in
            held.rateLimit.map { "\($0.policy)/\($0.by)/\($0.subject)" } ?? ""
        }
        return byHit.keys.sorted().compactMap { group -> Notice? in
            guard let tokens = byHit[group], let hit = tokens.first?.rateLimit else { return nil }
            let owner = hit.by == "owner" ? hit.subject : nil
            guard notifier.selector.selects(owner: owner, namespace: nil) else { return nil }
            let period = max(1, hit.periodSeconds)
            let names = tokens.prefix(5).map(\.token.description).joined(separator: ", ") + (tokens.count > 5 ? ", …" : "")
            return Notice(notifier: notifier.metadata.name, event: .rateLimited, key: "rateLimited/\(group)/\(now.secondsSinceEpoch / period)",
                          token: nil, owner: owner, issuer: hit.by == "issuer" ? hit.subject : nil, version: nil, credentialID: nil,
                          at: now, leadTime: nil,
                          reason: "\(hit.by) \(hit.subject) reached the creation-rate limit of policy '\(hit.policy)' (\(hit.limit)): "
                              + "\(counted(tokens.count, "new token")) held (\(names))")
        }
    }

    private static func nextDue(desired: ManifestSet, facts: NoticeFacts, rows: [TokenStatus.Row], expiries: [ExpiryOutlook.Entry],
                                now: Timestamp) -> Timestamp? {
        var moments: [Int64] = []
        for notifier in desired.notifiers {
            for lead in notifier.events.expiring ?? [] {
                moments += expiries.map { $0.expiresAt.secondsSinceEpoch - lead.seconds }
            }
            if let after = notifier.events.failingAfter { moments += facts.failing.map { $0.since.secondsSinceEpoch + after.seconds } }
            if let after = notifier.events.unusedAfter {
                moments += rows.compactMap { UnusedTokens.unusedSince($0).map { $0.secondsSinceEpoch + after.seconds } }
            }
        }
        return moments.filter { $0 > now.secondsSinceEpoch }.min().map(Timestamp.init(secondsSinceEpoch:))
    }

    /// The notice of the shortest lead time already reached, if any: reaching 3d after a missed 14d sends one notice.
    private static func expiring(_ entry: ExpiryOutlook.Entry, leadTimes: [TokenDuration], notifier: String, now: Timestamp) -> Notice? {
        let left = entry.expiresAt.secondsSinceEpoch - now.secondsSinceEpoch
        guard let lead = leadTimes.filter({ left <= $0.seconds }).min(by: { $0.seconds < $1.seconds }) else { return nil }
        let what = entry.isException ? "the permanent-token exception of \(entry.token)" : "\(entry.token) v\(entry.version)"
        let when = left <= 0 ? "expired \(entry.expiresAt.minuteText)" : "expires \(entry.expiresAt.minuteText) (within \(lead))"
        let why = entry.isException ? "renew the exception or retire the token" : "no rotation will replace it before then"
        return Notice(notifier: notifier, event: .expiring, key: "expiring/\(entry.token)/\(entry.expiresAt.secondsSinceEpoch)/\(lead)",
                      token: entry.token, owner: entry.owner, issuer: entry.issuer, version: entry.version, credentialID: nil,
                      at: entry.expiresAt, leadTime: lead, reason: "\(what) \(when); \(why)")
    }

    /// FNV-1a, hex: stable across processes and machines, unlike `Hasher`.
    static func stableHash(_ text: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return String(hash, radix: 16)
    }
}
