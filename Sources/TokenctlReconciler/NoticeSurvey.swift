import Foundation
import TokenctlController
import TokenctlEngine
import TokenctlModel
import TokenctlPlanner
import TokenctlState

/// Gathers what notices are computed from: the state's tokens with their last use, the policy holds judged at `now`,
/// the controller's failing changes and, when the issuers were asked, the ghosts a plan reports.
///
/// ```swift
/// let facts = NoticeSurvey.facts(desired: manifests, state: state, held: loaded.policyHolds, lastUsed: lastUsed, failing: retries,
///                                plan: nil, now: now)
/// let due = NoticePlanner.due(desired: manifests, facts: facts, now: now)
/// ```
package enum NoticeSurvey {
    /// The facts at `now`, from the state. `held` are the policy holds the manifests were loaded with
    /// (`ManifestLoadResult.policyHolds`); `failing` are the controller's retry entries (from its status file or its
    /// memory); `plan` is a plan made with the issuers' inventories, whose ghost changes are the ghosts (nil: unknown).
    package static func facts(desired: ManifestSet, state: RecordedState, held: [TokenID: [String]], lastUsed: [String: Timestamp],
                              failing: [RetryBook.Entry], plan: Plan?, now: Timestamp) -> NoticeFacts {
        // Without a plan from inventories, the plan from state still says which tokens a creation-rate limit holds.
        let heldByLimits = (plan ?? Planner.plan(desired: desired, recorded: state, observed: nil, now: now, held: held)).held
        return facts(rows: TokenStatus.rows(state, lastUsed: lastUsed, now: now), held: held, failing: failing,
                     plan: plan, rateLimited: heldByLimits)
    }

    /// The facts from what a controller pass already computed: the status rows, the policy holds, and its plan's tokens
    /// held by creation-rate limits. `plan` is given only when it was made with the issuers' inventories (for ghosts).
    package static func facts(rows: [TokenStatus.Row], held: [TokenID: [String]], failing: [RetryBook.Entry], plan: Plan?,
                              rateLimited: [HeldToken]) -> NoticeFacts {
        // Ghost retirements are tracked as `ghost ISSUER/ID`: not a token, and the ghost notice covers them.
        let failures = failing.filter { !$0.key.contains(" ") }.compactMap { entry in
            TokenID(text: entry.key).map { NoticeFacts.Failing(token: $0, action: entry.action, since: entry.firstFailedAt, error: entry.lastError) }
        }
        let ghosts = plan.map { $0.changes.compactMap { $0.action == .ghost ? $0.ghost : nil } }
        return NoticeFacts(rows: rows, held: held, failing: failures, ghosts: ghosts, rateLimited: rateLimited)
    }
}

extension NoticeSurvey {
    /// Queues the due notices that were never queued before in the state's outbox, and records each newly queued one in
    /// the audit log (kind `notice`). Runs under the state lock, like every audit write. Returns the newly queued.
    package static func queue(_ due: [Notice], store: StateBackend.Store, auditKey: Data?, origin: RequestOrigin, command: String,
                              now: Timestamp) async throws -> [Notice] {
        guard !due.isEmpty else { return [] }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var byID: [NoticeID: Notice] = [:]
        var records: [NoticeRecord] = []
        for notice in due {
            let body = String(decoding: try encoder.encode(notice), as: UTF8.self)
            let record = NoticeRecord(notifier: notice.notifier, key: notice.key, body: body, queuedAt: now)
            byID[record.id] = notice
            records.append(record)
        }
        let queued = try await store.queueNotices(records).compactMap { byID[$0.id] }
        try await AuditLog(store: store, key: auditKey).append(queued.map { notice in
            var entry = origin.entry(command, at: now, kind: "notice", detail: "to \(notice.notifier): \(notice.reason)")
            entry.token = notice.token
            entry.action = notice.event.rawValue
            entry.result = "queued"
            return entry
        })
        return queued
    }
}
