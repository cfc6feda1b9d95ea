import TokenctlModel
import TokenctlPlanner

/// What a reconcile pass is asked to do.
package struct PassRequest: Sendable {
    /// The moment the pass plans for.
    package var now: Timestamp
    /// Keys (see `RetryBook.key(of:)`) of tokens whose changes wait for their backoff to end.
    package var deferred: Set<String>

    /// Creates a request.
    package init(now: Timestamp, deferred: Set<String>) {
        self.now = now
        self.deferred = deferred
    }
}

/// How a reconcile pass went: the data the controller turns into retries, health and metrics.
package struct PassOutcome: Sendable {
    /// The overall result.
    package enum Result: String, Sendable, CaseIterable {
        /// Every planned change was applied (or there was nothing to do).
        case success
        /// The pass ran, but some changes failed; they are retried with backoff.
        case partial
        /// The pass could not run: state unreachable or locked, no usable manifests.
        case failed
    }

    /// One change that was attempted.
    package struct Change: Sendable, Equatable {
        /// The retry key of its token.
        package var key: String
        /// What it did.
        package var action: PlanAction
        /// Why it failed, or nil when it succeeded.
        package var failure: String?

        /// Creates a change record.
        package init(key: String, action: PlanAction, failure: String?) {
            self.key = key
            self.action = action
            self.failure = failure
        }
    }

    /// The result.
    package var result: Result
    /// Whether the state could be opened, locked and read.
    package var stateReachable: Bool
    /// Why the pass failed, when it did (free of secrets).
    package var error: String?
    /// Whether the manifests read in this pass were valid; when not, the last good set was used.
    package var manifestsValid: Bool
    /// Errors and policy violations in the manifests read in this pass.
    package var manifestErrors: Int
    /// The changes attempted.
    package var changes: [Change]
    /// Keys of every token that had a change planned, applied or deferred.
    package var plannedKeys: Set<String>
    /// How many planned changes waited for their backoff.
    package var deferredCount: Int
    /// The next moment a rotation, retirement or expiry falls due after this pass.
    package var nextDueAt: Timestamp?
    /// How the managed tokens stand after the pass, when the state was read.
    package var fleet: FleetSnapshot?
    /// Set when this replica did not act because another holds the lease on shared state: who leads.
    package var standbyFor: String?
    /// Set when the pass acted on nothing because its plan would retire more tokens than allowed: how many.
    package var heldRetirements: Int?

    /// Creates an outcome.
    package init(result: Result, stateReachable: Bool, error: String? = nil, manifestsValid: Bool = true, manifestErrors: Int = 0,
                changes: [Change] = [], plannedKeys: Set<String> = [], deferredCount: Int = 0, nextDueAt: Timestamp? = nil,
                fleet: FleetSnapshot? = nil) {
        self.result = result
        self.stateReachable = stateReachable
        self.error = error
        self.manifestsValid = manifestsValid
        self.manifestErrors = manifestErrors
        self.changes = changes
        self.plannedKeys = plannedKeys
        self.deferredCount = deferredCount
        self.nextDueAt = nextDueAt
        self.fleet = fleet
    }

    /// A pass of a replica on standby: another replica leads; try again at `retryAt`.
    package static func standby(leader: String, retryAt: Timestamp) -> PassOutcome {
        var outcome = PassOutcome(result: .success, stateReachable: true, nextDueAt: retryAt)
        outcome.standbyFor = leader
        return outcome
    }

    /// A pass that could not reach the state.
    package static func unreachable(_ error: String, manifestsValid: Bool = true, manifestErrors: Int = 0) -> PassOutcome {
        PassOutcome(result: .failed, stateReachable: false, error: error, manifestsValid: manifestsValid, manifestErrors: manifestErrors)
    }
}

/// Counts over the managed tokens, for metrics: bounded labels only (issuer and health, never token names).
package struct FleetSnapshot: Sendable, Equatable {
    /// Tokens by issuer name and health.
    package var tokensByIssuerAndHealth: [IssuerHealth: Int]
    /// Seconds until the earliest expiry of an active credential; nil when none expires.
    package var secondsUntilEarliestExpiry: Int64?
    /// Tokens whose active credential was last used (or, never used, issued) longer ago than the unused threshold.
    package var unusedTokens: Int

    /// An issuer and a health, the labels of the token gauge.
    package struct IssuerHealth: Hashable, Sendable {
        /// The Issuer's name.
        package var issuer: String
        /// The health.
        package var health: TokenStatus.Health
    }

    /// Counts the rows of `tokenctl status`.
    package init(rows: [TokenStatus.Row], now: Timestamp, unusedAfter: TokenDuration = TokenDuration(seconds: 30 * 86_400)) {
        var counts: [IssuerHealth: Int] = [:]
        var earliest: Int64?
        var unused = 0
        for row in rows {
            counts[IssuerHealth(issuer: row.issuer, health: row.health), default: 0] += 1
            if let expiresAt = row.expiresAt {
                let left = expiresAt.secondsSinceEpoch - now.secondsSinceEpoch
                earliest = min(earliest ?? left, left)
            }
            if UnusedTokens.isUnused(row, now: now, threshold: unusedAfter) { unused += 1 }
        }
        tokensByIssuerAndHealth = counts
        secondsUntilEarliestExpiry = earliest
        unusedTokens = unused
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
