import TokenctlModel

/// When each managed token's credential expires and whether an automatic rotation replaces it in time: the rule shared
/// by the expiry metrics and the expiry notices.
///
/// ```swift
/// let entries = ExpiryOutlook.entries(rows: TokenStatus.rows(state, now: now), desired: manifests, held: [])
/// entries.filter { $0.rotation == .none }   // credentials nobody will replace before they expire
/// ```
package enum ExpiryOutlook {
    /// Whether an automatic rotation will replace a credential before it expires.
    package enum Replacement: String, Sendable, CaseIterable, Codable {
        /// A rotation falls due before the expiry.
        case scheduled
        /// Nothing will replace it in time: a permanent token's exception, a token held by policy, no rotation due
        /// before the expiry.
        case none
    }

    /// One token's expiry.
    package struct Entry: Hashable, Sendable {
        /// The token.
        package var token: TokenID
        /// Its owner.
        package var owner: String
        /// Its issuer.
        package var issuer: String
        /// The active credential's version.
        package var version: Int
        /// When its credential, or for a permanent token its exception, expires.
        package var expiresAt: Timestamp
        /// Whether a rotation replaces it in time.
        package var rotation: Replacement
        /// Whether `expiresAt` is a permanent token's exception rather than a credential's expiry.
        package var isException: Bool
    }

    /// The expiry of every token with an active credential that expires. `desired` supplies permanent tokens' exception
    /// expiries; `held` are the tokens a policy violation keeps from getting a new credential.
    package static func entries(rows: [TokenStatus.Row], desired: ManifestSet?, held: Set<TokenID>) -> [Entry] {
        var exceptionExpiries: [TokenID: Timestamp] = [:]
        for token in desired?.tokens ?? [] where token.lifespan == .never {
            if let exception = token.exception { exceptionExpiries[token.id] = exception.expires }
        }
        return rows.compactMap { row in
            guard let version = row.version, let expiresAt = row.expiresAt ?? exceptionExpiries[row.token] else { return nil }
            let rotation: Replacement
            if row.expiresAt == nil || held.contains(row.token) {
                rotation = .none
            } else if let next = row.nextRotationAt, next < expiresAt {
                rotation = .scheduled
            } else {
                rotation = .none
            }
            return Entry(token: row.token, owner: row.owner, issuer: row.issuer, version: version, expiresAt: expiresAt,
                         rotation: rotation, isException: row.expiresAt == nil)
        }
    }
}

/// Which tokens count as unused: the rule shared by `status --unused`, the unused-token metric and unused notices.
package enum UnusedTokens {
    /// Whether a token with an active credential has gone unused for `threshold`: its last use (of any version),
    /// or when it was never used, its first issue, lies further back. A token issued yesterday is not unused, only
    /// new; a token rotated weekly but never used is unused after 30 days.
    package static func isUnused(_ row: TokenStatus.Row, now: Timestamp, threshold: TokenDuration) -> Bool {
        guard let since = unusedSince(row) else { return false }
        return now.secondsSinceEpoch - since.secondsSinceEpoch >= threshold.seconds
    }

    /// Since when a token with an active credential has gone unused: its last use, else its first issue.
    package static func unusedSince(_ row: TokenStatus.Row) -> Timestamp? {
        guard row.version != nil else { return nil }
        return row.lastUsedAt ?? row.managedSince ?? row.issuedAt
    }
}
