/// The explicit, per-field allowance for a value the secret scanner mistakes for a secret.
///
/// ```yaml
/// metadata:
///   name: orders-api
///   annotations:
///     tokenctl.io/allow-secret-like: deliverTo.key   # comma-separated spec fields, as the error names them
/// ```
///
/// There is no global switch: each allowance names its fields on its own resource, shows as a warning in every
/// validate, plan and apply, and is recorded in the audit log by every apply.
package enum SecretAllowance {
    /// The annotation that names the allowed fields.
    package static let annotation = "tokenctl.io/allow-secret-like"
    /// The code of the warning an allowed value produces.
    package static let code = "allowed-secret-like"

    /// The fields an annotations map allows.
    static func fields(in annotations: [String: String]) -> Set<String> {
        guard let list = annotations[annotation] else { return [] }
        return Set(list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }
}
