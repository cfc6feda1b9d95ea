import Foundation
import TokenctlEngine
import TokenctlModel
import TokenctlPlanner
import TokenctlState

/// Recording requests and changes in the audit log.
package enum Auditing {
    /// The engine's auditor for one run: change and repair entries carry this request's origin and `command`.
    package static func auditor(_ store: any AuditLogStore, key: Data?, origin: RequestOrigin, command: String, desired tokens: TokensByID,
                        at now: Timestamp) -> ChangeAuditor {
        ChangeAuditor(store: store, key: key,
                      entry: { change, failure, versions in
                          entry(change, failure: failure, versions: versions,
                                annotations: change.token.flatMap { tokens[$0]?.metadata.annotations },
                                origin: origin, command: command, at: now)
                      },
                      repairEntry: { origin.entry(command, at: now, kind: "repair", detail: $0) })
    }

    /// The audit entry of one change.
    package static func entry(_ change: PlannedChange, failure: String?, versions: [CredentialVersion], annotations: [String: String]?,
                      origin: RequestOrigin, command: String, at now: Timestamp) -> AuditEntry {
        var entry = origin.entry(command, at: now, kind: "change")
        entry.token = change.token
        entry.action = change.action.rawValue
        entry.changeReason = change.reason.rawValue
        entry.detail = change.ghost.map { "ghost \($0.credentialID) at \(change.issuer)" } ?? change.detail
        entry.annotations = annotations
        entry.fingerprints = versions.filter { $0.version == change.version || $0.version == change.newVersion }
            .map(\.fingerprint).filter { !$0.isEmpty }
        entry.result = failure ?? "ok"
        return entry
    }
}
