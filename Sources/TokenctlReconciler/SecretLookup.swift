import TokenctlDrivers
import TokenctlModel

/// Reads a delivered secret back: from the first readable store that holds exactly what was delivered.
package enum SecretLookup {
    /// The secret of `version` from `stores`, or nil when none holds it; `note` hears about write-only and failing stores.
    package static func secret(of version: CredentialVersion, in stores: [String: any SecretStore],
                               note: (String) -> Void) async -> Secret? {
        for delivery in version.deliveries {
            guard let store = stores[delivery.store] else { continue }
            guard let readable = store as? any ReadableSecretStore else {
                note("store '\(delivery.store)' is write-only; the secret cannot be read back from it")
                continue
            }
            do {
                if let secret = try await readable.read(key: delivery.key),
                   contentFingerprint(key: delivery.key, secret: secret) == delivery.contentFingerprint {
                    return secret
                }
            } catch {
                note("store '\(delivery.store)': \(error)")
            }
        }
        return nil
    }
}
