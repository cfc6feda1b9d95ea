import TokenctlModel
import TokenctlPlanner

/// Counts over the managed tokens, for metrics: bounded labels only (issuer, health, expiry bucket), never token names.
///
/// ```swift
/// let fleet = FleetSnapshot(rows: TokenStatus.rows(state, now: now), now: now, desired: manifests, held: [])
/// fleet.expiring[.init(issuer: "github", within: .days7, rotation: .none)]   // tokens nobody will rotate in time
/// ```
package struct FleetSnapshot: Sendable, Equatable {
    /// Tokens by issuer name and health.
    package var tokensByIssuerAndHealth: [IssuerHealth: Int]
    /// Seconds until the earliest expiry of an active credential; nil when none expires.
    package var secondsUntilEarliestExpiry: Int64?
    /// Tokens whose active credential was last used (or, never used, issued) longer ago than the unused threshold.
    package var unusedTokens: Int
    /// Tokens by issuer, expiry bucket and whether a rotation will replace them in time. Cumulative: a token counts in
    /// every bucket at least as long as its time left, and an expired token counts in all of them.
    package var expiring: [ExpiryBucket: Int]
    /// Every token's expiry (its credential's, or for a permanent token its exception's), for the opt-in per-token gauge.
    package var expiries: [TokenExpiry]

    /// An issuer and a health, the labels of the token gauge.
    package struct IssuerHealth: Hashable, Sendable {
        /// The Issuer's name.
        package var issuer: String
        /// The health.
        package var health: TokenStatus.Health
    }

    /// How far off an expiry lies, as the `within` label of `tokenctl_tokens_expiring`.
    package enum Horizon: String, Sendable, CaseIterable, Comparable {
        case day1 = "1d", days3 = "3d", days7 = "7d", days14 = "14d", days30 = "30d"

        /// The horizon's length in seconds.
        package var seconds: Int64 {
            switch self {
            case .day1: 86_400
            case .days3: 3 * 86_400
            case .days7: 7 * 86_400
            case .days14: 14 * 86_400
            case .days30: 30 * 86_400
            }
        }

        package static func < (lhs: Horizon, rhs: Horizon) -> Bool { lhs.seconds < rhs.seconds }
    }

    /// Whether an automatic rotation will replace a credential before it expires: the `rotation` label.
    package enum Replacement: String, Sendable, CaseIterable {
        /// A rotation falls due before the expiry.
        case scheduled
        /// Nothing will replace it in time: a permanent token's exception, a token held by policy, no rotation due
        /// before the expiry.
        case none
    }

    /// The labels of one expiry gauge.
    package struct ExpiryBucket: Hashable, Sendable {
        /// The Issuer's name.
        package var issuer: String
        /// The horizon.
        package var within: Horizon
        /// Whether a rotation replaces the credential in time.
        package var rotation: Replacement
    }

    /// One token's expiry, for the per-token gauge.
    package struct TokenExpiry: Hashable, Sendable {
        /// The token.
        package var token: TokenID
        /// Its issuer.
        package var issuer: String
        /// When its credential, or its permanent exception, expires.
        package var expiresAt: Timestamp
        /// Whether a rotation replaces it in time.
        package var rotation: Replacement
    }

    /// Counts the rows of `tokenctl status`. `desired` supplies permanent tokens' exception expiries; `held` are the
    /// tokens a policy violation keeps from getting a new credential.
    package init(rows: [TokenStatus.Row], now: Timestamp, desired: ManifestSet? = nil, held: Set<TokenID> = [],
                 unusedAfter: TokenDuration = TokenDuration(seconds: 30 * 86_400)) {
        var exceptionExpiries: [TokenID: Timestamp] = [:]
        for token in desired?.tokens ?? [] where token.lifespan == .never {
            if let exception = token.exception { exceptionExpiries[token.id] = exception.expires }
        }
        var counts: [IssuerHealth: Int] = [:]
        var earliest: Int64?
        var unused = 0
        var expiring: [ExpiryBucket: Int] = [:]
        var expiries: [TokenExpiry] = []
        for row in rows {
            counts[IssuerHealth(issuer: row.issuer, health: row.health), default: 0] += 1
            if let expiresAt = row.expiresAt {
                let left = expiresAt.secondsSinceEpoch - now.secondsSinceEpoch
                earliest = min(earliest ?? left, left)
            }
            if UnusedTokens.isUnused(row, now: now, threshold: unusedAfter) { unused += 1 }
            guard row.version != nil, let expiresAt = row.expiresAt ?? exceptionExpiries[row.token] else { continue }
            let rotation: Replacement
            if row.expiresAt == nil || held.contains(row.token) {
                rotation = .none
            } else if let next = row.nextRotationAt, next < expiresAt {
                rotation = .scheduled
            } else {
                rotation = .none
            }
            expiries.append(TokenExpiry(token: row.token, issuer: row.issuer, expiresAt: expiresAt, rotation: rotation))
            let left = expiresAt.secondsSinceEpoch - now.secondsSinceEpoch
            for horizon in Horizon.allCases where left <= horizon.seconds {
                expiring[ExpiryBucket(issuer: row.issuer, within: horizon, rotation: rotation), default: 0] += 1
            }
        }
        tokensByIssuerAndHealth = counts
        secondsUntilEarliestExpiry = earliest
        unusedTokens = unused
        self.expiring = expiring
        self.expiries = expiries
    }
}

/// Which tokens count as unused: the rule shared by `status --unused` and the unused-token metric.
package enum UnusedTokens {
    /// Whether a token with an active credential has gone unused for `threshold`: its last use (of any version),
    /// or when it was never used, its first issue, lies further back. A token issued yesterday is not unused, only
    /// new; a token rotated weekly but never used is unused after 30 days.
    package static func isUnused(_ row: TokenStatus.Row, now: Timestamp, threshold: TokenDuration) -> Bool {
        guard row.version != nil, let since = row.lastUsedAt ?? row.managedSince ?? row.issuedAt else { return false }
        return now.secondsSinceEpoch - since.secondsSinceEpoch >= threshold.seconds
    }
}
