import Foundation
import Metrics
import Synchronization
import TokenctlModel
import TokenctlPlanner

/// The controller's metrics, created once; labels are bounded (result, action, issuer, health, expiry bucket, owners up
/// to a cap), never token names unless the operator opts in to the per-token gauge.
///
/// | Metric | Type | Labels |
/// |---|---|---|
/// | `tokenctl_reconcile_passes_total` | counter | `result` |
/// | `tokenctl_reconcile_pass_duration_seconds` | histogram | |
/// | `tokenctl_changes_total` | counter | `action`, `result` |
/// | `tokenctl_credentials_issued_total` | counter | `issuer`, `owner` (owners past the cap: `_other`) |
/// | `tokenctl_tokens` | gauge | `issuer`, `health` |
/// | `tokenctl_tokens_expiring` | gauge, cumulative over `within` | `issuer`, `within` (1d…30d), `rotation` (scheduled, none) |
/// | `tokenctl_failing_changes` | gauge, cumulative over `failing_for` | `action`, `failing_for` (0s, 1h, 6h, 1d, 3d) |
/// | `tokenctl_ghosts` | gauge (only with `--refresh`) | `issuer` |
/// | `tokenctl_tokens_needing_attention` | gauge | |
/// | `tokenctl_tokens_unused` | gauge (no use for 30 days) | |
/// | `tokenctl_earliest_expiry_seconds` | gauge (+Inf when nothing expires) | |
/// | `tokenctl_manifests_valid`, `tokenctl_manifest_errors` | gauges | |
/// | `tokenctl_state_reachable`, `tokenctl_last_success_timestamp_seconds`, `tokenctl_ready` | gauges | |
/// | `tokenctl_leader` | gauge: 1 when this replica acts, 0 on standby (shared state) or after a failed pass | |
/// | `tokenctl_retirements_held` | gauge: tokens a held plan would retire (retirement guard), 0 when none is held | |
/// | `tokenctl_token_expiration_timestamp_seconds` | gauge, opt-in (`--metrics-per-token`) | `namespace`, `name`, `issuer`, `rotation` |
package final class ControllerMetrics: Sendable {
    /// Each metric's `# HELP` text.
    package static let help: [String: String] = [
        "tokenctl_reconcile_passes_total": "Reconcile passes by result (success, partial: some changes failed, failed: the pass could not run).",
        "tokenctl_reconcile_pass_duration_seconds": "How long reconcile passes take.",
        "tokenctl_changes_total": "Planned changes applied, by action and result.",
        "tokenctl_credentials_issued_total": "Credentials issued (first issues and rotations) by issuer and owner; owners past the cap count as _other.",
        "tokenctl_tokens": "Managed tokens by issuer and health.",
        "tokenctl_tokens_expiring": "Tokens whose credential (a permanent token: its exception) expires within the horizon, expired ones included, "
            + "by issuer and whether a rotation replaces it in time.",
        "tokenctl_failing_changes": "Changes that keep failing and are retried, by action and how long they have failed at least.",
        "tokenctl_ghosts": "Credentials at an issuer that the state does not know (read with --refresh).",
        "tokenctl_tokens_needing_attention": "Tokens whose changes keep failing.",
        "tokenctl_tokens_unused": "Tokens whose credentials have not been used for 30 days.",
        "tokenctl_earliest_expiry_seconds": "Seconds until the earliest expiry of an active credential (+Inf when none expires).",
        "tokenctl_manifests_valid": "1 when the manifests read last were valid; 0 when the last valid set stays in force.",
        "tokenctl_manifest_errors": "Errors and policy violations in the manifests read last.",
        "tokenctl_state_reachable": "1 when the last pass could open, lock and read the state.",
        "tokenctl_last_success_timestamp_seconds": "When the last pass that reached the state ended (Unix time).",
        "tokenctl_ready": "1 when /readyz answers 200.",
        "tokenctl_leader": "1 when this replica holds the lease and acts; 0 on standby or after a failed pass.",
        "tokenctl_retirements_held": "Tokens a plan held by the retirement guard would retire; 0 when none is held.",
        "tokenctl_token_expiration_timestamp_seconds": "When each token's credential (a permanent token: its exception) expires (Unix time).",
    ]
    /// How many owners get their own `owner` label on the issue counter; later ones share `_other`.
    package static let ownerLabelCap = 100
    /// The `failing_for` buckets of `tokenctl_failing_changes`, in seconds.
    package static let failureAges: [(label: String, seconds: Int64)] = [("0s", 0), ("1h", 3_600), ("6h", 21_600),
                                                                         ("1d", 86_400), ("3d", 259_200)]

    private struct IssueLabels: Hashable {
        var issuer: String
        var owner: String
    }

    private struct IssueCounters {
        var owners: Set<String> = []
        var counters: [IssueLabels: Counter] = [:]
    }

    private let factory: MetricsFactory
    private let perToken: Bool
    private let passes: [PassOutcome.Result: Counter]
    private let passDuration: Metrics.Timer
    private let changes: [String: Counter]
    private let failing: [String: Gauge]
    private let needingAttention: Gauge
    private let unused: Gauge
    private let earliestExpiry: Gauge
    private let manifestsValid: Gauge
    private let manifestErrors: Gauge
    private let stateReachable: Gauge
    private let lastSuccess: Gauge
    private let ready: Gauge
    private let leader: Gauge
    private let retirementsHeld: Gauge
    // Instruments whose label values come from the manifests (issuers, owners, tokens): made when first seen.
    private let issued = Mutex<IssueCounters>(IssueCounters())
    private let tokenGauges = Mutex<[FleetSnapshot.IssuerHealth: Gauge]>([:])
    private let expiringGauges = Mutex<[FleetSnapshot.ExpiryBucket: Gauge]>([:])
    private let ghostGauges = Mutex<[String: Gauge]>([:])
    private let tokenExpiryGauges = Mutex<[TokenID: (gauge: Gauge, labels: FleetSnapshot.TokenExpiry)]>([:])

    /// Creates the instruments through `factory` (by default whatever metrics backend was bootstrapped).
    /// `perToken` adds one expiry gauge per token: as many series as tokens, so only for fleets a Prometheus can hold.
    package init(perToken: Bool = false, factory: MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        self.perToken = perToken
        passes = Dictionary(uniqueKeysWithValues: PassOutcome.Result.allCases.map {
            ($0, Counter(label: "tokenctl_reconcile_passes_total", dimensions: [("result", $0.rawValue)], factory: factory))
        })
        passDuration = Metrics.Timer(label: "tokenctl_reconcile_pass_duration_seconds", preferredDisplayUnit: .seconds, factory: factory)
        var changes: [String: Counter] = [:]
        var failing: [String: Gauge] = [:]
        for action in PlanAction.allCases {
            for result in ["success", "failure"] {
                changes[action.rawValue + "/" + result] = Counter(label: "tokenctl_changes_total",
                                                                   dimensions: [("action", action.rawValue), ("result", result)],
                                                                   factory: factory)
            }
            for age in Self.failureAges {
                failing[action.rawValue + "/" + age.label] = Gauge(label: "tokenctl_failing_changes",
                                                                  dimensions: [("action", action.rawValue), ("failing_for", age.label)],
                                                                  factory: factory)
            }
        }
        self.changes = changes
        self.failing = failing
        needingAttention = Gauge(label: "tokenctl_tokens_needing_attention", factory: factory)
        unused = Gauge(label: "tokenctl_tokens_unused", factory: factory)
        earliestExpiry = Gauge(label: "tokenctl_earliest_expiry_seconds", factory: factory)
        manifestsValid = Gauge(label: "tokenctl_manifests_valid", factory: factory)
        manifestErrors = Gauge(label: "tokenctl_manifest_errors", factory: factory)
        stateReachable = Gauge(label: "tokenctl_state_reachable", factory: factory)
        lastSuccess = Gauge(label: "tokenctl_last_success_timestamp_seconds", factory: factory)
        ready = Gauge(label: "tokenctl_ready", factory: factory)
        leader = Gauge(label: "tokenctl_leader", factory: factory)
        retirementsHeld = Gauge(label: "tokenctl_retirements_held", factory: factory)
    }

    /// Records a finished pass, the retry book after it and whether the controller now calls itself ready.
    package func record(_ outcome: PassOutcome, duration: Double, retries: RetryBook, ready isReady: Bool, at now: Double) {
        passes[outcome.result]?.increment()
        passDuration.recordNanoseconds(Int64(duration * 1e9))
        for change in outcome.changes {
            changes[change.action.rawValue + "/" + (change.failure == nil ? "success" : "failure")]?.increment()
            if change.failure == nil && (change.action == .issue || change.action == .rotate) {
                countIssue(issuer: change.issuer ?? "unknown", owner: change.owner ?? "unknown")
            }
        }
        record(retries, now: now)
        ready.record(isReady ? 1 : 0)
        manifestsValid.record(outcome.manifestsValid ? 1 : 0)
        manifestErrors.record(outcome.manifestErrors)
        stateReachable.record(outcome.stateReachable ? 1 : 0)
        if outcome.stateReachable { retirementsHeld.record(outcome.heldRetirements ?? 0) }
        if outcome.result != .failed { lastSuccess.record(now) }
        // A failed pass gives up the lease, so only a replica whose pass ran and did not stand by acts.
        leader.record(outcome.result != .failed && outcome.standbyFor == nil ? 1 : 0)
        if let fleet = outcome.fleet { record(fleet) }
        if let ghosts = outcome.ghosts { record(ghosts: ghosts) }
    }

    private func countIssue(issuer: String, owner: String) {
        let factory = self.factory
        issued.withLock { issued in
            var owner = owner
            if !issued.owners.contains(owner) {
                if issued.owners.count < Self.ownerLabelCap { issued.owners.insert(owner) } else { owner = "_other" }
            }
            let labels = IssueLabels(issuer: issuer, owner: owner)
            let counter = issued.counters[labels] ?? Counter(label: "tokenctl_credentials_issued_total",
                                                              dimensions: [("issuer", issuer), ("owner", owner)], factory: factory)
            issued.counters[labels] = counter
            counter.increment()
        }
    }

    private func record(_ retries: RetryBook, now: Double) {
        needingAttention.record(retries.entries.count)
        var counts: [String: Int] = [:]
        for entry in retries.entries.values {
            let age = Int64(now) - entry.firstFailedAt.secondsSinceEpoch
            for bucket in Self.failureAges where age >= bucket.seconds { counts[entry.action + "/" + bucket.label, default: 0] += 1 }
        }
        for (key, gauge) in failing { gauge.record(counts[key] ?? 0) }
    }

    private func record(_ fleet: FleetSnapshot) {
        unused.record(fleet.unusedTokens)
        earliestExpiry.record(fleet.secondsUntilEarliestExpiry.map(Double.init) ?? .infinity)
        // Combinations that emptied drop to zero rather than keep their last count.
        let factory = self.factory
        tokenGauges.withLock { gauges in
            for labels in fleet.tokensByIssuerAndHealth.keys where gauges[labels] == nil {
                gauges[labels] = Gauge(label: "tokenctl_tokens", dimensions: [("issuer", labels.issuer), ("health", labels.health.rawValue)],
                                       factory: factory)
            }
            for (labels, gauge) in gauges { gauge.record(fleet.tokensByIssuerAndHealth[labels] ?? 0) }
        }
        expiringGauges.withLock { gauges in
            // Every bucket of an issuer that has tokens exists, so that alert rules see zeros rather than absent series.
            for issuer in Set(fleet.tokensByIssuerAndHealth.keys.map(\.issuer)) {
                for within in FleetSnapshot.Horizon.allCases {
                    for rotation in FleetSnapshot.Replacement.allCases {
                        let labels = FleetSnapshot.ExpiryBucket(issuer: issuer, within: within, rotation: rotation)
                        if gauges[labels] == nil {
                            gauges[labels] = Gauge(label: "tokenctl_tokens_expiring", dimensions: [
                                ("issuer", issuer), ("within", within.rawValue), ("rotation", rotation.rawValue),
                            ], factory: factory)
                        }
                    }
                }
            }
            for (labels, gauge) in gauges { gauge.record(fleet.expiring[labels] ?? 0) }
        }
        if perToken { recordPerToken(fleet.expiries) }
    }

    private func recordPerToken(_ expiries: [FleetSnapshot.TokenExpiry]) {
        let factory = self.factory
        tokenExpiryGauges.withLock { gauges in
            let current = Dictionary(expiries.map { ($0.token, $0) }, uniquingKeysWith: { first, _ in first })
            // A token that left, or whose issuer or rotation label changed, loses its series instead of keeping a stale one.
            for (token, entry) in gauges where current[token].map({ $0.issuer != entry.labels.issuer || $0.rotation != entry.labels.rotation }) ?? true {
                entry.gauge.destroy()
                gauges[token] = nil
            }
            for (token, expiry) in current {
                if gauges[token] == nil {
                    let gauge = Gauge(label: "tokenctl_token_expiration_timestamp_seconds", dimensions: [
                        ("namespace", token.namespace), ("name", token.name), ("issuer", expiry.issuer), ("rotation", expiry.rotation.rawValue),
                    ], factory: factory)
                    gauges[token] = (gauge, expiry)
                }
                gauges[token]?.gauge.record(Double(expiry.expiresAt.secondsSinceEpoch))
            }
        }
    }

    private func record(ghosts: [String: Int]) {
        let factory = self.factory
        ghostGauges.withLock { gauges in
            for issuer in ghosts.keys where gauges[issuer] == nil {
                gauges[issuer] = Gauge(label: "tokenctl_ghosts", dimensions: [("issuer", issuer)], factory: factory)
            }
            for (issuer, gauge) in gauges { gauge.record(ghosts[issuer] ?? 0) }
        }
    }
}
