import Foundation
import Synchronization
import TokenctlModel

/// How the controller stands, shared between the watch loop (which writes) and the HTTP probes (which read).
///
/// ```swift
/// let health = ControllerHealth(staleAfter: 660)
/// health.record(outcome, at: now)
/// health.readiness(at: now)   // (ready: true, reason: "last pass succeeded 3s ago")
/// ```
package final class ControllerHealth: Sendable {
    /// A copy of the controller's condition at one moment.
    package struct Snapshot: Sendable, Equatable {
        /// When the last pass ended (seconds since the epoch).
        package var lastPassAt: Double?
        /// When the last pass that reached the state ended.
        package var lastSuccessAt: Double?
        /// The last pass's result.
        package var lastResult: PassOutcome.Result?
        /// Whether the last pass could open, lock and read the state.
        package var stateReachable = false
        /// Why the last pass failed, if it did.
        package var lastError: String?
        /// Whether the manifests read last were valid.
        package var manifestsValid = true
        /// Tokens whose changes keep failing.
        package var needsAttention: [RetryBook.Entry] = []
        /// Who leads, when this replica is on standby (shared state).
        package var standbyFor: String?
    }

    /// How long after the last successful pass the controller stops calling itself ready.
    package let staleAfter: Double
    private let current = Mutex(Snapshot())

    /// Creates the health record of a controller that has not run a pass yet (not ready).
    package init(staleAfter: Double) {
        self.staleAfter = staleAfter
    }

    /// The current condition.
    package var snapshot: Snapshot {
        current.withLock { $0 }
    }

    /// Records a finished pass and the retry book after it.
    package func record(_ outcome: PassOutcome, retries: RetryBook, at now: Double) {
        current.withLock { current in
            current.lastPassAt = now
            current.lastResult = outcome.result
            current.stateReachable = outcome.stateReachable
            current.lastError = outcome.error
            current.manifestsValid = outcome.manifestsValid
            if outcome.result != .failed { current.lastSuccessAt = now }
            current.needsAttention = retries.entries.values.sorted { $0.key < $1.key }
            current.standbyFor = outcome.standbyFor
        }
    }

    /// Whether the controller is ready (it reached the state recently), and why or why not.
    package func readiness(at now: Double) -> (ready: Bool, reason: String) {
        let state = snapshot
        guard let lastPass = state.lastPassAt else { return (false, "no reconcile pass has finished yet") }
        guard state.lastResult != .failed, state.stateReachable, let lastSuccess = state.lastSuccessAt else {
            return (false, "the last pass (\(Self.age(now - lastPass)) ago) failed: \(state.lastError ?? "unknown error")")
        }
        if now - lastSuccess > staleAfter {
            return (false, "no pass has succeeded for \(Self.age(now - lastSuccess))")
        }
        var reason = "the last pass succeeded \(Self.age(now - lastSuccess)) ago"
        if let leader = state.standbyFor { reason = "standby: \(leader) holds the lease and acts; checked \(Self.age(now - lastSuccess)) ago" }
        if !state.manifestsValid { reason += "; the manifests have errors, the last valid set is in force" }
        if !state.needsAttention.isEmpty { reason += "; \(state.needsAttention.count) token(s) need attention" }
        return (true, reason)
    }

    private static func age(_ seconds: Double) -> String {
        seconds < 120 ? "\(Int(seconds.rounded()))s" : "\(Int(seconds / 60))m"
    }
}
