import TokenctlPlanner

// Indirect: every outcome of an apply carries an optional failure, and inline the largest case made each of the
// 100,000 outcomes of a mass rotation 32 bytes larger, for failures that are rare.

/// Why a change failed: a closed set of values, each printed as a full sentence that is safe to show (never a secret).
///
/// ```swift
/// let failure = ChangeFailure.storeFailed(store: "vault", detail: "disk full")
/// print(failure)   // store 'vault': disk full
/// ```
package indirect enum ChangeFailure: Error, Hashable, Sendable, CustomStringConvertible {
    /// The issuer is not in this version of tokenctl, or could not be set up (`detail` says why).
    case issuerUnavailable(issuer: String, detail: String?)
    /// The issuer refused or failed.
    case issuerFailed(issuer: String, detail: String)
    /// The store is not in this version of tokenctl.
    case storeUnavailable(store: String)
    /// A store read or write failed.
    case storeFailed(store: String, detail: String)
    /// An earlier issue of the token is unresolved (its issuer could not be asked whether it went through).
    case earlierIssueUnresolved
    /// The issuer answered an idempotent retry with an earlier credential but no secret; it is revoked and issued again
    /// (by the next run when `revokeFailed`).
    case replayWithoutSecret(revokeFailed: Bool)
    /// No store took the new credential (the first store failure); it was revoked, or will be by the next run when
    /// `revokeFailed`. The previous version stays active.
    case undelivered(ChangeFailure, revokeFailed: Bool)
    /// The new credential is active but some stores failed; the next apply redelivers to them.
    case partlyDelivered([ChangeFailure])
    /// The state no longer holds what the change acts on.
    case nothingToChange(PlanAction)
    /// No store still holds the current version's secret, so it cannot be redelivered.
    case secretLost(version: Int)
    /// Removing the credential from a store no longer wanted failed; the delivery stays recorded for the next run.
    case undeliveryFailed(store: String, detail: String)
    /// The credential was revoked, but a store that held it could not be cleaned; the next run finishes the retirement.
    case storeNotCleaned(store: String, detail: String)
    /// A retirement that follows a rotation without overlap, whose rotation did not complete: the version stays active.
    case rotationIncomplete(version: Int)
    /// A removal from a store no longer wanted, skipped because the token's redelivery to its new place failed.
    case redeliveryIncomplete(version: Int)

    package var description: String {
        switch self {
        case let .issuerUnavailable(issuer, detail):
            detail ?? "issuer '\(issuer)' is not available in this version of tokenctl"
        case let .issuerFailed(issuer, detail):
            "issuer '\(issuer)' failed: \(detail)"
        case let .storeUnavailable(store):
            "store '\(store)' is not available in this version of tokenctl"
        case let .storeFailed(store, detail):
            "store '\(store)': \(detail)"
        case .earlierIssueUnresolved:
            "an earlier issue of this token is unresolved (its issuer could not be asked whether it went through); the next run settles it first"
        case .replayWithoutSecret(revokeFailed: false):
            "the issuer returned an earlier credential without its secret; it will be revoked and reissued"
        case .replayWithoutSecret(revokeFailed: true):
            "the issuer returned an earlier credential without its secret, and revoking it failed; the next run revokes it and issues again"
        case let .undelivered(cause, revokeFailed):
            revokeFailed ? "\(cause); revoking the undelivered credential failed too, and the next run revokes it" : cause.description
        case let .partlyDelivered(failures):
            "issued and delivered to some stores only; the next apply redelivers to the others: "
                + failures.map(\.description).joined(separator: "; ")
        case let .nothingToChange(action):
            action == .undeliver ? "nothing to remove" : "nothing to \(action.rawValue)"
        case let .secretLost(version):
            "no store still holds v\(version)'s secret; it cannot be redelivered (rotate the token to issue a new one)"
        case let .undeliveryFailed(store, detail):
            "store '\(store)': \(detail); the delivery stays recorded and the next run removes it"
        case let .storeNotCleaned(store, detail):
            "revoked at the issuer, but store '\(store)' still holds it (\(detail)); the next run removes it"
        case let .rotationIncomplete(version):
            "not retired: the rotation that replaces v\(version) did not complete, so it stays active"
        case let .redeliveryIncomplete(version):
            "not removed: the redelivery of v\(version) to its new place failed, so it stays where it is until that succeeds"
        }
    }
}
