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
    /// The earliest expiry of an active credential.
    private var earliestExpiry: Timestamp?
    /// Since when each token with an active credential has gone unused, in seconds since the epoch, sorted.
    private var unusedSince: [Int64]
    private var unusedAfter: TokenDuration

    /// How long a token goes unused before it counts as unused.
    package static let defaultUnusedAfter = TokenDuration(seconds: 30 * 86_400)

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

    /// Whether a rotation replaces a credential in time: the `rotation` label.
    package typealias Replacement = ExpiryOutlook.Replacement

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
    package typealias TokenExpiry = ExpiryOutlook.Entry

    /// Counts the rows of `tokenctl status`. `desired` supplies permanent tokens' exception expiries; `held` are the
    /// tokens a policy violation keeps from getting a new credential.
    package init(rows: [TokenStatus.Row], now: Timestamp, desired: ManifestSet? = nil, held: Set<TokenID> = [],
                 unusedAfter: TokenDuration = defaultUnusedAfter) {
        var counts: [IssuerHealth: Int] = [:]
        var earliest: Timestamp?
        var unusedSince: [Int64] = []
        for row in rows {
            counts[IssuerHealth(issuer: row.issuer, health: row.health), default: 0] += 1
            if let expiresAt = row.expiresAt { earliest = min(earliest ?? expiresAt, expiresAt) }
            if let since = UnusedTokens.unusedSince(row) { unusedSince.append(since.secondsSinceEpoch) }
        }
        tokensByIssuerAndHealth = counts
        earliestExpiry = earliest
        self.unusedSince = unusedSince.sorted()
        self.unusedAfter = unusedAfter
        expiries = ExpiryOutlook.entries(rows: rows, desired: desired, held: held)
        secondsUntilEarliestExpiry = nil
        unusedTokens = 0
        expiring = [:]
        advance(to: now)
    }

    /// The same fleet at a later moment, read from nothing: what depends only on the time (the expiry buckets, the time
    /// until the earliest expiry, the unused count) moves on. Health changes at moments the controller plans a pass for.
    package func advanced(to now: Timestamp) -> FleetSnapshot {
        var later = self
        later.advance(to: now)
        return later
    }

    private mutating func advance(to now: Timestamp) {
        secondsUntilEarliestExpiry = earliestExpiry.map { $0.secondsSinceEpoch - now.secondsSinceEpoch }
        // Unused: gone unused since at or before `now - threshold` (the sorted times make this a binary search).
        let cutoff = now.secondsSinceEpoch - unusedAfter.seconds
        var low = 0, high = unusedSince.count
        while low < high {
            let middle = (low + high) / 2
            if unusedSince[middle] <= cutoff { low = middle + 1 } else { high = middle }
        }
        unusedTokens = low
        var expiring: [ExpiryBucket: Int] = [:]
        for expiry in expiries {
            let left = expiry.expiresAt.secondsSinceEpoch - now.secondsSinceEpoch
            for horizon in Horizon.allCases where left <= horizon.seconds {
                expiring[ExpiryBucket(issuer: expiry.issuer, within: horizon, rotation: expiry.rotation), default: 0] += 1
            }
        }
        self.expiring = expiring
    }
}
