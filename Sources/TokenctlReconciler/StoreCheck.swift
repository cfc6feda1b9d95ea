import Foundation
import TokenctlDrivers
import TokenctlManifest
import TokenctlModel
import TokenctlPlanner

/// What `status` finds in the stores: a delivered secret that is gone, or replaced by something else (another token
/// delivering to the same key, a store restored from an old backup, a hand edit), is not "ok".
package enum StoreCheck {
    /// Opens the manifests' stores for reading and marks the rows whose stores no longer hold what was delivered; when
    /// the stores cannot be opened, says so through `warn` and leaves the rows as the state has them.
    package static func flagMismatches(_ rows: [TokenStatus.Row], state: RecordedState, manifests: ManifestSet, setup: DriverSetup,
                                       warn: (String) -> Void) async -> [TokenStatus.Row] {
        let stores: [String: any SecretStore]
        do {
            stores = try withoutActuallyEscaping(warn) { warn in
                try setup.storesForReading(manifests, skip: { name, failure in
                    warn("store '\(name)' cannot be checked (\(failure)); status shows its deliveries from state only")
                })
            }
        } catch {
            warn("the stores cannot be checked (\(error)); status shows deliveries from state only")
            return rows
        }
        return await flagMismatches(rows, state: state, stores: stores, warn: warn)
    }

    /// Marks the rows whose active version's stores no longer hold what was delivered; one read per store.
    package static func flagMismatches(_ rows: [TokenStatus.Row], state: RecordedState, stores: [String: any SecretStore],
                                       warn: (String) -> Void) async -> [TokenStatus.Row] {
        var keysByStore: [String: Set<String>] = [:]
        for token in state.tokens.values {
            for delivery in token.active?.deliveries ?? [] { keysByStore[delivery.store, default: []].insert(delivery.key) }
        }
        var held: [StoreKey: String] = [:]
        var checked: Set<String> = []
        for (name, keys) in keysByStore.sorted(by: { $0.key < $1.key }) {
            // A write-only store cannot be looked into; status trusts the state for it.
            guard let store = stores[name] as? any ReadableSecretStore else { continue }
            do {
                for (key, fingerprint) in try await store.fingerprints(keys: Array(keys)) { held[StoreKey(store: name, key: key)] = fingerprint }
                checked.insert(name)
            } catch {
                warn("store '\(name)' cannot be read (\(error)); status shows its deliveries from state only")
            }
        }
        return rows.map { row in
            guard let version = state.tokens[row.token]?.active else { return row }
            let problems = version.deliveries.filter { checked.contains($0.store) }.compactMap { delivery -> String? in
                switch held[StoreKey(store: delivery.store, key: delivery.key)] {
                case nil: return "store '\(delivery.store)' has nothing under '\(delivery.key)'"
                case delivery.contentFingerprint?: return nil
                default: return "store '\(delivery.store)' holds something else under '\(delivery.key)' (another token's secret, "
                    + "an old backup or a hand edit)"
                }
            }
            guard !problems.isEmpty else { return row }
            var row = row
            row.health = .needsAttention
            row.note = problems.joined(separator: "; ") + "; run tokenctl plan --refresh to see the redelivery, then apply"
            return row
        }
    }
}
