import Foundation
import Metrics
import Synchronization
import TokenctlModel
import TokenctlPlanner

/// The controller's metrics, created once; labels are bounded (result, action, issuer, health), never token names.
///
/// | Metric | Type | Labels |
/// |---|---|---|
/// | `tokenctl_reconcile_passes_total` | counter | `result` |
/// | `tokenctl_reconcile_pass_duration_seconds` | histogram | |
/// | `tokenctl_changes_total` | counter | `action`, `result` |
/// | `tokenctl_credentials_issued_total` | counter | |
/// | `tokenctl_tokens` | gauge | `issuer`, `health` |
/// | `tokenctl_tokens_needing_attention` | gauge | |
/// | `tokenctl_tokens_unused` | gauge (no use for 30 days) | |
/// | `tokenctl_earliest_expiry_seconds` | gauge (+Inf when nothing expires) | |
/// | `tokenctl_manifests_valid`, `tokenctl_manifest_errors` | gauges | |
/// | `tokenctl_state_reachable`, `tokenctl_last_success_timestamp_seconds` | gauges | |
/// | `tokenctl_leader` | gauge: 1 when this replica acts, 0 on standby (shared state) | |
/// | `tokenctl_retirements_held` | gauge: tokens a held plan would retire (retirement guard), 0 when none is held | |
package final class ControllerMetrics: Sendable {
    private let passes: [PassOutcome.Result: Counter]
    private let passDuration = Metrics.Timer(label: "tokenctl_reconcile_pass_duration_seconds", preferredDisplayUnit: .seconds)
    private let changes: [String: Counter]
    private let issued = Counter(label: "tokenctl_credentials_issued_total")
    private let needingAttention = Gauge(label: "tokenctl_tokens_needing_attention")
    private let unused = Gauge(label: "tokenctl_tokens_unused")
    private let earliestExpiry = Gauge(label: "tokenctl_earliest_expiry_seconds")
    private let manifestsValid = Gauge(label: "tokenctl_manifests_valid")
    private let manifestErrors = Gauge(label: "tokenctl_manifest_errors")
    private let stateReachable = Gauge(label: "tokenctl_state_reachable")
    private let lastSuccess = Gauge(label: "tokenctl_last_success_timestamp_seconds")
    private let leader = Gauge(label: "tokenctl_leader")
    private let retirementsHeld = Gauge(label: "tokenctl_retirements_held")
    // Token gauges by issuer and health; issuers come from the manifests, so the set is bounded by configuration.
    private let tokenGauges = Mutex<[FleetSnapshot.IssuerHealth: Gauge]>([:])

    /// Creates the instruments (through whatever metrics backend was bootstrapped).
    package init() {
        passes = Dictionary(uniqueKeysWithValues: PassOutcome.Result.allCases.map {
            ($0, Counter(label: "tokenctl_reconcile_passes_total", dimensions: [("result", $0.rawValue)]))
        })
        var changes: [String: Counter] = [:]
        for action in PlanAction.allCases {
            for result in ["success", "failure"] {
                changes[action.rawValue + "/" + result] = Counter(label: "tokenctl_changes_total",
                                                                   dimensions: [("action", action.rawValue), ("result", result)])
            }
        }
        self.changes = changes
    }

    /// Records a finished pass.
    package func record(_ outcome: PassOutcome, duration: Double, needingAttention count: Int, at now: Double) {
        passes[outcome.result]?.increment()
        passDuration.recordNanoseconds(Int64(duration * 1e9))
        for change in outcome.changes {
            changes[change.action.rawValue + "/" + (change.failure == nil ? "success" : "failure")]?.increment()
            if change.failure == nil && (change.action == .issue || change.action == .rotate) { issued.increment() }
        }
        needingAttention.record(count)
        manifestsValid.record(outcome.manifestsValid ? 1 : 0)
        manifestErrors.record(outcome.manifestErrors)
        stateReachable.record(outcome.stateReachable ? 1 : 0)
        if outcome.stateReachable { retirementsHeld.record(outcome.heldRetirements ?? 0) }
        if outcome.result != .failed { lastSuccess.record(now) }
        if outcome.result != .failed { leader.record(outcome.standbyFor == nil ? 1 : 0) }
        if let fleet = outcome.fleet { record(fleet) }
    }

    private func record(_ fleet: FleetSnapshot) {
        unused.record(fleet.unusedTokens)
        earliestExpiry.record(fleet.secondsUntilEarliestExpiry.map(Double.init) ?? .infinity)
        tokenGauges.withLock { tokenGauges in
            for labels in fleet.tokensByIssuerAndHealth.keys where tokenGauges[labels] == nil {
                tokenGauges[labels] = Gauge(label: "tokenctl_tokens", dimensions: [("issuer", labels.issuer), ("health", labels.health.rawValue)])
            }
            // Combinations that emptied drop to zero rather than keep their last count.
            for (labels, gauge) in tokenGauges { gauge.record(fleet.tokensByIssuerAndHealth[labels] ?? 0) }
        }
    }
}
