import TokenctlModel
import TokenctlPlanner

/// What a reconcile pass is asked to do.
package struct PassRequest: Sendable {
    /// The moment the pass plans for.
    package var now: Timestamp
    /// Keys (see `RetryBook.key(of:)`) of tokens whose changes wait for their backoff to end.
    package var deferred: Set<String>
    /// The changes that keep failing, for failure notices.
    package var failing: [RetryBook.Entry]

    /// Creates a request.
    package init(now: Timestamp, deferred: Set<String>, failing: [RetryBook.Entry] = []) {
        self.now = now
        self.deferred = deferred
        self.failing = failing
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
        /// The Issuer it went to, when known.
        package var issuer: String?
        /// Its token's owner, when the token is in the manifests.
        package var owner: String?

        /// Creates a change record.
        package init(key: String, action: PlanAction, failure: String?, issuer: String? = nil, owner: String? = nil) {
            self.key = key
            self.action = action
            self.failure = failure
            self.issuer = issuer
            self.owner = owner
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
    /// Ghost credentials (at an issuer, unknown to the state) by issuer, when the pass asked issuers for their
    /// inventories; nil when it did not.
    package var ghosts: [String: Int]?
    /// Notices this pass queued for delivery.
    package var noticesQueued = 0
    /// Until when nothing falls due (no rotation, retirement, expiry, notice, health change or policy exception ending)
    /// unless the manifests or the state change: a later pass before then may reuse this one's findings. Nil when the
    /// pass changed or deferred something, or failed.
    package var settledUntil: Timestamp?
    /// Whether the pass reused the previous pass's findings: neither the manifest files nor the state had changed and
    /// nothing had fallen due, so nothing was read, planned or applied.
    package var reused = false

    /// Creates an outcome.
    package init(result: Result, stateReachable: Bool, error: String? = nil, manifestsValid: Bool = true, manifestErrors: Int = 0,
                changes: [Change] = [], plannedKeys: Set<String> = [], deferredCount: Int = 0, nextDueAt: Timestamp? = nil,
                fleet: FleetSnapshot? = nil, ghosts: [String: Int]? = nil) {
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
        self.ghosts = ghosts
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
