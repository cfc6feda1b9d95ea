import TokenctlController
import TokenctlManifest
import TokenctlModel
import TokenctlPlanner

/// Gathers what notices are computed from: the state's tokens with their last use, the policy holds judged at `now`,
/// the controller's failing changes and, when the issuers were asked, the ghosts a plan reports.
///
/// ```swift
/// let facts = NoticeSurvey.facts(desired: manifests, state: state, lastUsed: lastUsed, failing: retries, plan: nil, now: now)
/// let due = NoticePlanner.due(desired: manifests, facts: facts, now: now)
/// ```
package enum NoticeSurvey {
    /// The facts at `now`. `failing` are the controller's retry entries (from its status file or its memory); `plan` is a
    /// plan made with the issuers' inventories, whose ghost changes are the ghosts (nil: ghosts unknown).
    package static func facts(desired: ManifestSet, state: RecordedState, lastUsed: [String: Timestamp], failing: [RetryBook.Entry],
                              plan: Plan?, now: Timestamp) -> NoticeFacts {
        let rows = TokenStatus.rows(state, lastUsed: lastUsed, now: now)
        let held = PolicyChecker.holds(PolicyChecker.check(desired, now: now).filter { $0.severity == .policy })
        let failures = failing.compactMap { entry in
            TokenID(text: entry.key).map { NoticeFacts.Failing(token: $0, action: entry.action, since: entry.firstFailedAt, error: entry.lastError) }
        }
        let ghosts = plan.map { $0.changes.compactMap { $0.action == .ghost ? $0.ghost : nil } }
        return NoticeFacts(rows: rows, held: held, failing: failures, ghosts: ghosts)
    }
}
